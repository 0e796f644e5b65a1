"""The dashboard's statistics: a region's figures for a period with one row per child region, the work
report in the seeds' wording, a year's months, and where each county's year-end approval stands."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.events import DEFAULT_ZONE
from plumbing.access import refuse_advisors
from plumbing.auth import require_region
from plumbing.http import ApiError, NationalRegionCodePath
from plumbing.postgres import Connection
from plumbing.routing import AppClock, Caller, Db
from plumbing.tables import TableFormat, table_response
from services.dashboard import queries
from services.dashboard.rules import ACTIVE_ADVISORS, begun_months, shown_figures, work_report

PERIOD = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$")
router = APIRouter()


def with_averages(figures: dict[str, float]) -> dict[str, int | float | str]:
    """Counts as people read them (`shown_figures`), plus the feedback average (评价均分) and the share of
    closed village-months that met their hours (达标率) where there are any."""
    shown = shown_figures(figures)
    if figures.get("feedback"):
        shown["feedback_average"] = round(figures["feedback_score_sum"] / figures["feedback"], 2)
    if figures.get("village_months_closed"):
        shown["compliance_share"] = round(
            figures.get("village_months_met", 0) / figures["village_months_closed"], 4
        )
    return shown


def unattributed(total: dict[str, float], parts: list[dict[str, float]]) -> dict[str, int | float | str]:
    """What the region counts that no registered child region does: records of villages not (yet)
    imported. Shown, so that a level always adds up."""
    rest = {
        metric: value - sum(part.get(metric, 0) for part in parts)
        for metric, value in total.items()
        if metric != ACTIVE_ADVISORS
    }
    return shown_figures({metric: value for metric, value in rest.items() if abs(value) > 1e-9})


async def region_and_children(
    conn: Connection, code: str, period: str
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The region, its child regions and the figures of all of them for the period (404 if unknown)."""
    if not PERIOD.match(period):
        raise ApiError(422, "validation_failed", "period is YYYY, YYYY-Qn or YYYY-MM, e.g. 2026-Q1")
    found = await queries.region(conn, code)
    if found is None:
        raise ApiError(404, "not_found", f"no region {code}; import the division codes first")
    below = await queries.children(conn, code)
    figures = await queries.figures(conn, [code, *[child["code"] for child in below]], period)
    return found, below, figures


def freshness(request: Request) -> dict[str, Any]:
    status = request.app.state.host.liveness()
    return {"newest_event_time": status.get("newest_event_time"), "lag": status.get("lag")}


@router.get(
    "/v1/regions/{code}/figures", tags=["statistics"], summary="A region's figures and its children's"
)
async def region_figures(
    code: NationalRegionCodePath,
    caller: Caller,
    db: Db,
    clock: AppClock,
    request: Request,
    period: Annotated[str, Query(description="YYYY, YYYY-Qn or YYYY-MM")],
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's figures")
    require_region(caller, code)
    async with db.acquire() as conn:
        found, below, figures = await region_and_children(conn, code, period)
        # 全覆盖率 from the steps the projection keeps (migration 016): a read of the region's own rows, so
        # not cached; a new term shows at once
        covered = await queries.coverage(conn, code, clock.now().astimezone(DEFAULT_ZONE).date())
    return {
        "region": found,
        "period": period,
        "figures": with_averages(figures[code]),
        "coverage": covered,
        "children": [{**child, "figures": with_averages(figures[child["code"]])} for child in below],
        "unattributed": unattributed(figures[code], [figures[child["code"]] for child in below]),
        "freshness": freshness(request),
    }


@router.get(
    "/v1/regions/{code}/work-report",
    tags=["statistics"],
    summary="The work report, in the seeds' wording",
)
async def region_work_report(
    code: NationalRegionCodePath,
    caller: Caller,
    db: Db,
    period: Annotated[str, Query(description="YYYY, YYYY-Qn or YYYY-MM")],
    format: TableFormat = TableFormat.json,
) -> Response:
    refuse_advisors(caller, "a region's work report")
    require_region(caller, code)
    async with db.acquire() as conn:
        found, below, figures = await region_and_children(conn, code, period)
    if format is TableFormat.json:
        return JSONResponse(
            {
                "region": found,
                "period": period,
                "lines": work_report(figures[code]),
                "children": [{**child, "lines": work_report(figures[child["code"]])} for child in below],
            }
        )
    header = ["地区", *[line["item"] for line in work_report({})]]
    table: list[list[Any]] = [header]
    for child in below:
        table.append([child["name"], *[line["count"] for line in work_report(figures[child["code"]])]])
    table.append([f"合计（{found['name']}）", *[line["count"] for line in work_report(figures[code])]])
    return table_response(table, f"work-report-{code}-{period}", format, f"{period}工作报告")


@router.get("/v1/regions/{code}/series", tags=["statistics"], summary="A region's months of a year")
async def region_series(
    code: NationalRegionCodePath,
    caller: Caller,
    db: Db,
    clock: AppClock,
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's monthly series")
    require_region(caller, code)
    months = begun_months(year, clock.now().astimezone(DEFAULT_ZONE).date())
    async with db.acquire() as conn:
        found = await queries.series(conn, code, months)
    return {
        "region_code": code,
        "year": year,
        "months": [{"period": m, "figures": with_averages(found[m])} for m in months],
    }


@router.get(
    "/v1/regions/{code}/approvals",
    tags=["statistics"],
    summary="Where each county's year-end approval stands (not started, submitted, returned, accepted)",
)
async def region_approvals(
    code: NationalRegionCodePath, caller: Caller, db: Db, year: Annotated[int, Query(ge=2000, le=2100)]
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's approvals")
    require_region(caller, code)
    async with db.acquire() as conn:
        found = await queries.approvals(conn, code, year)
    return {"region_code": code, "year": year, "counties": found}
