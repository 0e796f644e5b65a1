"""`python -m bench.registry_apply --database DSN`: each projection's apply step for the registry alone
(and, with `--months M`, for M months of the villages' records after it).

The benchmark's registry (`bench.province.registry_events`: the villages' regions, then each advisor's
registration followed by its terms) over N synthetic villages (`bench.dashboard_apply.villages`), cut into
batches of `--batch` as a rebuild's polls cut its one partition, applied by the ledger's, the assessment's
and the dashboard's apply step, a transaction per batch, each into a fresh schema. No broker, no decoding:
what changes when the registry's write path changes. In the national run the registry is 179,296 of
488,803 events (37 %). Prints events/s and the Python process's CPU seconds per projection, and a digest
of every table so that two versions of the code compare on the same events. With `--months`, the records
are then cut as `bench.dashboard_apply` cuts them and timed with what the runtime does for each after
decoding (the payload dumped, the fingerprint), a second line per projection:

    cd /work/main && python -m bench.registry_apply --database DSN --tag after
    cd OTHER && PYTHONPATH=. python /work/main/bench/registry_apply.py --database DSN --tag before

Run it against a database of its own (it creates and drops the schemas `registry_<tag>_<projection>`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

import asyncpg

from bench.dashboard_apply import batches, villages
from bench.province import Load, registry_events
from contracts import envelope
from contracts.envelope import content_fingerprint
from contracts.topics import REGISTRY
from plumbing.postgres import apply_migrations
from plumbing.projection import Batch, ConsumedEvent, Projection
from services.assessment.projection import assessment_projection
from services.dashboard.projection import dashboard_projection
from services.ledger.projection import ledger_projection

PROJECTIONS: dict[str, Callable[[], Projection]] = {
    "ledger": lambda: ledger_projection(b"bench-registry-key-of-32-bytes!!"),
    "assessment": assessment_projection,
    "dashboard": dashboard_projection,
}


async def digest(conn: asyncpg.Connection, schema: str) -> str:
    """md5 of every table of the schema but the runtime's, as text in a fixed order."""
    names = [
        row["table_name"]
        for row in await conn.fetch(
            """SELECT table_name FROM information_schema.tables
               WHERE table_schema = $1 AND table_type = 'BASE TABLE'
                 AND table_name NOT IN ('projection_offsets', 'processed_events', 'schema_migrations')
               ORDER BY table_name""",
            schema,
        )
    ]
    parts = [
        await conn.fetchval(
            f"""SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-')
                FROM "{schema}"."{name}" t"""  # noqa: S608 - names read from the catalogue
        )
        for name in names
    ]
    return await conn.fetchval("SELECT md5($1)", ",".join(parts))  # type: ignore[no-any-return]


def as_consumed(item: ConsumedEvent) -> ConsumedEvent:
    """What the runtime hands a projection after decoding: the fingerprint, and (where this version of the
    code has them) the payload's values dumped once."""
    dump = getattr(envelope, "payload_values", None)
    if dump is None or "values" not in {field.name for field in dataclasses.fields(ConsumedEvent)}:
        return dataclasses.replace(item, fingerprint=content_fingerprint(item.event))
    values = dump(item.event.data)
    return dataclasses.replace(item, fingerprint=content_fingerprint(item.event, values), values=values)


async def apply_records(
    conn: asyncpg.Connection, projection: Projection, schema: str, cut: list[list[ConsumedEvent]]
) -> None:
    for batch in cut:
        consumed = [as_consumed(item) for item in batch]
        async with conn.transaction():
            await conn.execute("SELECT set_config('search_path', $1, true)", schema)
            await projection.apply(conn, Batch(consumed, [], datetime.now(UTC)))


async def measure(args: argparse.Namespace) -> None:
    load = Load(villages(args.villages), date(2026, 1, 1), max(1, args.months), args.seed)
    cut, records = batches(load, args.batch) if args.months else ([], 0)
    # as a service process does (plumbing/service.py), whichever version of the code runs: the load is
    # held in memory, and the collector walking it would be measured instead
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    events = [
        ConsumedEvent(event, REGISTRY, 0, offset, content_fingerprint(event))
        for offset, event in enumerate(registry_events(load))
    ]
    conn = await asyncpg.connect(args.database)
    try:
        for name, make in PROJECTIONS.items():
            projection = make()
            schema = f"registry_{args.tag}_{name}"
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await apply_migrations(conn, schema, projection.all_migrations())
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(events), args.batch):
                async with conn.transaction():
                    await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                    await projection.apply(
                        conn, Batch(events[start : start + args.batch], [], datetime.now(UTC))
                    )
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(  # noqa: T201 - the result
                f"{args.tag} {name}: {len(events)} registry events in {seconds:.2f} s, "
                f"{len(events) / seconds:,.0f} events/s, Python CPU {cpu:.2f} s, "
                f"tables {(await digest(conn, schema))[:12]}"
            )
            if records:
                started, cpu = time.perf_counter(), time.process_time()
                await apply_records(conn, projection, schema, cut)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(  # noqa: T201 - the result
                    f"{args.tag} {name}: then {records} records in {seconds:.2f} s, "
                    f"{records / seconds:,.0f} events/s, Python CPU {cpu:.2f} s, "
                    f"tables {(await digest(conn, schema))[:12]}"
                )
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.registry_apply", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database", required=True, help="a PostgreSQL DSN of a database of its own")
    parser.add_argument("--villages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per batch (a rebuild's)")
    parser.add_argument("--months", type=int, default=0, help="then the records of M months (0: none)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="apply", help="names the schemas and the output lines")
    asyncio.run(measure(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
