"""全覆盖率 (villages with an advisor or a team assigned today, of the region's villages) kept as steps by the
projection (issue 17; migration 016, services/dashboard/coverage.py) and read from the region's own rows:
before, a region's first read of the day counted every village below it (the country's took seconds).
Checked against the direct count it replaced, for every region and day, whatever the batching, and through
the migration from the tables as they were. A search by name within a region reads the region's codes
through the index (a prefix `LIKE` alone could not use it under the database's C.UTF-8 collation)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from bench.coverage_reads import DIRECT_COUNT  # the count the steps replaced
from contracts.events import (
    COUNTRY_CODE,
    AdvisorAssigned,
    AdvisorReleased,
    EventPayload,
    RegionLevel,
    RegionRegistered,
    RegionRetired,
    ReleaseReason,
    RetireReason,
    TeamAssigned,
    TeamReleased,
    region_prefix,
)
from plumbing.projection import ConsumedEvent, prepare_schema
from services.dashboard import coverage, queries
from services.dashboard.projection import dashboard_projection
from tests.integration.test_dashboard_batches import apply_batches, cut
from tests.support.migrations import dashboard_with
from tests.support.places import fresh_county
from tests.support.plans import plan_nodes, scans_of
from tests.support.registry import registry_stream

TODAY = date(2026, 12, 7)
NOW = datetime(2026, 12, 7, tzinfo=UTC)
COUNTY = "370402"
# Two townships of five villages; the last village of the second was retired (merged away).
VILLAGES = [f"{COUNTY}{township:03d}{200 + number:03d}" for township in (1, 2) for number in range(5)]
RETIRED = VILLAGES[-1]
# Elsewhere: enough regions that PostgreSQL would rather read an index than all of them.
# (40 counties of 50 townships of 10 villages: the steps are kept for the regions above the villages)
ELSEWHERE = [
    f"41{county:04d}{township:03d}{number:03d}"
    for county in range(1, 41)
    for township in range(1, 51)
    for number in range(200, 210)
]


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


async def insert_regions(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        "INSERT INTO regions (code, name, level, parent_code, retired_on) VALUES ($1, '村', $2, $3, $4)",
        regions(),
    )


async def test_the_migration_counts_the_regions_villages_with_someone_assigned_today(
    admin_pool: asyncpg.Pool, tag: str, tmp_path: Path
) -> None:
    """The tables as the dashboard had them before migration 016; the migration keeps each region's steps
    from them, and a region's answer reads only its own rows."""
    schema = f"coverage_{tag}"
    before_016 = dashboard_with(tmp_path / "migrations", lambda name: name < "016")
    await prepare_schema(admin_pool, before_016, schema)
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        try:
            await insert_regions(conn)
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
                    ("a-7", ELSEWHERE[1], TODAY, TODAY + year, TODAY - timedelta(days=1)),  # released first
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
        finally:
            await conn.execute("RESET search_path")
    await prepare_schema(admin_pool, dashboard_projection(), schema)  # migration 016
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        try:
            await conn.execute("ANALYZE coverage_steps")
            await conn.execute("ANALYZE village_coverage")
            answers = {
                code: await queries.coverage(conn, code, TODAY)
                for code in (
                    COUNTY,
                    f"{COUNTY}001",
                    f"{COUNTY}002",
                    VILLAGES[0],
                    VILLAGES[2],
                    VILLAGES[4],
                    "3704",
                    "37",
                    "41",
                )
            }
            country = await queries.coverage(conn, COUNTRY_CODE, TODAY)
            tomorrow = await queries.coverage(conn, COUNTY, TODAY + timedelta(days=1))
            county_plan = await plan_nodes(conn, queries.COVERAGE, COUNTY, TODAY)
            country_plan = await plan_nodes(conn, queries.COVERAGE, COUNTRY_CODE, TODAY)
            village_plan = await plan_nodes(conn, queries.VILLAGE_COVERAGE, VILLAGES[0], TODAY)
        finally:
            await conn.execute("RESET search_path")
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert answers == {
        COUNTY: {"villages": 9, "villages_with_advisor": 3},
        f"{COUNTY}001": {"villages": 5, "villages_with_advisor": 2},
        f"{COUNTY}002": {"villages": 4, "villages_with_advisor": 1},
        VILLAGES[0]: {"villages": 1, "villages_with_advisor": 1},
        VILLAGES[2]: {"villages": 1, "villages_with_advisor": 0},
        VILLAGES[4]: {"villages": 1, "villages_with_advisor": 0},
        "3704": {"villages": 9, "villages_with_advisor": 3},
        "37": {"villages": 9, "villages_with_advisor": 3},
        "41": {"villages": len(ELSEWHERE), "villages_with_advisor": 1},
    }
    assert country == {"villages": 9 + len(ELSEWHERE), "villages_with_advisor": 4}
    assert tomorrow == {"villages": 9, "villages_with_advisor": 4}, "the term that starts tomorrow"
    for plan in (county_plan, country_plan):
        scans = scans_of(plan, "coverage_steps")
        assert scans, "the plan reads coverage_steps"
        assert "Seq Scan" not in scans, scans
        assert not scans_of(plan, "regions"), "no village is read"
    assert scans_of(village_plan, "village_coverage") == ["Index Scan"], "a village reads its own row"


