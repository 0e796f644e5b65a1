"""Reads of the dashboard's tables: a region's figures cost a handful of rows at any level."""

from __future__ import annotations

from datetime import date
from typing import Any

from contracts.assignment import TeamMembership, assigned_on_sql, last_day_served_sql, members_on
from contracts.events import COUNTRY_CODE, LEVEL_DIGITS, RegionLevel, region_prefix
from plumbing.postgres import Connection, code_within_sql
from services.dashboard.rules import ACTIVE_ADVISORS, METRICS, months_of, present

# Each metric summed over the partitions' rows (a column each, migration 014).
SUMS = ", ".join(f"sum({metric}) AS {metric}" for metric in METRICS)
# A village's quarter or year: its months, but active advisors (distinct, not additive) from the period's row.
VILLAGE_SUMS = ", ".join(
    f"sum({metric}) FILTER (WHERE period = $3) AS {metric}"
    if metric == ACTIVE_ADVISORS
    else f"sum({metric}) AS {metric}"
    for metric in METRICS
)
# The country's children: an index on the provinces (migration 013), not a scan of every region.
PROVINCES = "SELECT code, name, level FROM regions WHERE level = 'province' ORDER BY code"


async def region(conn: Connection, code: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT code, name, level, parent_code FROM regions WHERE code = $1", code)
    return dict(row) if row else None


async def children(conn: Connection, code: str) -> list[dict[str, Any]]:
    """The regions directly below: the provinces below the country (a province names no parent)."""
    if code == COUNTRY_CODE:
        rows = await conn.fetch(PROVINCES)
        return [dict(row) for row in rows]
    rows = await conn.fetch(
        "SELECT code, name, level FROM regions WHERE parent_code = $1 ORDER BY code", code
    )
    return [dict(row) for row in rows]


async def figures(conn: Connection, codes: list[str], period: str) -> dict[str, dict[str, float]]:
    """Region → metric → value for the period, summed over the partitions' rows. A village keeps months
    only (but for what is counted per year or distinctly, like grades and active advisors), so its quarter
    or year is the sum of its months plus those rows."""
    villages = [code for code in codes if len(code) == 12]
    others = [code for code in codes if len(code) != 12]
    # Two statements, so that each reads an exact index range (an OR of both defeats it, and the read
    # would grow with the months stored).
    rows = list(
        await conn.fetch(
            f"""SELECT region_code, {SUMS} FROM figures
               WHERE region_code = ANY($1::text[]) AND period = $2 GROUP BY region_code""",  # noqa: S608 - column names from METRICS
            others,
            period,
        )
    )
    if villages:
        asked = [period, *months_of(period)]
        # The range is the same periods' bounds (a year's are its own row and its months: "2026" to
        # "2026-12"): it adds no answer but it keeps the plan PostgreSQL caches for this prepared statement
        # from descending the index once per village and period (73 villages and 13 periods: 949 descents,
        # twice the time of the read; bench.dashboard_apply --reads, bench/results/2026-12-07-dashboard-
        # months-only.txt); with it, once per village.
        rows += await conn.fetch(
            f"""SELECT region_code, {VILLAGE_SUMS} FROM figures
               WHERE region_code = ANY($1::text[]) AND period = ANY($2::text[])
                 AND period BETWEEN $4 AND $5
               GROUP BY region_code""",  # noqa: S608 - column names from METRICS
            villages,
            asked,
            period,
            min(asked),
            max(asked),
        )
    found: dict[str, dict[str, float]] = {code: {} for code in codes}
    for row in rows:
        found[row["region_code"]] = present(dict(row))
    return found


async def series(conn: Connection, code: str, periods: list[str]) -> dict[str, dict[str, float]]:
    rows = await conn.fetch(
        f"""SELECT period, {SUMS} FROM figures
           WHERE region_code = $1 AND period = ANY($2::text[]) GROUP BY period""",  # noqa: S608 - column names from METRICS
        code,
        periods,
    )
    found: dict[str, dict[str, float]] = {period: {} for period in periods}
    for row in rows:
        found[row["period"]] = present(dict(row))
    return found


def figure_values(table: str) -> str:
    """The wide rows of `table` (`figures`, or schema-qualified) as the table held them before migration 014:
    (region_code, period, kafka_partition, metric, value), one row per metric with a value; for comparing
    tables and for reads by hand."""
    pairs = ", ".join(f"('{metric}', f.{metric})" for metric in METRICS)
    return (
        f"SELECT f.region_code, f.period, f.kafka_partition, m.metric, m.value FROM {table} f "  # noqa: S608 - names from METRICS and the caller
        f"CROSS JOIN LATERAL (VALUES {pairs}) AS m(metric, value) WHERE m.value <> 0"
    )


async def path(conn: Connection, code: str, from_country: bool = False) -> list[dict[str, Any]]:
    """The region and every region above it, province first (the country's path is the country); with
    `from_country`, the country first (the Ministry's way down, when the country is registered)."""
    prefixes = [code[:digits] for digits in (2, 4, 6, 9, 12) if digits <= len(code)] or [code]
    if from_country and code != COUNTRY_CODE:
        prefixes.insert(0, COUNTRY_CODE)
    rows = await conn.fetch(
        "SELECT code, name, level FROM regions WHERE code = ANY($1::text[]) ORDER BY length(code)", prefixes
    )
    return [dict(row) for row in rows]


# Regions whose name holds the text ($1), within the caller's region ($2, its code's prefix).
SEARCH = f"""SELECT code, name, level FROM regions
   WHERE name LIKE '%' || $1 || '%' AND {code_within_sql("code", "$2")}
   ORDER BY length(code), code LIMIT $3"""  # noqa: S608 - the condition is code, values are parameters


async def search(conn: Connection, text: str, within: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(SEARCH, text, region_prefix(within), limit)
    return [dict(row) for row in rows]


# 全覆盖率: the villages of the region ($1, its code's prefix) and those with an advisor or a team assigned
# on the day ($2).
# 全覆盖率 from what the projection keeps (migration 016, services/dashboard/coverage.py): a region's steps up
# to the day, not a check of every village below it; a village's own spans.
COVERAGE = """SELECT coalesce(sum(villages), 0)::bigint AS villages,
          coalesce(sum(covered), 0)::bigint AS covered
   FROM coverage_steps WHERE region_code = $1 AND day <= $2"""
VILLAGE_COVERAGE = """SELECT count(*) AS villages, count(*) FILTER (WHERE spans @> $2::date) AS covered
   FROM village_coverage WHERE village_code = $1"""


async def coverage(conn: Connection, code: str, today: date) -> dict[str, int]:
    """全覆盖率: villages with an advisor or a team assigned today, of all villages in the region."""
    village = len(code) == LEVEL_DIGITS[RegionLevel.village]
    row = await conn.fetchrow(VILLAGE_COVERAGE if village else COVERAGE, code, today)
    return {"villages": row["villages"], "villages_with_advisor": row["covered"]} if row else {}


async def village_advisors(conn: Connection, village_code: str, today: date) -> list[dict[str, Any]]:
    """The advisors assigned to a village today, with their public card (name, organisation, contact)."""
    rows = await conn.fetch(
        f"""SELECT a.advisor_id, d.name, d.kind, d.organisation, d.phone, a.term_start, a.term_end
           FROM assignments a LEFT JOIN advisors d USING (advisor_id)
           WHERE a.village_code = $1 AND {assigned_on_sql("a", "$2")}
           ORDER BY a.term_start, a.advisor_id""",  # noqa: S608 - the condition is code, values are parameters
        village_code,
        today,
    )
    return [dict(row) for row in rows]


async def village_teams_today(conn: Connection, village_code: str, today: date) -> list[dict[str, Any]]:
    """The teams assigned to a village today, each with its term and its members' public cards (name,
    organisation, the contact they publish) as its latest registration names them on the day."""
    rows = await conn.fetch(
        f"""SELECT team_id, term_start, term_end FROM team_assignments t
           WHERE village_code = $1 AND {assigned_on_sql("t", "$2")} ORDER BY term_start, team_id""",  # noqa: S608 - the condition is code, values are parameters
        village_code,
        today,
    )
    cards = await teams(conn, [row["team_id"] for row in rows], today)
    phones = {
        row["advisor_id"]: row["phone"]
        for row in await conn.fetch(
            "SELECT advisor_id, phone FROM advisors WHERE advisor_id = ANY($1::text[])",
            sorted({m["advisor_id"] for card in cards.values() for m in card["members"]}),
        )
    }
    return [
        {
            **cards[row["team_id"]],
            "members": [
                {**member, "phone": phones.get(member["advisor_id"])}
                for member in cards[row["team_id"]]["members"]
            ],
            "term_start": row["term_start"],
            "term_end": row["term_end"],
        }
        for row in rows
        if row["team_id"] in cards
    ]


async def approvals(conn: Connection, code: str, year: int) -> list[dict[str, Any]]:
    """Every county within the region (or the county containing it) and where its year's approval stands."""
    rows = await conn.fetch(
        f"""SELECT r.code AS county_code, r.name, coalesce(a.status, 'not_started') AS status,
                  coalesce(a.submission, 0) AS submission, a.acted_by, a.acted_at, a.reason
           FROM regions r LEFT JOIN approvals a ON a.county_code = r.code AND a.year = $2
           WHERE r.level = 'county' AND {code_within_sql("r.code", "$1")}
           ORDER BY r.code""",  # noqa: S608 - the condition is code, values are parameters
        region_prefix(code)[:6],
        year,
    )
    return [
        {**dict(row), "acted_at": row["acted_at"].isoformat() if row["acted_at"] else None} for row in rows
    ]


async def village_log(conn: Connection, code: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """How many service records the village has, and the latest `limit` of them (kind, time, advisor,
    voided)."""
    count: int = await conn.fetchval("SELECT count(*) FROM village_log WHERE village_code = $1", code)
    rows = await conn.fetch(
        """SELECT occurred_at, event_type, advisor_id, voided FROM village_log WHERE village_code = $1
           ORDER BY occurred_at DESC, event_id LIMIT $2""",
        code,
        limit,
    )
    return count, [dict(row) for row in rows]


async def village_terms(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Every advisor who served or serves the village, with their terms and public card."""
    rows = await conn.fetch(
        """SELECT a.advisor_id, d.name, d.organisation, a.term_start, a.term_end
           FROM assignments a LEFT JOIN advisors d USING (advisor_id)
           WHERE a.village_code = $1 ORDER BY a.term_start, a.advisor_id""",
        code,
    )
    return [dict(row) for row in rows]


async def teams(conn: Connection, team_ids: list[str], day: date) -> dict[str, dict[str, Any]]:
    """Each team's card as its latest registration names it, with its members on the day (name and
    organisation from their own registration)."""
    rows = await conn.fetch(
        """SELECT team_id, name, organisation, leader_id, effective_from, members FROM team_registrations
           WHERE team_id = ANY($1::text[]) ORDER BY team_id, position""",
        team_ids,
    )
    registrations: dict[str, list[Any]] = {}
    for row in rows:
        registrations.setdefault(row["team_id"], []).append(row)
    members = {
        team_id: members_on([TeamMembership(r["effective_from"], tuple(r["members"])) for r in found], day)
        for team_id, found in registrations.items()
    }
    cards = await conn.fetch(
        "SELECT advisor_id, name, organisation FROM advisors WHERE advisor_id = ANY($1::text[])",
        sorted({member for found in members.values() for member in found}),
    )
    advisors = {card["advisor_id"]: card for card in cards}
    return {
        team_id: {
            "team_id": team_id,
            "name": found[-1]["name"],
            "organisation": found[-1]["organisation"],
            "leader_id": found[-1]["leader_id"],
            "members": [
                {
                    "advisor_id": member,
                    "name": advisors[member]["name"] if member in advisors else None,
                    "organisation": advisors[member]["organisation"] if member in advisors else None,
                    "leader": member == found[-1]["leader_id"],
                }
                for member in members[team_id]
            ],
        }
        for team_id, found in registrations.items()
    }


async def village_team_terms(conn: Connection, code: str) -> list[dict[str, Any]]:
    """Every team that served or serves the village, with its terms."""
    rows = await conn.fetch(
        f"""SELECT team_id, term_start, term_end, {last_day_served_sql("t")} AS last_day_served
           FROM team_assignments t WHERE village_code = $1 ORDER BY term_start, team_id""",  # noqa: S608 - the expression is code
        code,
    )
    return [dict(row) for row in rows]


async def region_team_terms(conn: Connection, code: str, today: date) -> list[dict[str, Any]]:
    """The teams assigned today to villages of the region, village by village."""
    rows = await conn.fetch(
        f"""SELECT t.team_id, t.village_code, r.name AS village_name, t.term_start, t.term_end
           FROM team_assignments t LEFT JOIN regions r ON r.code = t.village_code
           WHERE {code_within_sql("t.village_code", "$1")} AND {assigned_on_sql("t", "$2")}
           ORDER BY t.village_code, t.team_id""",  # noqa: S608 - the condition is code, values are parameters
        region_prefix(code),
        today,
    )
    return [dict(row) for row in rows]
