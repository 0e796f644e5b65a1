"""Reads of the assessment's own tables, turned into the plain values the rules take."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from asyncpg import Record

from contracts.approval import ApprovalStatus
from contracts.assignment import TeamMembership, assigned_between_sql
from contracts.events import MAX_VISIT, Grade, PolicyRules
from plumbing.postgres import Connection, code_within_sql
from services.assessment.rules import Activity, PublishedClose, PublishedGrade, PublishedPolicy, Term, Visit
from services.assessment.rules.approval import (
    Adjustment,
    ApprovalState,
    ComputedGrade,
    grades_from_json,
)
from services.assessment.rules.teams import TeamActivity


def _term(row: Record) -> Term:
    return Term(row["term_start"], row["term_end"], row["released_on"], row["annual_subsidy_yuan"])


def _activity(row: Record) -> Activity:
    return Activity(
        event_type=row["event_type"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        on_site=Visit(row["on_site_start"], row["on_site_end"]) if row["on_site_start"] else None,
        offsite_minutes=row["offsite_minutes"],
        evening_or_holiday=row["evening_or_holiday"],
        large_event=row["large_event"],
        feedback_score=row["feedback_score"],
        voided=row["voided"],
    )


async def policies(conn: Connection) -> list[PublishedPolicy]:
    rows = await conn.fetch(
        "SELECT event_id, region_code, effective_from, rules FROM policies ORDER BY effective_from"
    )
    return [
        PublishedPolicy(
            row["region_code"],
            row["effective_from"],
            row["event_id"],
            PolicyRules.model_validate(orjson.loads(row["rules"])),
        )
        for row in rows
    ]


async def policy_history(conn: Connection, region_code: str) -> list[dict[str, Any]]:
    """Every policy published for the region or a region above it, oldest first."""
    rows = await conn.fetch(
        """SELECT event_id, region_code, effective_from, rules, published_by FROM policies
           WHERE $1 LIKE region_code || '%' ORDER BY effective_from, length(region_code)""",
        region_code,
    )
    return [
        {**dict(row), "event_id": str(row["event_id"]), "rules": orjson.loads(row["rules"])} for row in rows
    ]


async def tags(conn: Connection, code: str, day: date) -> list[str]:
    """The tags in force for a village, from its own classification and those of the regions above it."""
    return (await tags_of_villages(conn, [code], day))[code]


async def terms(conn: Connection, advisor_id: str, village_code: str) -> list[Term]:
    rows = await conn.fetch(
        """SELECT term_start, term_end, released_on, annual_subsidy_yuan FROM assignments
           WHERE advisor_id = $1 AND village_code = $2 ORDER BY term_start""",
        advisor_id,
        village_code,
    )
    return [_term(row) for row in rows]


async def activities(conn: Connection, advisor_id: str, village_code: str, since: datetime) -> list[Activity]:
    """The records that may count from `since` on: those after it, and a visit that began before it and
    ends after (a visit crossing midnight into the month counts there for the part after midnight)."""
    rows = await conn.fetch(
        """SELECT event_type, occurred_at, recorded_at, on_site_start, on_site_end, offsite_minutes,
                  evening_or_holiday, large_event, feedback_score, voided_at IS NOT NULL AS voided
           FROM activities WHERE advisor_id = $1 AND village_code = $2 AND occurred_at >= $3
             AND (occurred_at >= $4 OR on_site_end > $4)
           ORDER BY occurred_at""",
        advisor_id,
        village_code,
        since - MAX_VISIT,
        since,
    )
    return [_activity(row) for row in rows]


async def violation_in_year(conn: Connection, advisor_id: str, year: int) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM violations WHERE advisor_id = $1 AND extract(year FROM violation_date) = $2 LIMIT 1",
        advisor_id,
        year,
    )
    return found is not None


async def assigned_pairs(
    conn: Connection, region_code: str, first_day: date, last_day: date
) -> list[tuple[str, str]]:
    """(advisor, village) pairs in the region whose terms overlap the days."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT advisor_id, village_code FROM assignments a
           WHERE {code_within_sql("a.village_code", "$1")} AND {assigned_between_sql("a", "$2", "$3")}
           ORDER BY village_code, advisor_id""",  # noqa: S608 - the condition is code, values are parameters
        region_code,
        first_day,
        last_day,
    )
    return [(row["advisor_id"], row["village_code"]) for row in rows]


async def advisor_villages(conn: Connection, advisor_id: str, region_code: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT DISTINCT village_code FROM assignments WHERE advisor_id = $1 AND village_code LIKE $2 || '%'
           ORDER BY village_code""",
        advisor_id,
        region_code,
    )
    return [row["village_code"] for row in rows]