async def test_a_rebuilds_batch_looks_each_village_up_through_the_indexes(
    admin_pool: asyncpg.Pool, tag: str
) -> None:
    """A batch of 5,000 villages on tables not analysed yet (a rebuild's first batches): every table is read
    through its index, village by village, never scanned or joined to every touched code (that took up to
    65 s a batch of 10,000 villages of 110,000)."""
    schema = f"coverage_plan_{tag}"
    await prepare_schema(admin_pool, dashboard_projection(), schema)
    codes = ELSEWHERE[:5_000]
    async with admin_pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                await conn.executemany(
                    "INSERT INTO regions (code, name, level, parent_code) VALUES ($1, '村', 'village', $2)",
                    [(code, code[:9]) for code in ELSEWHERE],
                )
                await conn.execute("SELECT set_config($1, $2, true)", *coverage.PLANNER)
                plan = await plan_nodes(conn, coverage.WRITE, codes)
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for table in ("regions", "assignments", "team_assignments", "village_coverage"):
        scans = scans_of(plan, table)
        assert scans, f"the plan reads {table}"
        assert "Seq Scan" not in scans, (table, scans)
    joined = [node for node in plan if "Join Filter" in node]
    assert not joined, joined


def registry(seed: int) -> tuple[list[str], list[ConsumedEvent]]:
    """A county's regions and, over three years, advisors' and teams' terms, releases, retirements (some
    merges) and registrations again, as the registry sends them; the county's region codes."""
    rng = random.Random(seed)
    county = fresh_county()
    townships = [f"{county}00{n}" for n in (1, 2, 3)]
    villages = [f"{township}2{n:02d}" for township in townships for n in range(1, 6)]
    start = date(2025, 1, 1)

    def some_day() -> date:
        return start + timedelta(days=rng.randint(0, 3 * 365))

    payloads: list[EventPayload] = [
        RegionRegistered(code=county, name="县", level=RegionLevel.county, parent_code=county[:4]),
        *[
            RegionRegistered(code=t, name=f"镇{t[-1]}", level=RegionLevel.township, parent_code=county)
            for t in townships
        ],
    ]
    for version in range(400):
        village = rng.choice(villages)
        roll = rng.random()
        if roll < 0.15:
            payloads.append(
                RegionRegistered(
                    code=village, name=f"村{version}", level=RegionLevel.village, parent_code=village[:9]
                )
            )
        elif roll < 0.55:
            first = some_day()
            who = rng.randrange(8)
            term = {
                "village_code": village,
                "term_start": first,
                "term_end": first + timedelta(days=rng.randint(0, 500)),
                "annual_subsidy_yuan": Decimal("3600.00"),
            }
            payloads.append(
                AdvisorAssigned(advisor_id=f"lawyer-c{who}", **term)
                if rng.random() < 0.7
                else TeamAssigned(team_id=f"team-c{who}", **term)
            )
        elif roll < 0.75:
            who = rng.randrange(8)
            release = {
                "village_code": village,
                "effective_date": some_day(),
                "reason": ReleaseReason.replaced,
            }
            payloads.append(
                AdvisorReleased(advisor_id=f"lawyer-c{who}", **release)
                if rng.random() < 0.7
                else TeamReleased(team_id=f"team-c{who}", **release)
            )
        elif roll < 0.8:
            other = rng.choice([v for v in villages if v != village])
            payloads.append(
                RegionRetired(code=village, effective_date=some_day(), reason=RetireReason.abolished)
                if rng.random() < 0.5
                else RegionRetired(
                    code=village, effective_date=some_day(), reason=RetireReason.merged, successor_code=other
                )
            )
        elif roll < 0.85:
            payloads.append(
                RegionRegistered(
                    code=village, name=f"村{version}", level=RegionLevel.village, parent_code=village[:9]
                )
            )
    codes = [COUNTRY_CODE, county[:2], county[:4], county, *townships, *villages]
    return codes, registry_stream(payloads, rng, NOW)


