"""The assessment's HTTP API: where an advisor stands in a village, a region's month, the policy in force,
alerts, grades and the year-end approval (`approval_routes`); and the periodic closing of months, raising of
alerts and grading of years.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response

from contracts.events import DEFAULT_ZONE
from plumbing.access import refuse_advisors, require_own_work, require_policy_region
from plumbing.auth import Principal, bearer_principal, require_region
from plumbing.clock import Clock, SystemClock
from plumbing.http import (
    MONTH,
    AdvisorIdPath,
    ApiError,
    QueryDay,
    QueryMoment,
    QueryMonth,
    RegionCodePath,
    VillageCodePath,
    install_common,
)
from plumbing.kafka import PublishFailed, create_producer
from plumbing.logs import configure_logging, get_logger
from plumbing.service import ProjectionHost
from plumbing.tables import TableFormat, table_response
from services.assessment import queries
from services.assessment.approval import GRADE_NAMES
from services.assessment.approval_routes import approval_router
from services.assessment.closing import Closer
from services.assessment.projection import assessment_projection
from services.assessment.rules import (
    MonthStatus,
    PublishedPolicy,
    Snapshot,
    local_day,
    month_bounds,
    month_compliance,
    policy_in_force,
    snapshot,
)
from services.assessment.settings import AssessmentSettings

log = get_logger(__name__)


def policy_json(policy: PublishedPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "event_id": str(policy.event_id),
        "region_code": policy.region_code,
        "effective_from": policy.effective_from.isoformat(),
        "rules": policy.rules.model_dump(mode="json"),
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


def parse_month(text: str) -> tuple[int, int]:
    try:
        moment = datetime.strptime(text, "%Y-%m")  # noqa: DTZ007 - a calendar month, not an instant
    except ValueError:
        raise ApiError(422, "validation_failed", "month is YYYY-MM, e.g. 2026-03") from None
    return moment.year, moment.month


def create_app(settings: AssessmentSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or AssessmentSettings()
    clock = clock or SystemClock()
    host = ProjectionHost(assessment_projection(), settings, clock)

    async def close_periodically() -> None:
        closer: Closer = app.state.closer
        while True:
            await asyncio.sleep(settings.close_interval_seconds)
            try:
                published = await closer.run()
            except (PublishFailed, OSError, asyncpg.PostgresError) as error:
                log.warning("closing_failed", error=type(error).__name__)
            else:
                if published:
                    log.info("closing_published", events=published)

    tasks: dict[str, asyncio.Task[None]] = {}

    def report_closing_crash(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("closing_crashed", error=type(task.exception()).__name__)

    def liveness() -> dict[str, Any]:
        """The projection's health, and a crashed closing loop fails /healthz so the process is restarted."""
        status = host.liveness()
        closing = tasks.get("closing")
        if closing is not None and closing.done() and not closing.cancelled():
            status["crashed"] = True
            status["closing"] = "crashed"
        return status

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        configure_logging("assessment", settings.log_level)
        await host.start()
        # aiokafka clients belong to the running loop: created here, never at import or app construction.
        outputs = create_producer(host.kafka, "assessment-outputs")
        await outputs.start()
        app.state.outputs = outputs
        app.state.closer = Closer(
            host.pool, outputs, clock, settings.kafka_timeout_seconds, settings.close_chunk_pairs
        )
        closing = asyncio.create_task(close_periodically(), name="assessment-closing")
        closing.add_done_callback(report_closing_crash)
        tasks["closing"] = closing
        try:
            yield
        finally:
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            await outputs.stop()
            await host.stop()

    app = FastAPI(
        title="villagecounsel assessment",
        version="1.0.0",
        summary="Rolling compliance against each region's rules: hours, lectures, a provisional grade.",
        lifespan=lifespan,
    )
    install_common(app, "assessment", host.readiness, liveness)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Access-Purpose"],
        )
    app.state.host = host
    app.state.kafka_timeout_seconds = settings.kafka_timeout_seconds
    authenticated = bearer_principal(settings, settings.open_region)
    Caller = Annotated[Principal, Depends(authenticated)]
    app.include_router(approval_router(authenticated, clock))

    async def snapshot_of(advisor_id: str, village_code: str, now: datetime) -> dict[str, Any]:
        since = datetime(local_day(now).year - 1, 1, 1, tzinfo=DEFAULT_ZONE)
        async with host.pool.acquire() as conn:
            found = snapshot(
                now,
                village_code,
                await queries.tags(conn, village_code, local_day(now)),
                await queries.policies(conn),
                await queries.terms(conn, advisor_id, village_code),
                await queries.activities(conn, advisor_id, village_code, since),
                await queries.violation_in_year(conn, advisor_id, local_day(now).year),
            )
        return {"advisor_id": advisor_id, "village_code": village_code, **snapshot_json(found)}

    @app.get(
        "/v1/compliance/{advisor_id}/{village_code}",
        tags=["compliance"],
        summary="One advisor in one village",
    )
    async def compliance(
        advisor_id: AdvisorIdPath,
        village_code: VillageCodePath,
        caller: Caller,
        as_of: QueryMoment | None = None,
    ) -> dict[str, Any]:
        require_region(caller, village_code)
        require_own_work(caller, advisor_id)
        return await snapshot_of(advisor_id, village_code, as_of or clock.now())

    @app.get(
        "/v1/advisors/{advisor_id}/compliance", tags=["compliance"], summary="An advisor in each village"
    )
    async def advisor_compliance(
        advisor_id: AdvisorIdPath, caller: Caller, as_of: QueryMoment | None = None
    ) -> dict[str, Any]:
        require_own_work(caller, advisor_id)
        async with host.pool.acquire() as conn:
            villages = await queries.advisor_villages(conn, advisor_id, caller.region_code)
        now = as_of or clock.now()
        return {
            "advisor_id": advisor_id,
            "villages": [await snapshot_of(advisor_id, code, now) for code in villages],
        }

    @app.get(
        "/v1/regions/{region_code}/compliance", tags=["compliance"], summary="A region's villages for a month"
    )
    async def region_month(
        region_code: RegionCodePath,
        caller: Caller,
        month: Annotated[QueryMonth, Query(pattern=MONTH, description="YYYY-MM")],
    ) -> dict[str, Any]:
        refuse_advisors(caller, "a region's compliance")
        require_region(caller, region_code)
        year, month_number = parse_month(month)
        start, end = month_bounds(year, month_number)
        now = clock.now()
        rows = []
        async with host.pool.acquire() as conn:
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

    @app.get("/v1/regions/{region_code}/alerts", tags=["compliance"], summary="Alerts raised in a region")
    async def region_alerts(
        region_code: RegionCodePath,
        caller: Caller,
        since: QueryDay | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        refuse_advisors(caller, "a region's alerts")
        require_region(caller, region_code)
        first_day = since or local_day(clock.now()) - timedelta(days=90)
        async with host.pool.acquire() as conn:
            found = await queries.alerts_under(conn, region_code, first_day, limit)
        return {"region_code": region_code, "since": first_day.isoformat(), "alerts": found}

    @app.get("/v1/regions/{region_code}/grades", tags=["grades"], summary="The year's grades and subsidies")
    async def region_grades(
        region_code: RegionCodePath,
        caller: Caller,
        year: Annotated[int, Query(ge=2000, le=2100)],
        format: TableFormat = TableFormat.json,
    ) -> Response:
        refuse_advisors(caller, "a region's grades")
        require_region(caller, region_code)
        async with host.pool.acquire() as conn:
            rows = await queries.grades_under(conn, region_code, year)
        if format is TableFormat.json:
            return JSONResponse({"region_code": region_code, "year": year, "grades": rows})
        return table_response(grades_table(rows), f"grades-{region_code}-{year}", format, f"{year}年度考核")

    @app.get(
        "/v1/regions/{region_code}/policy", tags=["policy"], summary="The policy in force and its history"
    )
    async def policy(
        region_code: RegionCodePath, caller: Caller, on: QueryDay | None = None
    ) -> dict[str, Any]:
        require_policy_region(caller, region_code)
        day = on or local_day(clock.now())
        async with host.pool.acquire() as conn:
            in_force = policy_in_force(await queries.policies(conn), region_code, day)
            history = await queries.policy_history(conn, region_code)
        return {
            "region_code": region_code,
            "on": day.isoformat(),
            "in_force": policy_json(in_force),
            "history": history,
        }

    return app