async def all_pairs(conn: Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch("SELECT DISTINCT advisor_id, village_code FROM assignments ORDER BY 2, 1")
    return [(row["advisor_id"], row["village_code"]) for row in rows]


async def known_output_ids(conn: Connection, event_ids: list[UUID]) -> set[UUID]:
    rows = await conn.fetch(
        """SELECT event_id FROM month_closes WHERE event_id = ANY($1::uuid[])
           UNION SELECT event_id FROM alerts WHERE event_id = ANY($1::uuid[])
           UNION SELECT event_id FROM grades WHERE event_id = ANY($1::uuid[])""",
        event_ids,
    )
    return {row["event_id"] for row in rows}


async def alerts_under(conn: Connection, region_code: str, since: date, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT event_id, advisor_id, village_code, kind, as_of, detail FROM alerts
           WHERE {code_within_sql("village_code", "$1")} AND as_of >= $2
           ORDER BY as_of DESC, village_code LIMIT $3""",  # noqa: S608 - the condition is code, values are parameters
        region_code,
        since,
        limit,
    )
    return [
        {**dict(row), "event_id": str(row["event_id"]), "as_of": row["as_of"].isoformat()} for row in rows
    ]


async def advisor_alerts(conn: Connection, advisor_id: str, since: date, limit: int) -> list[dict[str, Any]]:
    """An advisor's own alerts from `since` on, newest first (the workbench's 我的本月)."""
    rows = await conn.fetch(
        """SELECT event_id, village_code, kind, as_of, detail FROM alerts
           WHERE advisor_id = $1 AND as_of >= $2 ORDER BY as_of DESC, village_code LIMIT $3""",
        advisor_id,
        since,
        limit,
    )
    return [
        {**dict(row), "event_id": str(row["event_id"]), "as_of": row["as_of"].isoformat()} for row in rows
    ]


# The latest revision of each grade in the region ($1, its code's prefix) for the year ($2).
GRADES_UNDER = f"""SELECT DISTINCT ON (village_code, advisor_id)
          advisor_id, village_code, year, revision, score, grade, subsidy_ratio, subsidy_yuan,
          components, policy_region_code, policy_event_id, changes
   FROM grades WHERE year = $2 AND {code_within_sql("village_code", "$1")}
   ORDER BY village_code, advisor_id, revision DESC"""  # noqa: S608 - the condition is code, values are parameters


async def grades_under(conn: Connection, region_code: str, year: int) -> list[dict[str, Any]]:
    """The latest revision of each grade in the region for the year: the table a county bureau pays from."""
    rows = await conn.fetch(GRADES_UNDER, region_code, year)
    return [
        {
            **dict(row),
            "policy_event_id": str(row["policy_event_id"]),
            "subsidy_yuan": str(row["subsidy_yuan"]),
            "components": orjson.loads(row["components"]),
        }
        for row in rows
    ]


# -- the closer's reads: a chunk of (advisor, village) pairs in one statement per table -------------------

Pair = tuple[str, str]


@dataclass
class PairFacts:
    """What the closer needs of one (advisor, village) pair."""

    terms: list[Term] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    closes: dict[str, PublishedClose] = field(default_factory=dict)  # the latest revision of each month
    grades: dict[int, PublishedGrade] = field(default_factory=dict)  # the latest revision of each year


async def facts_of_pairs(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, PairFacts]:
    """Terms, all activities (a grade uses its whole year, however old), and the latest published close
    of each month and grade of each year, for every pair of the chunk: four statements however many
    pairs (one per pair per table before; a province has some 60,000 pairs)."""
    found: dict[Pair, PairFacts] = {pair: PairFacts() for pair in pairs}
    columns = ([advisor for advisor, _ in pairs], [village for _, village in pairs])
    for row in await conn.fetch(
        """SELECT a.advisor_id, a.village_code, term_start, term_end, released_on, annual_subsidy_yuan
            FROM assignments a
            JOIN unnest($1::text[], $2::text[]) AS p(advisor_id, village_code)
                 USING (advisor_id, village_code)
            ORDER BY a.advisor_id, a.village_code, term_start""",
        *columns,
    ):
        found[(row["advisor_id"], row["village_code"])].terms.append(_term(row))
    for row in await conn.fetch(
        """SELECT a.advisor_id, a.village_code, event_type, occurred_at, recorded_at, on_site_start,
                   on_site_end, offsite_minutes, evening_or_holiday, large_event, feedback_score,
                   voided_at IS NOT NULL AS voided
            FROM activities a
            JOIN unnest($1::text[], $2::text[]) AS p(advisor_id, village_code)
                 USING (advisor_id, village_code)
            ORDER BY a.advisor_id, a.village_code, occurred_at""",
        *columns,
    ):
        found[(row["advisor_id"], row["village_code"])].activities.append(_activity(row))
    for row in await conn.fetch(
        """SELECT DISTINCT ON (m.advisor_id, m.village_code, month)
                   m.advisor_id, m.village_code, month, revision, on_site_minutes, credited_offsite_minutes,
                   required_minutes, met
            FROM month_closes m
            JOIN unnest($1::text[], $2::text[]) AS p(advisor_id, village_code)
                 USING (advisor_id, village_code)
            ORDER BY m.advisor_id, m.village_code, month, revision DESC""",
        *columns,
    ):
        found[(row["advisor_id"], row["village_code"])].closes[row["month"]] = PublishedClose(
            row["revision"],
            row["on_site_minutes"],
            row["credited_offsite_minutes"],
            row["required_minutes"],
            row["met"],
        )
    for row in await conn.fetch(
        """SELECT DISTINCT ON (g.advisor_id, g.village_code, year)
                   g.advisor_id, g.village_code, year, revision, score, grade, subsidy_yuan
            FROM grades g
            JOIN unnest($1::text[], $2::text[]) AS p(advisor_id, village_code)
                 USING (advisor_id, village_code)
            ORDER BY g.advisor_id, g.village_code, year, revision DESC""",
        *columns,
    ):
        found[(row["advisor_id"], row["village_code"])].grades[row["year"]] = PublishedGrade(
            row["revision"], row["score"], Grade(row["grade"]), row["subsidy_yuan"]
        )
    return found


async def tags_of_villages(conn: Connection, villages: Sequence[str], day: date) -> dict[str, list[str]]:
    """The tags in force for each village (its own classification and those of the regions above it), in
    one statement however many villages."""
    found: dict[str, set[str]] = {village: set() for village in villages}
    for row in await conn.fetch(
        """SELECT DISTINCT ON (v.code, t.code) v.code AS village, t.tags
           FROM unnest($1::text[]) AS v(code) JOIN region_tags t ON v.code LIKE t.code || '%'
           WHERE t.effective_from <= $2
           ORDER BY v.code, t.code, t.effective_from DESC""",
        list(set(villages)),
        day,
    ):
        found[row["village"]].update(row["tags"])
    return {village: sorted(tags) for village, tags in found.items()}


async def violation_years(conn: Connection, advisors: Sequence[str]) -> set[tuple[str, int]]:
    """(advisor, year) of every violation of the given advisors: `violation_in_year` for many."""
    rows = await conn.fetch(
        """SELECT DISTINCT advisor_id, extract(year FROM violation_date)::int AS year FROM violations
           WHERE advisor_id = ANY($1::text[])""",
        list(set(advisors)),
    )
    return {(row["advisor_id"], row["year"]) for row in rows}


# -- year-end approval and payout -------------------------------------------------------------------------


async def computed_grades(conn: Connection, county_code: str, year: int) -> list[ComputedGrade]:
    """The latest computed revision of each grade of the county's villages for the year."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT ON (village_code, advisor_id)
                  advisor_id, village_code, revision, grade, subsidy_ratio, subsidy_yuan
           FROM grades WHERE year = $2 AND {code_within_sql("village_code", "$1")}
           ORDER BY village_code, advisor_id, revision DESC""",  # noqa: S608 - the condition is code, values are parameters
        county_code,
        year,
    )
    return [
        ComputedGrade(
            row["advisor_id"],
            row["village_code"],
            row["revision"],
            Grade(row["grade"]),
            row["subsidy_ratio"],
            row["subsidy_yuan"],
        )
        for row in rows
    ]


async def adjustments(conn: Connection, county_code: str, year: int) -> list[Adjustment]:
    rows = await conn.fetch(
        """SELECT * FROM grade_adjustments WHERE county_code = $1 AND year = $2 AND applied
           ORDER BY acted_at""",
        county_code,
        year,
    )
    return [
        Adjustment(
            row["event_id"],
            row["advisor_id"],
            row["village_code"],
            row["based_on_revision"],
            Grade(row["grade"]),
            row["subsidy_ratio"],
            row["subsidy_yuan"],
            row["reason"],
            row["acted_by"],
            row["acted_at"],
        )
        for row in rows
    ]


async def approval_state(conn: Connection, county_code: str, year: int) -> ApprovalState:
    row = await conn.fetchrow(
        "SELECT * FROM approvals WHERE county_code = $1 AND year = $2", county_code, year
    )
    if row is None:
        return ApprovalState()
    return ApprovalState(
        status=ApprovalStatus(row["status"]),
        submission=row["submission"],
        locked_submission=row["locked_submission"],
        locked=grades_from_json(row["locked"]),
        pending=grades_from_json(row["pending"]),
        acted_by=row["acted_by"],
        acted_at=row["acted_at"],
        reason=row["reason"],
        accepted_by=row["accepted_by"],
        accepted_at=row["accepted_at"],
    )


async def counties_with_grades(conn: Connection, region_code: str, year: int) -> list[str]:
    """The counties within the region (or the county containing it) that have grades or an approval."""
    prefix = region_code[:6]
    rows = await conn.fetch(
        f"""SELECT DISTINCT left(village_code, 6) AS county FROM grades
           WHERE year = $2 AND {code_within_sql("village_code", "$1")}
           UNION SELECT county_code FROM approvals WHERE {code_within_sql("county_code", "$1")} AND year = $2
           ORDER BY 1""",  # noqa: S608 - the conditions are code, values are parameters
        prefix,
        year,
    )
    return [row[0] for row in rows]


async def approval_steps(conn: Connection, county_code: str, year: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT step, submission, acted_by, acted_at, reason, total_yuan, applied FROM approval_steps
           WHERE county_code = $1 AND year = $2 ORDER BY acted_at""",
        county_code,
        year,
    )
    return [
        {
            **dict(row),
            "acted_at": row["acted_at"].isoformat(),
            "total_yuan": None if row["total_yuan"] is None else str(row["total_yuan"]),
        }
        for row in rows
    ]


