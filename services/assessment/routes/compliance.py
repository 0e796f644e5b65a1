"""The assessment's compliance routes: where an advisor stands in a village and in each of their villages,
a region's month, its alerts, and the policy in force there."""

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from contracts.events import DEFAULT_ZONE
from plumbing.access import refuse_advisors, require_own_work, require_policy_region
from plumbing.auth import require_region
from plumbing.http import (
    MONTH,
    AdvisorIdPath,
    ApiError,
    QueryDay,
    QueryMoment,
    QueryMonth,
    RegionCodePath,
    VillageCodePath,
)
from plumbing.routing import AppClock, Caller, Database, Db
from services.assessment import queries
from services.assessment.rules import (
    MonthStatus,
    PublishedPolicy,
    Snapshot,
    Term,
    local_day,
    month_bounds,
    month_compliance,
    policy_in_force,
    snapshot,
)

router = APIRouter()
ALERT_DAYS = 90  # how far back the alerts go when no `since` is given


def policy_json(policy: PublishedPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "event_id": str(policy.event_id),
        "region_code": policy.region_code,
        "effective_from": policy.effective_from.isoformat(),
        "rules": policy.rules.model_dump(mode="json"),
    }


def term_json(term: Term) -> dict[str, Any]:
    return {
        "term_start": term.term_start.isoformat(),
        "term_end": term.term_end.isoformat(),
        "released_on": term.released_on.isoformat() if term.released_on else None,
        "annual_subsidy_yuan": str(term.annual_subsidy_yuan),
    }


def snapshot_json(found: Snapshot) -> dict[str, Any]:
    minutes = found.month_minutes
    return {
        "as_of": found.as_of.isoformat(),
        "policy": policy_json(found.policy),
        "month": {
            "month": found.month,
            "on_site_minutes": minutes.on_site,
            "offsite_minutes": minutes.offsite,
            "credited_offsite_minutes": minutes.credited_offsite,
            "required_minutes": minutes.required,
            "status": str(found.month_status),
        },
        "lectures": {
            "period": {
                "start": found.lecture_period.start.isoformat(),
                "end": found.lecture_period.end.isoformat(),
            },
            "held_in_period": found.lectures_in_period,
            "required_in_period": found.lectures_required,
            "alert": str(found.lecture_alert) if found.lecture_alert else None,
            "held_this_year": found.lectures_this_year,
            "evening_or_holiday_this_year": found.evening_or_holiday_lectures_this_year,
            "large_events_this_year": found.large_events_this_year,
        },
        "feedback": {
            "count_this_year": found.feedback_this_year,
            "average_this_year": found.feedback_average_this_year,
        },
        "year_to_date": {
            "components": {str(name): round(value, 2) for name, value in found.year_components.items()},
            "score": found.year_score,
            "provisional_grade": str(found.provisional_grade),
            "provisional_subsidy_yuan": str(found.provisional_subsidy_yuan),
        },
        "trailing_12_months": {
            "months_met": found.trailing_12_months_met,
            "months_assessed": found.trailing_12_months_assessed,
            "score": found.trailing_12_month_score,
        },
    }


def parse_month(text: str) -> tuple[int, int]:
    try:
        moment = datetime.strptime(text, "%Y-%m")  # noqa: DTZ007 - a calendar month, not an instant
    except ValueError:
        raise ApiError(422, "validation_failed", "month is YYYY-MM, e.g. 2026-03") from None
    return moment.year, moment.month


async def snapshot_of(db: Database, advisor_id: str, village_code: str, now: datetime) -> dict[str, Any]:
    since = datetime(local_day(now).year - 1, 1, 1, tzinfo=DEFAULT_ZONE)
    async with db.acquire() as conn:
        found = snapshot(
            now,
            village_code,
            await queries.tags(conn, village_code, local_day(now)),
            await queries.policies(conn),
            found_terms := await queries.terms(conn, advisor_id, village_code),
            await queries.activities(conn, advisor_id, village_code, since),
            await queries.violation_in_year(conn, advisor_id, local_day(now).year),
        )
    return {
        "advisor_id": advisor_id,
        "village_code": village_code,
        **snapshot_json(found),
        "terms": [term_json(term) for term in found_terms],
    }


