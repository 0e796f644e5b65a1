"""`python -m bench.live_batches`: the projections' per-batch cost at live batch sizes, for comparing
versions of the projection runtime in one session (issue 17).

Live, a projection applies batches of about 100 records (bench/results/2026-12-07-national-62074x1-end-to-
end): there the runtime's own work per batch (its round trips to PostgreSQL, its commit, the group's
offsets) is half of the time, where a rebuild's batches of 10,000 hide it. This rebuilds each `--name`
with batches of `--batch` records from each `--tree` in turn, on the events already in the `bench`
stack (kept by `VC_BENCH_KEEP_STACK=1 bin/bench ...`), round after round, so the trees see the same data
and the machine of the same minutes; each tree goes first in turn. A rebuild holds no live lock and
commits no group offsets: what it compares is everything else a live batch does.

    python -m bench.live_batches --tree /tmp/main-before --tree . --name ledger --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench import stages
from bench.intake_batch import commit_of
from devstack.stack import PROFILES, status


def in_turn(trees: list[Path], round_number: int) -> list[Path]:
    """The trees in the order of round `round_number` (from 1): each goes first in turn, as the second of
    two rebuilds one after the other ran about a tenth slower whichever code it was (results/2026-12-07-
    province-20000x1-live-batches)."""
    shift = (round_number - 1) % len(trees)
    return trees[shift:] + trees[:shift]


def ratio(found: list[dict[str, Any]], name: str, first: str, second: str) -> float:
    """`second`'s events/s over `first`'s for `name`, each summed over the rounds (events over seconds)."""

    def rate(commit: str) -> float:
        rows = [row[name] for row in found if row["commit"] == commit and name in row]
        return float(sum(row["events"] for row in rows)) / float(sum(row["seconds"] for row in rows))

    return round(rate(second) / rate(first), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.live_batches",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tree", type=Path, action="append", required=True, help="a checkout (repeat)")
    parser.add_argument(
        "--name", action="append", choices=stages.PROJECTIONS, help="a projection (repeat; default: all)"
    )
    parser.add_argument("--batch", type=int, default=100, help="records per batch (live: about 100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a VC_ variable for every tree's processes (repeat)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    profile = PROFILES["bench"]
    if not all(status(profile).values()):
        raise SystemExit("the bench stack is not running: VC_BENCH_KEEP_STACK=1 bin/bench ... keeps one")
    stack = stages.Stack(profile)
    trees = [tree.resolve() for tree in args.tree]
    names = args.name or list(stages.PROJECTIONS)
    settings = dict(setting.split("=", 1) for setting in args.setting)
    settings |= {"VC_BATCH_MAX_RECORDS": str(args.batch), "VC_REBUILD_BATCH_MAX_RECORDS": str(args.batch)}
    found: list[dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        for tree in in_turn(trees, round_number):
            commit = commit_of(tree)
            for name in names:  # one at a time: each gets the cores as a rebuild by itself would
                result = stages.rebuild(stack, [name], tree=tree, settings=settings)
                found.append({"round": round_number, "commit": commit, "tree": str(tree), **result})
                print(  # noqa: T201 - the command's output
                    f"round {round_number} {commit} {name}: {result[name]['events']} events in "
                    f"{result[name]['seconds']} s, {result[name]['per_second']:,.0f}/s "
                    f"(batches of {args.batch})",
                    flush=True,
                )
    commits = list(dict.fromkeys(row["commit"] for row in found))
    if len(commits) >= 2:
        for name in names:
            print(  # noqa: T201 - the command's output
                f"{name}: {commits[-1]} / {commits[0]} = {ratio(found, name, commits[0], commits[-1])} "
                "(events/s, summed over the rounds)",
                flush=True,
            )
    if args.out is not None:
        args.out.write_text(json.dumps({"batch": args.batch, "settings": settings, "runs": found}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
