"""The year-end approval over HTTP: where each county's year stands, the county bureau's adjustments and
submission, the prefecture bureau's acceptance or return, and the payout sheet.

A step is checked against where the approval stands (409 naming the rule), published on the assessment
topic with an id derived from what it is (a retry is the same event), and the answer waits until the
assessment's own projection has applied it: 200 with the new state, 409 when another official's step got
there first, 202 when it is stored but not applied yet (the state follows within seconds).
"""

import asyncio
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field

from contracts.approval import ApprovalStatus, Step
from contracts.envelope import Event, to_kafka_record
from contracts.events import (
    AdvisorId,
    ApprovalEvent,
    ContractModel,
    Grade,
    GradeAdjusted,
    GradesAccepted,
    GradesReturned,
    GradesSubmitted,
    PolicyRules,
    Reason,
    VillageCode,
    Whole,
)
from plumbing.access import refuse_advisors
from plumbing.auth import Principal, Role, require_region
from plumbing.clock import Clock
from plumbing.http import ApiError, RegionCodePath
from plumbing.kafka import publish
from plumbing.postgres import Connection
from plumbing.routing import AppClock, Caller, Database, Db
from plumbing.tables import TableFormat, table_response
from services.assessment import queries
from services.assessment.rules import policy_in_force, term_share, year_subsidy
from services.assessment.rules.approval import (
    GRADE_NAMES,
    STATUS_NAMES,
    ApprovalState,
    PayoutFacts,
    PayoutLine,
    Refused,
    check,
    effective_grades,
    payout_lines,
    payout_table,
    proposed_revisions,
    total_yuan,
)

SOURCE = "/villagecounsel/assessment/approval"
Year = Annotated[int, Path(ge=2000, le=2100, description="the assessed year")]
QueryYear = Annotated[int, Query(ge=2000, le=2100, description="the assessed year")]
APPLIED_WAIT_SECONDS = 10.0
PAYERS = frozenset({Role.county_bureau, Role.prefecture_bureau, Role.province_department})


class AdjustmentRequest(ContractModel):
    model_config = ConfigDict(extra="forbid")

    advisor_id: AdvisorId
    village_code: VillageCode
    grade: Grade
    reason: Reason


class DecisionRequest(ContractModel):
    """The prefecture names the submission it reviewed, so it never decides on one it has not seen."""

    model_config = ConfigDict(extra="forbid")

    submission: Annotated[Whole, Field(ge=1, description="the submission's number")]


class ReturnRequest(DecisionRequest):
    reason: Reason


def require_acting(caller: Principal, county_code: str, role: Role, what: str) -> None:
    """403 unless the caller has the role and the county lies in its region; 422 unless it is a county."""
    if caller.role is not role:
        raise ApiError(
            403,
            "forbidden",
            f"{what} is done by the {role} (the county assesses and submits, the prefecture accepts or "
            f"returns); the caller is a {caller.role}",
        )
    require_region(caller, county_code)
    if len(county_code) != 6:
        raise ApiError(
            422, "validation_failed", f"region_code: approval is per county (6 digits), not {county_code}"
        )


def step_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "urn:villagecounsel:approval:" + ":".join(map(str, parts)))


def state_json(county_code: str, year: int, state: ApprovalState, current: list[Any]) -> dict[str, Any]:
    proposed = proposed_revisions(current, state.locked) if state.locked_submission else []
    return {
        "county_code": county_code,
        "year": year,
        "status": str(state.status),
        "status_name": STATUS_NAMES[state.status],
        "submission": state.submission,
        "locked_submission": state.locked_submission,
        "acted_by": state.acted_by,
        "acted_at": state.acted_at.isoformat() if state.acted_at else None,
        "reason": state.reason,
        "accepted_by": state.accepted_by,
        "accepted_at": state.accepted_at.isoformat() if state.accepted_at else None,
        "graded": len(current),
        "adjusted": sum(grade.adjustment_id is not None for grade in current),
        "proposed_revisions": len(proposed),
        "total_yuan": str(total_yuan(current)),
        "locked_total_yuan": str(total_yuan(state.locked)),
    }


