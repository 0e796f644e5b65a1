"""The dashboard's reads of `regions` that run on every question put to the country and in every batch of
records go through an index, not a scan of every region (680,000 in the national deployment)."""

from __future__ import annotations

import asyncpg

from plumbing.projection import prepare_schema
from services.dashboard import queries
from services.dashboard.projection import MERGED_VILLAGES, dashboard_projection

VILLAGES = 30_000


async def _plan(conn: asyncpg.Connection, sql: str) -> str:
    rows = await conn.fetch(f"EXPLAIN {sql}")
    return "\n".join(row[0] for row in rows)


async def test_the_provinces_and_the_merged_villages_are_read_through_an_index(
    admin_pool: asyncpg.Pool, tag: str
) -> None:
    schema = f"regions_{tag}"
    await prepare_schema(admin_pool, dashboard_projection(), schema)
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        await conn.execute(
            """INSERT INTO regions (code, name, level, parent_code) VALUES ('0', '全国', 'country', NULL),
                   ('37', '山东省', 'province', NULL), ('41', '河南省', 'province', NULL)"""
        )
        # Villages of both provinces, every hundredth merged into the one before it.
        await conn.execute(
            """INSERT INTO regions (code, name, level, parent_code, successor_code)
               SELECT p || lpad(n::text, 10, '0'), '村' || n, 'village', p || lpad((n / 1000)::text, 7, '0'),
                      CASE WHEN n % 100 = 0 THEN p || lpad((n - 1)::text, 10, '0') END
               FROM generate_series(1, $1) AS n, unnest(ARRAY['37', '41']) AS p""",
            VILLAGES // 2,
        )
        await conn.execute("ANALYZE regions")

        for sql in (queries.PROVINCES, MERGED_VILLAGES):
            plan = await _plan(conn, sql)
            assert "Seq Scan on regions" not in plan, plan
            assert "Index" in plan, plan

        assert [row["code"] for row in await queries.children(conn, "0")] == ["37", "41"]
        merged = await conn.fetch(MERGED_VILLAGES)
        assert len(merged) == 2 * (VILLAGES // 2 // 100)
        assert {row["code"]: row["successor_code"] for row in merged}["370000000100"] == "370000000099"
