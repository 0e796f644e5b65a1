"""`python -m bench.imports [--rows 300000]`: how long the import of history takes at province scale.

A year of a prefecture (~2,500 villages, ~120 records each) written exactly as the ledger exports it
(`services.ledger.exports.entry_row`, a section per village with its totals), then imported with the
command an operator runs (`python -m services.intake import FILE`, first `--dry-run`) into the test
stack (the devstack's `test` profile, started fresh: run it under `flock /tmp/vc-integration.lock`).
Writes `result.json` and `report.md` to `bench/results/<date>-import-<rows>/`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.run import log
from contracts.envelope import parse_payload
from contracts.events import DEFAULT_ZONE
from contracts.examples import example_fields
from contracts.ledger_layout import HEADERS
from plumbing.auth import Role, mint_token
from plumbing.kafka import create_consumer, ensure_topics, topic_partitions
from plumbing.tables import csv_line
from services.intake.settings import IntakeSettings
from services.ledger.exports import Totals, entry_row
from services.ledger.rules import split_fields

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-import-secret-long-enough-for-hs256"  # noqa: S105 - the test stack's HS256 key
PREFECTURE = "3704"
# (event type, share of the rows): visits monthly and more, consultations, the rest now and then
MIX = (
    ("visit.logged", 0.40),
    ("consultation.recorded", 0.25),
    ("mediation.recorded", 0.10),
    ("document.reviewed", 0.10),
    ("lecture.held", 0.05),
    ("legal_aid.assisted", 0.05),
    ("feedback.submitted", 0.05),
)


def villages(count: int) -> list[str]:
    codes = []
    for county in ("02", "03", "04", "05", "06", "81"):
        for township in range(100, 130):
            for village in range(201, 216):
                codes.append(f"{PREFECTURE}{county}{township:03d}{village:03d}")
    return codes[:count]


def entry(rng: random.Random, event_type: str, village: str, sequence: int) -> dict[str, Any]:
    advisor = f"lawyer-{village[4:9]}"
    occurred = datetime(2019, 1, 1, 8, tzinfo=DEFAULT_ZONE) + timedelta(minutes=rng.randrange(365 * 24 * 60))
    fields = {**example_fields(event_type, advisor, village), "occurred_at": occurred.isoformat()}
    if event_type == "visit.logged":
        fields["started_at"] = occurred.isoformat()
        fields["ended_at"] = (occurred + timedelta(minutes=rng.randrange(120, 300))).isoformat()
    if event_type == "consultation.recorded" and rng.random() > 0.3:
        del fields["requester"], fields["summary"]  # personal data in three consultations of ten
    if event_type == "feedback.submitted":
        del fields["comment"]
    payload = parse_payload(event_type, fields, prefix="")
    statistics, personal = split_fields(payload)
    late = rng.random()
    return {
        "event_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "village_code": village,
        "sequence": sequence,
        "event_type": event_type,
        "advisor_id": advisor,
        "occurred_at": occurred,
        "recorded_at": None if late < 0.05 else occurred + timedelta(hours=rng.randrange(1, 96)),
        "recorded_by": advisor,
        "fields": statistics,
        "personal": personal or None,
        "voided_by_event_id": None,
        "void_status": None,
        "erased_at": None,
    }


def write_file(path: Path, rows: int, seed: int) -> dict[str, int]:
    """The ledger file, a section per village: rows spread evenly, types by MIX."""
    rng = random.Random(seed)  # noqa: S311 - synthetic load, not secrets
    codes = villages(2500)
    per_village = [rows // len(codes) + (1 if i < rows % len(codes) else 0) for i in range(len(codes))]
    types = [kind for kind, _ in MIX]
    weights = [share for _, share in MIX]
    personal = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("\ufeff")
        for village, count in zip(codes, per_village, strict=True):
            out.write(csv_line([f"{village} 工作台账 2019-01-01 至 2019-12-31"]))
            out.write(csv_line(HEADERS))
            totals = Totals()
            for sequence in range(1, count + 1):
                item = entry(rng, rng.choices(types, weights)[0], village, sequence)
                personal += item["personal"] is not None
                totals.add(item)
                out.write(csv_line(entry_row(item, "顾问", False, True)))
            for row in totals.rows():
                out.write(csv_line(row))
            out.write("\r\n")
    return {"rows": rows, "villages": len(codes), "rows_with_personal_data": personal}


async def stored_records(kafka: Any) -> int:
    consumer = create_consumer(kafka, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, ["village-services"])
        ends = await consumer.end_offsets(partitions)
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


def run_command(arguments: list[str], environment: dict[str, str]) -> tuple[float, str, int]:
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "services.intake", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{arguments} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, done.stdout, peak_kib


def main(argv: list[str] | None = None) -> int:
    from tests.support.infrastructure import provide_infrastructure  # the test stack, started fresh

    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = ROOT / ".local" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"import-{args.rows}-{args.seed}.csv"
    started = time.monotonic()
    load: dict[str, Any] = {**write_file(path, args.rows, args.seed), "file_bytes": path.stat().st_size}
    load["generate_seconds"] = round(time.monotonic() - started, 1)
    log(f"wrote {path}: {load}")
    settings = IntakeSettings(jwt_secret=SECRET)
    token = mint_token(
        settings,
        subject="prefecture-3704",
        role=Role.prefecture_bureau,
        region_code=PREFECTURE,
        now=datetime.now(UTC),
        lifetime=timedelta(hours=2),
    )
    with provide_infrastructure() as infrastructure:
        asyncio.run(ensure_topics(infrastructure.kafka))
        environment = {
            **infrastructure.kafka_environment("intake"),
            "VC_JWT_SECRET": SECRET,
            "VC_IMPORT_TOKEN": token,
        }
        before = asyncio.run(stored_records(infrastructure.kafka))
        check_seconds, check_output, _ = run_command(["import", str(path), "--dry-run"], environment)
        log(check_output)
        import_seconds, import_output, peak_kib = run_command(["import", str(path)], environment)
        log(import_output)
        stored = asyncio.run(stored_records(infrastructure.kafka)) - before
    progress = [line for line in import_output.splitlines() if line.startswith("published ")]
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from the PATH, as bin/bench does
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "load": load,
        "dry_run_seconds": round(check_seconds, 1),
        "import_seconds": round(import_seconds, 1),
        "rows_per_second": round(args.rows / import_seconds),
        "records_stored_by_kafka": stored,
        "peak_rss_mib": round(peak_kib / 1024),
        "progress_first_and_last": [progress[0], progress[-1]] if progress else [],
    }
    out = args.out or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-import-{args.rows}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    (out / "report.md").write_text(report(result))
    log(f"results in {out}")
    return 0 if stored == args.rows else 1


def report(result: dict[str, Any]) -> str:
    load = result["load"]
    return f"""# Import of history: {load["rows"]:,} rows

`python -m bench.imports --rows {load["rows"]}` at commit `{result["commit"]}`, {result["when"]}, on
{result["machine"]} shared with other work; the test stack (devstack `test` profile, closed broker).

- The file: a year (2019) of {load["villages"]:,} villages of prefecture 3704 in the ledger's export
  layout (a section per village with its totals), {load["file_bytes"] / 1e6:.0f} MB, rows with personal
  data (sealed through the key store): {load["rows_with_personal_data"]:,}.
- `python -m services.intake import FILE --dry-run` (every row checked): **{result["dry_run_seconds"]} s**
- `python -m services.intake import FILE` (checked again, sealed, published in batches of 5,000 and
  acknowledged by Kafka): **{result["import_seconds"]} s**, {result["rows_per_second"]:,} rows/s;
  records Kafka stored: {result["records_stored_by_kafka"]:,}; peak RSS {result["peak_rss_mib"]} MiB
  (the file is read twice, never held whole).
- Progress lines, first and last: `{"`, `".join(result["progress_first_and_last"])}`
"""


if __name__ == "__main__":
    raise SystemExit(main())
