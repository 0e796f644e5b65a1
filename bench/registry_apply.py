"""`python -m bench.registry_apply --database DSN`: each projection's apply step for the registry alone.

The benchmark's registry (`bench.province.registry_events`: the villages' regions, then each advisor's
registration followed by its terms) over N synthetic villages (`bench.dashboard_apply.villages`), cut into
batches of `--batch` as a rebuild's polls cut its one partition, applied by the ledger's, the assessment's
and the dashboard's apply step, a transaction per batch, each into a fresh schema. No broker, no decoding:
what changes when the registry's write path changes. In the national run the registry is 179,296 of
488,803 events (37 %). Prints events/s and the Python process's CPU seconds per projection, and a digest
of every table so that two versions of the code compare on the same events:

    cd /work/main && python -m bench.registry_apply --database DSN --tag after
    cd OTHER && PYTHONPATH=. python /work/main/bench/registry_apply.py --database DSN --tag before

Run it against a database of its own (it creates and drops the schemas `registry_<tag>_<projection>`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

import asyncpg

from bench.dashboard_apply import villages
from bench.province import Load, registry_events
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


async def measure(args: argparse.Namespace) -> None:
    load = Load(villages(args.villages), date(2026, 1, 1), 1, args.seed)
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
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag", default="apply", help="names the schemas and the output lines")
    asyncio.run(measure(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