def payout_line_json(line: PayoutLine) -> dict[str, Any]:
    return {
        "advisor_id": line.advisor_id,
        "advisor_name": line.advisor_name,
        "organisation": line.organisation,
        "village_code": line.village_code,
        "village_name": line.village_name,
        "months_in_term": line.months_in_term,
        "annual_yuan": str(line.annual_yuan),
        "grade": str(line.grade),
        "subsidy_ratio": line.subsidy_ratio,
        "payable_yuan": None if line.payable_yuan is None else str(line.payable_yuan),
        "status": str(line.status),
        "approved_by": line.approved_by,
        "approved_at": line.approved_at.isoformat() if line.approved_at else None,
        "note": line.note,
    }


router = APIRouter()


async def current_of(conn: Connection, county_code: str, year: int) -> tuple[ApprovalState, list[Any]]:
    state = await queries.approval_state(conn, county_code, year)
    current = effective_grades(
        await queries.computed_grades(conn, county_code, year),
        await queries.adjustments(conn, county_code, year),
    )
    return state, current


async def publish_and_wait(
    request: Request, db: Database, clock: Clock, event_id: uuid.UUID, data: ApprovalEvent, table: str
) -> JSONResponse:
    now = clock.now()
    producer: AIOKafkaProducer = request.app.state.outputs
    timeout: float = request.app.state.settings.kafka_timeout_seconds
    await publish(
        producer,
        to_kafka_record(Event(id=event_id, source=SOURCE, time=data.acted_at, data=data, recorded_at=now)),
        timeout,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + APPLIED_WAIT_SECONDS
    applied = None
    while loop.time() < deadline:
        async with db.acquire() as conn:
            applied = await conn.fetchval(f"SELECT applied FROM {table} WHERE event_id = $1", event_id)  # noqa: S608 - a table name of ours
        if applied is not None:
            break
        await asyncio.sleep(0.1)
    async with db.acquire() as conn:
        state, current = await current_of(conn, data.county_code, data.year)
    body = {
        "event_id": str(event_id),
        "approval": state_json(data.county_code, data.year, state, current),
    }
    if applied is None:
        return JSONResponse({**body, "applied": False, "message": "stored; not applied yet"}, status_code=202)
    if not applied:
        raise ApiError(
            409,
            "conflict",
            "another official's step was applied first; this one changed nothing (reload and decide again)",
        )
    return JSONResponse({**body, "applied": True})


@router.get(
    "/v1/regions/{region_code}/approvals",
    tags=["approval"],
    summary="Where each county's year-end approval stands",
)
async def approvals(
    region_code: RegionCodePath, caller: Caller, db: Db, request: Request, year: QueryYear
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's approvals")
    require_region(caller, region_code)
    found = []
    async with db.acquire() as conn:
        for county in await queries.counties_with_grades(conn, region_code, year):
            if not (county.startswith(region_code) or region_code.startswith(county)):
                continue
            state, current = await current_of(conn, county, year)
            item = state_json(county, year, state, current)
            if len(region_code) >= 6:
                item["steps"] = await queries.approval_steps(conn, county, year)
                item["adjustments"] = await queries.adjustment_history(conn, county, year)
            found.append(item)
    return {"region_code": region_code, "year": year, "counties": found}


@router.post(
    "/v1/regions/{region_code}/approvals/{year}/adjustments",
    tags=["approval"],
    summary="The county adjusts one grade",
)
async def adjust(
    region_code: RegionCodePath,
    year: Year,
    body: AdjustmentRequest,
    caller: Caller,
    db: Db,
    clock: AppClock,
    request: Request,
    dry_run: bool = False,
) -> JSONResponse:
    require_acting(caller, region_code, Role.county_bureau, "adjusting a grade")
    if not body.village_code.startswith(region_code):
        raise ApiError(
            422, "validation_failed", f"village_code: {body.village_code} is not in county {region_code}"
        )
    async with db.acquire() as conn:
        state = await queries.approval_state(conn, region_code, year)
        computed = {
            (grade.advisor_id, grade.village_code): grade
            for grade in await queries.computed_grades(conn, region_code, year)
        }
        base = computed.get((body.advisor_id, body.village_code))
        if base is None:
            raise ApiError(
                404,
                "not_found",
                f"no computed {year} grade of {body.advisor_id} in {body.village_code} "
                "(grades are computed after the year ends)",
            )
        policies = await queries.policies(conn)
        terms = await queries.terms(conn, body.advisor_id, body.village_code)
    try:
        check(state, Step.adjust)
    except Refused as refused:
        raise ApiError(409, "conflict", str(refused)) from None
    in_force = policy_in_force(policies, body.village_code, date(year, 12, 31))
    ratio = (in_force.rules if in_force else PolicyRules()).subsidy_ratios[body.grade]
    year_terms = [term for term in terms if term_share(year, term.term_start, term.last_day_served)]
    data = GradeAdjusted(
        county_code=region_code,
        year=year,
        acted_by=caller.subject,
        acted_at=clock.now(),
        advisor_id=body.advisor_id,
        village_code=body.village_code,
        based_on_revision=base.revision,
        grade=body.grade,
        subsidy_ratio=ratio,
        subsidy_yuan=year_subsidy(year, year_terms, ratio),
        reason=body.reason,
    )
    if dry_run:
        return JSONResponse({"dry_run": True, "adjustment": data.model_dump(mode="json")})
    event_id = step_id(
        "adjusted",
        region_code,
        year,
        body.advisor_id,
        body.village_code,
        base.revision,
        body.grade,
        body.reason,
    )
    return await publish_and_wait(request, db, clock, event_id, data, "grade_adjustments")


@router.post(
    "/v1/regions/{region_code}/approvals/{year}/submission",
    tags=["approval"],
    summary="The county submits its grades",
)
async def submit(
    region_code: RegionCodePath,
    year: Year,
    caller: Caller,
    db: Db,
    clock: AppClock,
    request: Request,
    dry_run: bool = False,
) -> JSONResponse:
    require_acting(caller, region_code, Role.county_bureau, "submitting the year's grades")
    async with db.acquire() as conn:
        state, current = await current_of(conn, region_code, year)
    try:
        check(state, Step.submit)
    except Refused as refused:
        raise ApiError(409, "conflict", str(refused)) from None
    if not current:
        raise ApiError(
            409, "conflict", f"nothing to submit: no {year} grade has been computed in {region_code} yet"
        )
    if state.status is ApprovalStatus.accepted and not proposed_revisions(current, state.locked):
        raise ApiError(
            409,
            "conflict",
            f"submission {state.locked_submission} was accepted and no grade has changed since",
        )
    data = GradesSubmitted(
        county_code=region_code,
        year=year,
        acted_by=caller.subject,
        acted_at=clock.now(),
        submission=state.submission + 1,
        grades=current,
        total_yuan=total_yuan(current),
    )
    if dry_run:
        return JSONResponse(
            {"dry_run": True, "submission": data.submission, "total_yuan": str(data.total_yuan)}
        )
    event_id = step_id("submitted", region_code, year, data.submission)
    return await publish_and_wait(request, db, clock, event_id, data, "approval_steps")


async def decide(
    region_code: str,
    year: int,
    caller: Principal,
    db: Database,
    clock: Clock,
    request: Request,
    body: DecisionRequest,
    dry_run: bool,
) -> JSONResponse:
    accepting = not isinstance(body, ReturnRequest)
    what = "accepting a county's grades" if accepting else "returning a county's grades"
    require_acting(caller, region_code, Role.prefecture_bureau, what)
    async with db.acquire() as conn:
        state = await queries.approval_state(conn, region_code, year)
    try:
        check(state, Step.accept if accepting else Step.return_, body.submission)
    except Refused as refused:
        raise ApiError(409, "conflict", str(refused)) from None
    common = {
        "county_code": region_code,
        "year": year,
        "acted_by": caller.subject,
        "acted_at": clock.now(),
        "submission": body.submission,
    }
    data: ApprovalEvent = (
        GradesReturned(**common, reason=body.reason)
        if isinstance(body, ReturnRequest)
        else GradesAccepted(**common)
    )
    if dry_run:
        return JSONResponse({"dry_run": True, "submission": body.submission})
    event_id = step_id("accepted" if accepting else "returned", region_code, year, body.submission)
    return await publish_and_wait(request, db, clock, event_id, data, "approval_steps")


@router.post(
    "/v1/regions/{region_code}/approvals/{year}/acceptance",
    tags=["approval"],
    summary="The prefecture accepts",
)
async def accept(
    region_code: RegionCodePath,
    year: Year,
    body: DecisionRequest,
    caller: Caller,
    db: Db,
    clock: AppClock,
    request: Request,
    dry_run: bool = False,
) -> JSONResponse:
    return await decide(region_code, year, caller, db, clock, request, body, dry_run)


@router.post(
    "/v1/regions/{region_code}/approvals/{year}/return", tags=["approval"], summary="The prefecture returns"
)
async def send_back(
    region_code: RegionCodePath,
    year: Year,
    body: ReturnRequest,
    caller: Caller,
    db: Db,
    clock: AppClock,
    request: Request,
    dry_run: bool = False,
) -> JSONResponse:
    return await decide(region_code, year, caller, db, clock, request, body, dry_run)


@router.get(
    "/v1/regions/{region_code}/payouts", tags=["approval"], summary="The subsidy payout sheet of a year"
)
async def payouts(
    region_code: RegionCodePath,
    caller: Caller,
    db: Db,
    request: Request,
    year: QueryYear,
    format: TableFormat = TableFormat.json,
) -> Response:
    if caller.role not in PAYERS:
        raise ApiError(
            403,
            "forbidden",
            "the payout sheet is for the county bureau and above (they pay the subsidies)",
        )
    require_region(caller, region_code)
    lines: list[PayoutLine] = []
    counties = []
    async with db.acquire() as conn:
        for county in await queries.counties_with_grades(conn, region_code, year):
            if not (county.startswith(region_code) or region_code.startswith(county)):
                continue
            state, current = await current_of(conn, county, year)
            pairs = sorted({(grade.advisor_id, grade.village_code) for grade in (*current, *state.locked)})
            named = await queries.names(
                conn, [advisor for advisor, _ in pairs], [village for _, village in pairs]
            )
            facts = PayoutFacts(
                terms=await queries.terms_of_pairs(conn, pairs),
                advisors=named["advisors"],
                places=named["places"],
            )
            lines.extend(payout_lines(year, state, current, facts))
            counties.append({"county_code": county, "status": str(state.status)})
    if format is not TableFormat.json:
        return table_response(
            payout_table(lines), f"payout-{region_code}-{year}", format, f"{year}年度补贴发放表"
        )
    payable = [line.payable_yuan for line in lines if line.payable_yuan is not None]
    return JSONResponse(
        {
            "region_code": region_code,
            "year": year,
            "counties": counties,
            "lines": [payout_line_json(line) for line in lines],
            "total_payable_yuan": str(sum(payable, start=total_yuan(()))),
            "not_payable": len(lines) - len(payable),
        }
    )


GRADES_HEADER = [
    "村(社区)代码",
    "法律顾问",
    "年度",
    "得分",
    "等级",
    "补贴比例",
    "补贴金额(元)",
    "修订",
    "适用政策",
]


def grades_table(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The table a county bureau pays from, with a total at the bottom."""
    table: list[list[Any]] = [GRADES_HEADER]
    total = Decimal("0.00")
    for row in rows:
        table.append(
            [
                row["village_code"],
                row["advisor_id"],
                row["year"],
                row["score"],
                GRADE_NAMES[row["grade"]],
                row["subsidy_ratio"],
                row["subsidy_yuan"],
                row["revision"],
                row["policy_region_code"],
            ]
        )
        total += Decimal(row["subsidy_yuan"])
    table.append(["合计", f"{len(rows)} 个村(社区)", "", "", "", "", str(total), "", ""])
    return table


@router.get("/v1/regions/{region_code}/grades", tags=["grades"], summary="The year's grades and subsidies")
async def region_grades(
    region_code: RegionCodePath,
    caller: Caller,
    db: Db,
    year: Annotated[int, Query(ge=2000, le=2100)],
    format: TableFormat = TableFormat.json,
) -> Response:
    refuse_advisors(caller, "a region's grades")
    require_region(caller, region_code)
    async with db.acquire() as conn:
        rows = await queries.grades_under(conn, region_code, year)
    if format is TableFormat.json:
        return JSONResponse({"region_code": region_code, "year": year, "grades": rows})
    return table_response(grades_table(rows), f"grades-{region_code}-{year}", format, f"{year}年度考核")