async def adjustment_history(conn: Connection, county_code: str, year: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT event_id, advisor_id, village_code, based_on_revision, grade, subsidy_ratio, subsidy_yuan,
                  reason, acted_by, acted_at, applied
           FROM grade_adjustments WHERE county_code = $1 AND year = $2 ORDER BY acted_at""",
        county_code,
        year,
    )
    return [
        {
            **dict(row),
            "event_id": str(row["event_id"]),
            "subsidy_yuan": str(row["subsidy_yuan"]),
            "acted_at": row["acted_at"].isoformat(),
        }
        for row in rows
    ]


async def terms_of_pairs(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, list[Term]]:
    found: dict[Pair, list[Term]] = {pair: [] for pair in pairs}
    rows = await conn.fetch(
        """SELECT a.advisor_id, a.village_code, term_start, term_end, released_on, annual_subsidy_yuan
           FROM assignments a
           JOIN unnest($1::text[], $2::text[]) AS p(advisor_id, village_code)
             ON a.advisor_id = p.advisor_id AND a.village_code = p.village_code
           ORDER BY term_start""",
        [advisor for advisor, _ in pairs],
        [village for _, village in pairs],
    )
    for row in rows:
        found[(row["advisor_id"], row["village_code"])].append(_term(row))
    return found


async def names(conn: Connection, advisor_ids: Sequence[str], codes: Sequence[str]) -> dict[str, Any]:
    """Advisors' names and organisations, and places' names, for the payout sheet."""
    advisors = await conn.fetch(
        "SELECT advisor_id, name, organisation FROM advisors WHERE advisor_id = ANY($1::text[])",
        list(advisor_ids),
    )
    places = await conn.fetch("SELECT code, name FROM places WHERE code = ANY($1::text[])", list(codes))
    return {
        "advisors": {row["advisor_id"]: (row["name"], row["organisation"]) for row in advisors},
        "places": {row["code"]: row["name"] for row in places},
    }


async def assigned_teams(
    conn: Connection, region_code: str, first_day: date, last_day: date
) -> list[tuple[str, str]]:
    """(team, village) pairs in the region whose terms overlap the days."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT team_id, village_code FROM team_assignments t
           WHERE {code_within_sql("t.village_code", "$1")} AND {assigned_between_sql("t", "$2", "$3")}
           ORDER BY village_code, team_id""",  # noqa: S608 - the condition is code, values are parameters
        region_code,
        first_day,
        last_day,
    )
    return [(row["team_id"], row["village_code"]) for row in rows]


async def team_registrations(conn: Connection, team_id: str) -> list[Record]:
    """Every registration of the team in the registry's order (the last one names it)."""
    return list(
        await conn.fetch(
            """SELECT name, organisation, leader_id, effective_from, members FROM team_registrations
               WHERE team_id = $1 ORDER BY position""",
            team_id,
        )
    )


def memberships(registrations: Sequence[Record]) -> list[TeamMembership]:
    return [TeamMembership(row["effective_from"], tuple(row["members"])) for row in registrations]


async def team_terms(conn: Connection, team_id: str, village_code: str) -> list[Term]:
    rows = await conn.fetch(
        """SELECT term_start, term_end, released_on, annual_subsidy_yuan FROM team_assignments
           WHERE team_id = $1 AND village_code = $2 ORDER BY term_start""",
        team_id,
        village_code,
    )
    return [_term(row) for row in rows]


async def team_records(
    conn: Connection, team_id: str, village_code: str, since: datetime
) -> list[TeamActivity]:
    """The records served as the team in the village that may count from `since` on (as `activities`)."""
    rows = await conn.fetch(
        """SELECT a.advisor_id, a.event_type, a.occurred_at, a.recorded_at, a.on_site_start, a.on_site_end,
                  a.offsite_minutes, a.evening_or_holiday, a.large_event, a.feedback_score,
                  a.voided_at IS NOT NULL AS voided
           FROM team_activities t JOIN activities a USING (event_id)
           WHERE t.team_id = $1 AND t.village_code = $2 AND a.village_code = $2 AND a.occurred_at >= $3
             AND (a.occurred_at >= $4 OR a.on_site_end > $4)
           ORDER BY a.occurred_at""",
        team_id,
        village_code,
        since - MAX_VISIT,
        since,
    )
    return [TeamActivity(row["advisor_id"], _activity(row)) for row in rows]


async def violation_of_any_in_year(conn: Connection, advisor_ids: Sequence[str], year: int) -> bool:
    found = await conn.fetchval(
        """SELECT 1 FROM violations
           WHERE advisor_id = ANY($1::text[]) AND extract(year FROM violation_date) = $2 LIMIT 1""",
        list(advisor_ids),
        year,
    )
    return found is not None
