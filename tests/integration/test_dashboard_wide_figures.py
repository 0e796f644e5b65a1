"""Migration 014 turns `figures` from a row per metric into a row per (region, period, slot) with a column
per metric (issue 17): a deployed dashboard keeps its data, and every question gets the answer it got
before."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.events import COUNTRY_CODE
from plumbing.projection import prepare_schema
from services.dashboard import queries
from services.dashboard.projection import ACTIVITY_SLOT, ASSESSMENT_SLOT_BASE, dashboard_projection
from services.dashboard.rules import ACTIVE_ADVISORS, LEVEL_PREFIXES, METRICS, months_of
from tests.support.migrations import dashboard_with

VILLAGES = [f"370402{township:03d}{200 + number:03d}" for township in (1, 2) for number in range(3)]
VILLAGES += ["370403001201", "410102001201"]
# Counted per year at every level, villages included (rules.stored_deltas: a change without a month).
YEARLY = {
    "graded",
    "subsidy_fen",
    "subsidy_yuan",
    *(metric for metric in METRICS if metric.startswith("grades_")),
}
YEARS = ("2025", "2026")
PERIODS = [
    period
    for year in YEARS
    for period in (year, *(f"{year}-Q{quarter}" for quarter in range(1, 5)), *months_of(year))
]

# The reads before migration 014 (queries.figures and queries.series over a row per metric).
OLD_OTHERS = """SELECT region_code, metric, sum(value) AS value FROM figures
                WHERE region_code = ANY($1::text[]) AND period = $2 GROUP BY region_code, metric"""
OLD_VILLAGES = """SELECT region_code, metric, sum(value) AS value FROM figures
                  WHERE region_code = ANY($1::text[]) AND period = ANY($2::text[])
                    AND (period = $3 OR metric <> 'active_advisors')
                  GROUP BY region_code, metric"""
OLD_SERIES = """SELECT period, metric, sum(value) AS value FROM figures
                WHERE region_code = $1 AND period = ANY($2::text[]) GROUP BY period, metric"""


def old_rows(seed: int) -> dict[tuple[str, str, int, str], float]:
    """(region, period, slot, metric) → value as the projection before 014 left them: every metric of
    `METRICS` in several slots, a village's months (its quarters and years but for what is counted per
    year or distinctly are summed when asked), the regions above with every period, active advisors in
    their own slot at every level and period."""
    draw = random.Random(seed)
    rows: dict[tuple[str, str, int, str], float] = defaultdict(float)
    counted = [metric for metric in METRICS if metric != ACTIVE_ADVISORS]
    for number in range(6 * len(counted)):
        metric = counted[number % len(counted)]
        village = draw.choice(VILLAGES)
        year = draw.choice(YEARS)
        month = draw.randint(1, 12)
        slot = draw.choice([0, 1, 2, ASSESSMENT_SLOT_BASE, ASSESSMENT_SLOT_BASE + 1])
        value = draw.randint(1, 40) * (100 if metric == "subsidy_fen" else 1) + (
            0.5 if metric == "subsidy_yuan" else 0
        )
        if metric in YEARLY:
            where = [(year, 12)]
        else:
            where = [(f"{year}-{month:02d}", 12), (f"{year}-Q{(month - 1) // 3 + 1}", 9), (year, 9)]
        for period, deepest in where:
            for region in (
                COUNTRY_CODE,
                *(village[:digits] for digits in LEVEL_PREFIXES if digits <= deepest),
            ):
                rows[(region, period, slot, metric)] += value
    regions = sorted({key[0] for key in rows})
    for region in regions:
        for period in draw.sample(PERIODS, 8):
            rows[(region, period, ACTIVITY_SLOT, ACTIVE_ADVISORS)] = draw.randint(1, 9)
    return dict(rows)


async def old_answers(conn: asyncpg.Connection, codes: list[str]) -> list[Any]:
    """What queries.figures and queries.series answered from a row per metric."""
    answers: list[Any] = []
    villages = [code for code in codes if len(code) == 12]
    others = [code for code in codes if len(code) != 12]
    for period in PERIODS:
        found: dict[str, dict[str, float]] = {code: {} for code in codes}
        rows = list(await conn.fetch(OLD_OTHERS, others, period))
        rows += await conn.fetch(OLD_VILLAGES, villages, [period, *months_of(period)], period)
        for row in rows:
            found[row["region_code"]][row["metric"]] = row["value"]
        answers.append(found)
    for code in codes:
        for year in YEARS:
            months = months_of(year)
            series: dict[str, dict[str, float]] = {month: {} for month in months}
            for row in await conn.fetch(OLD_SERIES, code, months):
                series[row["period"]][row["metric"]] = row["value"]
            answers.append(series)
    return answers


async def new_answers(conn: asyncpg.Connection, codes: list[str]) -> list[Any]:
    answers: list[Any] = [await queries.figures(conn, codes, period) for period in PERIODS]
    answers += [await queries.series(conn, code, months_of(year)) for code in codes for year in YEARS]
    return answers


async def prepare_before_014(admin_pool: asyncpg.Pool, schema: str, tmp_path: Path) -> None:
    await prepare_schema(
        admin_pool, dashboard_with(tmp_path / "migrations", lambda name: name < "014"), schema
    )


async def test_the_migration_keeps_every_figure_and_every_answer(
    admin_pool: asyncpg.Pool, tag: str, tmp_path: Path
) -> None:
    schema = f"wide_{tag}"
    await prepare_before_014(admin_pool, schema, tmp_path)
    rows = old_rows(seed=14)
    codes = [*sorted({key[0] for key in rows}), "370499"]
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        await conn.executemany(
            """INSERT INTO figures (region_code, period, kafka_partition, metric, value)
               VALUES ($1, $2, $3, $4, $5)""",
            [(*key, value) for key, value in rows.items()],
        )
        before = await old_answers(conn, codes)
        held = sorted(tuple(row) for row in await conn.fetch("SELECT * FROM figures"))
        # A metric at 0, as versions before zeros were deleted could leave one (answered as 0 where no other
        # row had the metric): absent after, as after a rebuild.
        await conn.execute(
            "INSERT INTO figures (region_code, period, kafka_partition, metric, value) "
            "VALUES ('370402', '2025-Q1', 7, 'visits', 0)"
        )
        narrow = await conn.fetchval("SELECT count(*) FROM figures")
    assert {key[3] for key in rows} == set(METRICS), "every metric has a figure before"
    assert any(answer for answer in before[0].values()), "the questions find figures"

    # Up to 014 only: the synthetic active advisors have no `advisor_activity_total` behind them, and 015
    # counts them again from it (tests/integration/test_dashboard_batches.py tests 015).
    upto_014 = dashboard_with(tmp_path / "upto_014", lambda name: name < "015")
    await prepare_schema(admin_pool, upto_014, schema)
    async with admin_pool.acquire() as conn:
        await conn.execute(f'SET search_path = "{schema}"')
        wide = await conn.fetchval("SELECT count(*) FROM figures")
        assert sorted(tuple(row) for row in await conn.fetch(queries.figure_values("figures"))) == held
        after = await new_answers(conn, codes)
        assert not await conn.fetchval("SELECT count(*) FROM figures WHERE kafka_partition = 7")
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert wide == len({key[:3] for key in rows}) < narrow, "a row per region, period and slot"
    assert len(after) == len(before)
    for number, (found, expected) in enumerate(zip(after, before, strict=True)):
        assert found == expected, f"answer {number} differs after the migration"


async def test_a_metric_without_a_column_stops_the_migration(
    admin_pool: asyncpg.Pool, tag: str, tmp_path: Path
) -> None:
    projection = dashboard_projection()
    schema = f"unknown_{tag}"
    await prepare_before_014(admin_pool, schema, tmp_path)
    await admin_pool.execute(
        f"""INSERT INTO "{schema}".figures (region_code, period, kafka_partition, metric, value)
            VALUES ('37', '2025', 0, 'consultations', 3), ('37', '2025', 0, 'consultations_topic_tax', 1)"""
    )
    with pytest.raises(
        asyncpg.RaiseError, match="consultations_topic_tax, which migration 014 has no column for"
    ):
        await prepare_schema(admin_pool, projection, schema)
    assert await admin_pool.fetchval(f'SELECT count(*) FROM "{schema}".figures') == 2, "nothing was changed"
    await admin_pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
