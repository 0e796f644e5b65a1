"""全覆盖率 (villages with an advisor or a team assigned today, of the region's villages) against a direct
count, and read through the index on the region codes: a prefix `LIKE` alone could not use it under the
database's C.UTF-8 collation, so each region's first read of the day scanned every region of the country
(issue 17; plumbing.postgres.code_within_sql). A search by name within a region likewise."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from contracts.events import COUNTRY_CODE
from plumbing.projection import prepare_schema
from services.dashboard import queries
from services.dashboard.projection import dashboard_projection
from tests.support.plans import plan_nodes, scans_of

TODAY = date(2026, 12, 7)
COUNTY = "370402"
# Two townships of five villages; the last village of the second was retired (merged away).
VILLAGES = [f"{COUNTY}{township:03d}{200 + number:03d}" for township in (1, 2) for number in range(5)]
RETIRED = VILLAGES[-1]
# Elsewhere: enough regions that PostgreSQL would rather read an index than all of them.
ELSEWHERE = [f"41{county:04d}001{number:03d}" for county in range(1, 41) for number in range(500)]


def regions() -> list[tuple[str, str, str | None, date | None]]:
    """(code, level, parent, retired_on) of the county, its townships and villages, and the rest."""
    rows: list[tuple[str, str, str | None, date | None]] = [
        ("37", "province", None, None),
        ("3704", "prefecture", "37", None),
        (COUNTY, "county", "3704", None),
        ("370403", "county", "3704", None),
        ("41", "province", None, None),
    ]
    rows += [(f"{COUNTY}{township:03d}", "township", COUNTY, None) for township in (1, 2)]
    rows += [
        (code, "village", code[:9], TODAY - timedelta(days=30) if code == RETIRED else None)
        for code in VILLAGES
    ]
    rows += [(code, "village", code[:9], None) for code in ELSEWHERE]
    return rows


async def test_coverage_counts_the_regions_villages_with_someone_assigned_today_through_the_index(
    admin_pool: asyncpg.Pool, tag: str
) -> None:
    schema = f"coverage_{tag}"
    await prepare_schema(admin_pool, dashboard_projection(), schema)
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        try:
            await conn.executemany(
                """INSERT INTO regions (code, name, level, parent_code, retired_on)
                   VALUES ($1, '村', $2, $3, $4)""",
                regions(),
            )
            year = timedelta(days=365)
            await conn.executemany(
                """INSERT INTO assignments (advisor_id, village_code, term_start, term_end, released_on)
                   VALUES ($1, $2, $3, $4, $5)""",
                [
                    ("a-1", VILLAGES[0], TODAY - year, TODAY + year, None),  # covered
                    ("a-1", VILLAGES[1], TODAY - year, TODAY + year, None),  # covered
                    ("a-2", VILLAGES[2], TODAY - 2 * year, TODAY - year, None),  # a term that ended
                    ("a-3", VILLAGES[3], TODAY - year, TODAY + year, TODAY - timedelta(days=1)),  # released
                    ("a-4", VILLAGES[4], TODAY + timedelta(days=1), TODAY + year, None),  # starts tomorrow
                    ("a-5", RETIRED, TODAY - year, TODAY + year, None),  # retired: not counted at all
                    ("a-6", ELSEWHERE[0], TODAY - year, TODAY + year, None),
                ],
            )
            await conn.execute(
                """INSERT INTO team_assignments (team_id, village_code, term_start, term_end)
                   VALUES ('t-1', $1, $2, $3), ('t-1', $4, $2, $3)""",
                VILLAGES[5],  # covered by a team alone
                TODAY - year,
                TODAY + year,
                VILLAGES[0],  # by an advisor and a team: counted once
            )
            await conn.execute("ANALYZE regions")
            answers = {
                code: await queries.coverage(conn, code, TODAY)
                for code in (
                    COUNTY,
                    f"{COUNTY}001",
                    f"{COUNTY}002",
                    VILLAGES[0],
                    VILLAGES[2],
                    "3704",
                    "37",
                    "41",
                )
            }
            country = await queries.coverage(conn, COUNTRY_CODE, TODAY)
            county_plan = await plan_nodes(conn, queries.COVERAGE, COUNTY, TODAY)
            village_plan = await plan_nodes(conn, queries.COVERAGE, VILLAGES[0], TODAY)
        finally:
            await conn.execute("RESET search_path")
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert answers == {
        COUNTY: {"villages": 9, "villages_with_advisor": 3},
        f"{COUNTY}001": {"villages": 5, "villages_with_advisor": 2},
        f"{COUNTY}002": {"villages": 4, "villages_with_advisor": 1},
        VILLAGES[0]: {"villages": 1, "villages_with_advisor": 1},
        VILLAGES[2]: {"villages": 1, "villages_with_advisor": 0},
        "3704": {"villages": 9, "villages_with_advisor": 3},
        "37": {"villages": 9, "villages_with_advisor": 3},
        "41": {"villages": len(ELSEWHERE), "villages_with_advisor": 1},
    }
    assert country == {"villages": 9 + len(ELSEWHERE), "villages_with_advisor": 4}
    for plan in (county_plan, village_plan):
        scans = scans_of(plan, "regions")
        assert scans, "the plan reads regions"
        assert "Seq Scan" not in scans, scans


async def test_a_search_within_a_county_reads_only_the_countys_regions(
    admin_pool: asyncpg.Pool, tag: str
) -> None:
    """A county bureau's search by name reads the county's codes through the index, not every region's name
    (the same prefix LIKE as coverage's)."""
    schema = f"search_{tag}"
    await prepare_schema(admin_pool, dashboard_projection(), schema)
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        try:
            await conn.executemany(
                """INSERT INTO regions (code, name, level, parent_code, retired_on)
                   VALUES ($1, '村', $2, $3, $4)""",
                regions(),
            )
            await conn.execute(
                f"UPDATE regions SET name = '王庄村' WHERE code IN ('{VILLAGES[1]}', '{ELSEWHERE[0]}')"
            )
            await conn.execute("ANALYZE regions")
            found = await queries.search(conn, "王庄", COUNTY, 10)
            plan = await plan_nodes(conn, queries.SEARCH, "王庄", COUNTY, 10)
        finally:
            await conn.execute("RESET search_path")
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert found == [{"code": VILLAGES[1], "name": "王庄村", "level": "village"}]
    scans = scans_of(plan, "regions")
    assert scans, "the plan reads regions"
    assert "Seq Scan" not in scans, scans
