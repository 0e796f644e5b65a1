"""A region's grades of a year (the table a county bureau pays from) against a direct reading of the rows,
and read through an index: before migration 007 every revision of every year of the country was scanned for
it (issue 17; plumbing.postgres.code_within_sql)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plumbing.projection import prepare_schema
from services.assessment import queries
from services.assessment.projection import assessment_projection
from tests.support.plans import plan_nodes, scans_of

COUNTY = "370402"
VILLAGES = [f"{COUNTY}001{200 + number:03d}" for number in range(4)] + ["370403001201"]
# Elsewhere and other years: enough rows that PostgreSQL would rather read an index than all of them.
ELSEWHERE = [f"41{county:04d}001{number:03d}" for county in range(1, 41) for number in range(250)]


def grade_row(village: str, advisor: str, year: int, revision: int, grade: str) -> tuple[Any, ...]:
    return (
        uuid.uuid4(),
        advisor,
        village,
        year,
        revision,
        80.0 + revision,
        grade,
        1.0,
        "1200.00",
        "{}",
        uuid.uuid4(),
        "37",
    )


async def test_a_regions_grades_are_the_latest_revisions_read_through_an_index(
    admin_pool: asyncpg.Pool, tag: str
) -> None:
    schema = f"grades_{tag}"
    await prepare_schema(admin_pool, assessment_projection(), schema)
    rows = [
        grade_row(VILLAGES[0], "a-1", 2026, 1, "good"),
        grade_row(VILLAGES[0], "a-1", 2026, 2, "excellent"),  # the latest revision counts
        grade_row(VILLAGES[0], "a-2", 2026, 1, "qualified"),  # a second advisor of the village
        grade_row(VILLAGES[1], "a-1", 2026, 1, "good"),
        grade_row(VILLAGES[2], "a-3", 2025, 1, "good"),  # another year
        grade_row(VILLAGES[4], "a-4", 2026, 1, "good"),  # another county
    ]
    rows += [grade_row(code, "b-1", year, 1, "good") for code in ELSEWHERE for year in (2025, 2026)]
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        try:
            await conn.executemany(
                """INSERT INTO grades (event_id, advisor_id, village_code, year, revision, score, grade,
                                       subsidy_ratio, subsidy_yuan, components, policy_event_id,
                                       policy_region_code)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)""",
                rows,
            )
            await conn.execute("ANALYZE grades")
            county = await queries.grades_under(conn, COUNTY, 2026)
            computed = await queries.computed_grades(conn, COUNTY, 2026)
            counties = await queries.counties_with_grades(conn, "3704", 2026)
            plan = await plan_nodes(conn, queries.GRADES_UNDER, COUNTY, 2026)
        finally:
            await conn.execute("RESET search_path")
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert [(row["village_code"], row["advisor_id"], row["revision"], row["grade"]) for row in county] == [
        (VILLAGES[0], "a-1", 2, "excellent"),
        (VILLAGES[0], "a-2", 1, "qualified"),
        (VILLAGES[1], "a-1", 1, "good"),
    ]
    assert [(grade.village_code, grade.advisor_id, grade.revision) for grade in computed] == [
        (VILLAGES[0], "a-1", 2),
        (VILLAGES[0], "a-2", 1),
        (VILLAGES[1], "a-1", 1),
    ]
    assert counties == [COUNTY, "370403"]
    scans = scans_of(plan, "grades")
    assert scans, "the plan reads grades"
    assert "Seq Scan" not in scans, scans