@router.get(
    "/v1/compliance/{advisor_id}/{village_code}",
    tags=["compliance"],
    summary="One advisor in one village",
)
async def compliance(
    advisor_id: AdvisorIdPath,
    village_code: VillageCodePath,
    caller: Caller,
    clock: AppClock,
    db: Db,
    as_of: QueryMoment | None = None,
) -> dict[str, Any]:
    require_region(caller, village_code)
    require_own_work(caller, advisor_id)
    return await snapshot_of(db, advisor_id, village_code, as_of or clock.now())


@router.get("/v1/advisors/{advisor_id}/compliance", tags=["compliance"], summary="An advisor in each village")
async def advisor_compliance(
    advisor_id: AdvisorIdPath, caller: Caller, db: Db, clock: AppClock, as_of: QueryMoment | None = None
) -> dict[str, Any]:
    require_own_work(caller, advisor_id)
    async with db.acquire() as conn:
        villages = await queries.advisor_villages(conn, advisor_id, caller.prefix)
    now = as_of or clock.now()
    first_day = local_day(now) - timedelta(days=ALERT_DAYS)
    async with db.acquire() as conn:
        alerts = await queries.advisor_alerts(conn, advisor_id, first_day, 200)
    return {
        "advisor_id": advisor_id,
        "villages": [await snapshot_of(db, advisor_id, code, now) for code in villages],
        "alerts_since": first_day.isoformat(),
        "alerts": [alert for alert in alerts if alert["village_code"] in villages],
    }


@router.get(
    "/v1/regions/{region_code}/compliance", tags=["compliance"], summary="A region's villages for a month"
)
async def region_month(
    region_code: RegionCodePath,
    caller: Caller,
    db: Db,
    clock: AppClock,
    month: Annotated[QueryMonth, Query(pattern=MONTH, description="YYYY-MM")],
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's compliance")
    require_region(caller, region_code)
    year, month_number = parse_month(month)
    start, end = month_bounds(year, month_number)
    now = clock.now()
    rows = []
    async with db.acquire() as conn:
        pairs = await queries.assigned_pairs(
            conn, region_code, start.date(), (end - timedelta(days=1)).date()
        )
        policies = await queries.policies(conn)
        for advisor_id, village_code in pairs:
            found = month_compliance(
                now,
                year,
                month_number,
                village_code,
                await queries.tags(conn, village_code, start.date()),
                policies,
                await queries.terms(conn, advisor_id, village_code),
                await queries.activities(conn, advisor_id, village_code, start),
            )
            rows.append(
                {
                    "advisor_id": advisor_id,
                    "village_code": village_code,
                    **asdict(found.minutes),
                    "status": str(found.status),
                }
            )
    counts = {str(status): sum(row["status"] == status for row in rows) for status in MonthStatus}
    return {"region_code": region_code, "month": month, "counts": counts, "villages": rows}


@router.get("/v1/regions/{region_code}/alerts", tags=["compliance"], summary="Alerts raised in a region")
async def region_alerts(
    region_code: RegionCodePath,
    caller: Caller,
    db: Db,
    clock: AppClock,
    since: QueryDay | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's alerts")
    require_region(caller, region_code)
    first_day = since or local_day(clock.now()) - timedelta(days=ALERT_DAYS)
    async with db.acquire() as conn:
        found = await queries.alerts_under(conn, region_code, first_day, limit)
    return {"region_code": region_code, "since": first_day.isoformat(), "alerts": found}


@router.get(
    "/v1/regions/{region_code}/policy", tags=["policy"], summary="The policy in force and its history"
)
async def policy(
    region_code: RegionCodePath, caller: Caller, db: Db, clock: AppClock, on: QueryDay | None = None
) -> dict[str, Any]:
    require_policy_region(caller, region_code)
    day = on or local_day(clock.now())
    async with db.acquire() as conn:
        in_force = policy_in_force(await queries.policies(conn), region_code, day)
        history = await queries.policy_history(conn, region_code)
    return {
        "region_code": region_code,
        "on": day.isoformat(),
        "in_force": policy_json(in_force),
        "history": history,
    }
