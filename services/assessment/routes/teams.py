"""The assessment's teams (团队化服务, issue 18): where each team assigned in a region stands in its village,
this month (the members' minutes together and each member's, met by the policy's hours basis) and the year
to date (the team's provisional grade)."""

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter

from contracts.events import DEFAULT_ZONE
from plumbing.access import refuse_advisors
from plumbing.auth import require_region
from plumbing.http import QueryMoment, RegionCodePath
from plumbing.postgres import Connection
from plumbing.routing import AppClock, Caller, Db
from services.assessment import queries
from services.assessment.routes.compliance import policy_json
from services.assessment.rules import MonthCompliance, local_day, month_bounds
from services.assessment.rules.teams import members_records, month_members, team_month, team_snapshot

router = APIRouter()


def _minutes(found: MonthCompliance) -> dict[str, Any]:
    return {
        "on_site_minutes": found.minutes.on_site,
        "credited_offsite_minutes": found.minutes.credited_offsite,
        "required_minutes": found.minutes.required,
        "met": found.minutes.met,
        "status": str(found.status),
    }


async def team_standing(conn: Connection, team_id: str, village_code: str, now: datetime) -> dict[str, Any]:
    today = local_day(now)
    registrations = await queries.team_registrations(conn, team_id)
    memberships = queries.memberships(registrations)
    terms = await queries.team_terms(conn, team_id, village_code)
    tags = await queries.tags(conn, village_code, today)
    policies = await queries.policies(conn)
    since = datetime(today.year - 1, 1, 1, tzinfo=DEFAULT_ZONE)
    records = await queries.team_records(conn, team_id, village_code, since)
    answerable = month_members(memberships, today.year, today.month, now)
    members_ever = sorted({member for item in memberships for member in item.members})
    month = team_month(
        now,
        today.year,
        today.month,
        village_code,
        tags,
        policies,
        terms,
        members_records(memberships, records),
        answerable,
    )
    year = team_snapshot(
        now,
        village_code,
        tags,
        policies,
        terms,
        memberships,
        records,
        await queries.violation_of_any_in_year(conn, members_ever, today.year),
    )
    latest = registrations[-1] if registrations else None
    names = (await queries.names(conn, sorted({*answerable, *month.members}), [village_code]))["advisors"]
    return {
        "team_id": team_id,
        "village_code": village_code,
        "name": latest["name"] if latest else None,
        "organisation": latest["organisation"] if latest else None,
        "leader_id": latest["leader_id"] if latest else None,
        "terms": [
            {"term_start": term.term_start.isoformat(), "last_day_served": term.last_day_served.isoformat()}
            for term in terms
        ],
        "policy": policy_json(year.policy),
        "month": {
            **_minutes(month.team),
            "month": year.month,
            "hours_basis": str(month.basis),
            "met": month.met,
            "status": str(month.status),
        },
        "members": [
            {
                "advisor_id": member,
                "name": names.get(member, (None, None))[0],
                "organisation": names.get(member, (None, None))[1],
                "member_now": member in answerable,
                **_minutes(found),
            }
            for member, found in month.members.items()
        ],
        "year_to_date": {
            "components": {str(name): round(value, 2) for name, value in year.year_components.items()},
            "score": year.year_score,
            "trailing_12_months_met": year.trailing_12_months_met,
            "provisional_grade": str(year.provisional_grade),
            "provisional_subsidy_yuan": str(year.provisional_subsidy_yuan),
        },
    }


@router.get(
    "/v1/regions/{region_code}/teams",
    tags=["compliance"],
    summary="The teams assigned in a region: each team's month, its members' and its year to date",
)
async def region_teams(
    region_code: RegionCodePath, caller: Caller, db: Db, clock: AppClock, as_of: QueryMoment | None = None
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's teams")
    require_region(caller, region_code)
    now = as_of or clock.now()
    start, end = month_bounds(local_day(now).year, local_day(now).month)
    async with db.acquire() as conn:
        last_day = (end - timedelta(days=1)).date()
        pairs = await queries.assigned_teams(conn, region_code, start.date(), last_day)
        teams = [await team_standing(conn, team_id, village_code, now) for team_id, village_code in pairs]
    return {"region_code": region_code, "as_of": now.isoformat(), "teams": teams}