async def coverage_tables(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    return {
        table: await conn.fetchval(
            f"""SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')
                FROM "{schema}".{table} t"""
        )
        for table in ("village_coverage", "coverage_steps")
    }


async def test_coverage_is_the_direct_count_on_every_day_whatever_the_batching(
    admin_pool: asyncpg.Pool, tag: str
) -> None:
    """Terms, releases, retirements and registrations again, applied one at a time, whole and cut: every
    region's answer on every day is the direct count, the steps are the same rows, and migration 016 run
    over the tables the events left keeps the same rows again."""
    codes, events = registry(seed=31)
    kinds = {type(item.event.data) for item in events}
    assert {AdvisorAssigned, AdvisorReleased, TeamAssigned, TeamReleased, RegionRetired} <= kinds
    days = sorted(
        {date(2024, 12, 1) + timedelta(days=n) for n in range(0, 4 * 365 + 200, 9)}
        | {
            moment + timedelta(days=shift)
            for item in events
            for moment in (
                getattr(item.event.data, "term_start", None),
                getattr(item.event.data, "term_end", None),
                getattr(item.event.data, "effective_date", None),
            )
            if moment is not None
            for shift in (0, 1)
        }
    )
    splits = {
        "one at a time": [[item] for item in events],
        "whole": [events],
        "cut": cut(events, random.Random(3), 6),
    }
    projection = dashboard_projection()
    kept: dict[str, dict[str, str]] = {}
    for split, batches in splits.items():
        schema = f"coverage_{tag}_{split.replace(' ', '_')}"
        await apply_batches(admin_pool, schema, batches, projection, NOW)
        async with admin_pool.acquire() as conn:
            await conn.execute(f'SET search_path = "{schema}"')
            try:
                covered_somewhere = 0
                for day in days:
                    for code in codes:
                        direct = await conn.fetchrow(DIRECT_COUNT, region_prefix(code), day)
                        assert await queries.coverage(conn, code, day) == {
                            "villages": direct["villages"],
                            "villages_with_advisor": direct["covered"],
                        }, (split, code, day)
                        covered_somewhere += direct["covered"]
                assert covered_somewhere, "some village is covered on some day"
                kept[split] = await coverage_tables(conn, schema)
                if split == "whole":  # migration 016 again, over the tables the events left
                    await conn.execute("DROP TABLE village_coverage, coverage_steps")
                    await conn.execute("DELETE FROM schema_migrations WHERE version = 16")
                    await conn.execute("RESET search_path")
                    await prepare_schema(admin_pool, projection, schema)
                    assert await coverage_tables(conn, schema) == kept[split], "migrated as applied"
            finally:
                await conn.execute("RESET search_path")
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert kept["one at a time"]["coverage_steps"], "the steps have rows"
    assert kept["whole"] == kept["one at a time"]
    assert kept["cut"] == kept["one at a time"]


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
            await insert_regions(conn)
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
