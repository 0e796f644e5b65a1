"""`python -m bench.coverage_reads --database DSN [--villages 620573]`: 全覆盖率 at every level of a national
deployment, counted village by village as before migration 016 and read from the steps after it, in one
run, with the migration's own time.

N synthetic villages over 31 provinces (about 620,000 by default, the national deployment's), each with a
term or two of an advisor or a team over 2025-2027, some released early, some with nobody, a few retired;
the dashboard's migrations before 016 into a fresh schema, the tables filled with COPY, then the direct
count (the query before 016) timed `--reads` times for the largest region of each level; then migration
016 (what an upgrade runs once) and the steps' read timed the same way. The two answers are compared for
every region read. Prints JSON; run it against a database of its own (it creates and drops
`bench_coverage`):

    python -m bench.coverage_reads --database postgresql://postgres@127.0.0.1:21432/villagecounsel
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import date, timedelta
from typing import Any

import asyncpg

from bench.stages import latency_summary
from contracts.assignment import assigned_on_sql
from contracts.events import COUNTRY_CODE, region_prefix
from plumbing.postgres import apply_migrations, code_within_sql, read_migrations
from services.dashboard import queries
from services.dashboard.projection import MIGRATIONS

SCHEMA = "bench_coverage"
TODAY = date(2026, 12, 7)
# The count before migration 016: every village of the region, each checked for a term covering the day.
DIRECT_COUNT = f"""SELECT count(*) AS villages,
          count(*) FILTER (WHERE EXISTS (
              SELECT 1 FROM assignments a WHERE a.village_code = r.code
                AND {assigned_on_sql("a", "$2")}) OR EXISTS (
              SELECT 1 FROM team_assignments t WHERE t.village_code = r.code
                AND {assigned_on_sql("t", "$2")})) AS covered
   FROM regions r
   WHERE r.level = 'village' AND {code_within_sql("r.code", "$1")} AND r.retired_on IS NULL"""  # noqa: S608 - the conditions are code


def national(
    count: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(regions, assignments, team assignments) of `count` villages: 31 provinces of 14 prefectures of 10
    counties of 15 townships, their villages dealt round the townships."""
    townships = [
        f"{11 + p:02d}{1 + q:02d}{1 + c:02d}{1 + t:03d}"
        for p in range(31)
        for q in range(14)
        for c in range(10)
        for t in range(15)
    ]
    villages = [f"{townships[n % len(townships)]}{200 + n // len(townships):03d}" for n in range(count)]
    regions: list[tuple[Any, ...]] = [(COUNTRY_CODE, "country", None, None)]
    regions += [(township, "township", township[:6], None) for township in townships]
    regions += sorted({(t[:6], "county", t[:4], None) for t in townships})
    regions += sorted({(t[:4], "prefecture", t[:2], None) for t in townships})
    regions += sorted({(t[:2], "province", None, None) for t in townships})
    assignments: list[tuple[Any, ...]] = []
    teams: list[tuple[Any, ...]] = []
    for n, village in enumerate(villages):
        retired = TODAY - timedelta(days=90) if rng.random() < 0.01 else None
        regions.append((village, "village", village[:9], retired))
        roll = rng.random()
        if roll < 0.03:
            continue  # nobody assigned
        start = date(2025, 1, 1) + timedelta(days=rng.randrange(600))
        released = start + timedelta(days=rng.randrange(700)) if rng.random() < 0.05 else None
        row = (village, start, start + timedelta(days=3 * 365 - 1), released)
        if roll < 0.06:
            teams.append((f"team-{n % 5000}", *row))
        else:
            assignments.append((f"lawyer-{n % 200000}", *row))
            if rng.random() < 0.1:  # a second advisor, or the same one again later
                later = row[2] + timedelta(days=1)
                assignments.append(
                    (f"lawyer-{(n + 7) % 200000}", village, later, later + timedelta(days=364), None)
                )
    return regions, assignments, teams


async def timed_reads(
    conn: asyncpg.Connection, sql: str, code: str, reads: int
) -> tuple[dict[str, float], Any]:
    seconds = []
    answer = None
    for _ in range(reads):
        started = time.perf_counter()
        row = await conn.fetchrow(sql, code, TODAY)
        answer = (row["villages"], row["covered"]) if row else None
        seconds.append(time.perf_counter() - started)
    return latency_summary(seconds), answer


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)  # noqa: S311 - a deterministic load
    regions, assignments, teams = national(args.villages, rng)
    migrations = read_migrations("dashboard", MIGRATIONS)
    before = [m for m in migrations if m.version < 16]
    conn = await asyncpg.connect(args.database)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await apply_migrations(conn, SCHEMA, before)
        await conn.copy_records_to_table(
            "regions",
            schema_name=SCHEMA,
            records=[(c, c, lv, p, r) for c, lv, p, r in regions],
            columns=["code", "name", "level", "parent_code", "retired_on"],
        )
        await conn.copy_records_to_table(
            "assignments",
            schema_name=SCHEMA,
            records=assignments,
            columns=["advisor_id", "village_code", "term_start", "term_end", "released_on"],
        )
        await conn.copy_records_to_table(
            "team_assignments",
            schema_name=SCHEMA,
            records=teams,
            columns=["team_id", "village_code", "term_start", "term_end", "released_on"],
        )
        await conn.execute(f"SET search_path = {SCHEMA}")
        await conn.execute("ANALYZE")
        levels = {"country": COUNTRY_CODE}
        for level in ("province", "prefecture", "county", "township", "village"):
            levels[level] = await conn.fetchval(
                "SELECT code FROM regions WHERE level = $1 ORDER BY code LIMIT 1", level
            )
        direct = {}
        for level, code in levels.items():
            summary, answer = await timed_reads(conn, DIRECT_COUNT, region_prefix(code), args.reads)
            direct[level] = {"code": code, "answer": answer, **summary}
        started = time.perf_counter()
        await apply_migrations(conn, SCHEMA, migrations)
        migration_seconds = time.perf_counter() - started
        await conn.execute(f"SET search_path = {SCHEMA}")
        await conn.execute("ANALYZE coverage_steps")
        steps = {}
        for level, code in levels.items():
            sql = queries.VILLAGE_COVERAGE if level == "village" else queries.COVERAGE  # as queries.coverage
            summary, answer = await timed_reads(conn, sql, code, args.reads)
            steps[level] = {"code": code, "answer": answer, **summary}
        sizes = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - names of this file
            for table in ("regions", "assignments", "team_assignments", "village_coverage", "coverage_steps")
        }
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()
    mismatched = [level for level in levels if direct[level]["answer"] != steps[level]["answer"]]
    return {
        "villages": args.villages,
        "rows": sizes,
        "migration_016_seconds": round(migration_seconds, 2),
        "direct_count": direct,
        "steps": steps,
        "answers_differ": mismatched,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.coverage_reads", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database", required=True, help="a PostgreSQL DSN of a database of its own")
    parser.add_argument("--villages", type=int, default=620_573)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args))
    print(json.dumps(result, indent=1, default=str))  # noqa: T201 - the result
    return 1 if result["answers_differ"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
