"""The dashboard's HTTP API: a region's figures for a period with one row per child region, a time series,
the path up to the province, search by name, coverage and freshness; the web page at `/` and the villages'
public notice pages (公示) at `/public/villages/{code}`."""

import re
import time
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from contracts.events import DEFAULT_ZONE, SERVICE_RECORD_NAMES
from plumbing.access import refuse_advisors, require_village_reader
from plumbing.auth import Principal, Role, bearer_principal, require_region
from plumbing.clock import Clock, SystemClock
from plumbing.http import ApiError, RegionCodePath, VillageCodePath, install_common
from plumbing.postgres import Connection
from plumbing.service import ProjectionHost, host_lifespan
from plumbing.tables import TableFormat, table_response
from services.dashboard import queries
from services.dashboard.projection import dashboard_projection
from services.dashboard.public import notice, notice_html
from services.dashboard.rollup import begun_months, shown_figures, work_report
from services.dashboard.settings import WEB, DashboardSettings

PERIOD = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$")


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
        if metric != queries.ACTIVE_ADVISORS
    }
    return shown_figures({metric: value for metric, value in rest.items() if abs(value) > 1e-9})


def origins(*urls: str | None) -> tuple[str, ...]:
    """The origins the page talks to: the identity provider's (its token endpoint) and the assessment
    API's (the year-end approval buttons)."""
    found = []
    for url in urls:
        if url:
            parts = urlsplit(url)
            found.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(found))


def create_app(settings: DashboardSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or DashboardSettings()
    clock = clock or SystemClock()
    host = ProjectionHost(dashboard_projection(), settings, clock)

    app = FastAPI(
        title="villagecounsel dashboard",
        version="1.0.0",
        summary="Five-level statistics: province → prefecture → county → township → village.",
        lifespan=host_lifespan(host, "dashboard"),
    )
    install_common(
        app,
        "dashboard",
        host.readiness,
        host.liveness,
        connect_sources=origins(settings.oidc_issuer, settings.assessment_public_url),
    )
    app.state.host = host
    Caller = Annotated[Principal, Depends(bearer_principal(settings, settings.open_region))]

    covered_cache: dict[tuple[str, date], tuple[float, dict[str, int]]] = {}

    async def coverage(conn: Connection, code: str) -> dict[str, int]:
        """全覆盖率 counts every village of the region, so it is kept for `coverage_cache_seconds`: it
        changes only when an advisor is assigned or released."""
        today = clock.now().astimezone(DEFAULT_ZONE).date()
        held = covered_cache.get((code, today))
        if held is not None and held[0] > time.monotonic():
            return held[1]
        found = await queries.coverage(conn, code, today)
        if len(covered_cache) > 10_000:
            covered_cache.clear()
        covered_cache[(code, today)] = (time.monotonic() + settings.coverage_cache_seconds, found)
        return found

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

    def freshness() -> dict[str, Any]:
        status = host.liveness()
        return {"newest_event_time": status.get("newest_event_time"), "lag": status.get("lag")}

    @app.get(
        "/v1/regions/{code}/figures", tags=["statistics"], summary="A region's figures and its children's"
    )
    async def region_figures(
        code: RegionCodePath,
        caller: Caller,
        period: Annotated[str, Query(description="YYYY, YYYY-Qn or YYYY-MM")],
    ) -> dict[str, Any]:
        refuse_advisors(caller, "a region's figures")
        require_region(caller, code)
        async with host.pool.acquire() as conn:
            found, below, figures = await region_and_children(conn, code, period)
            covered = await coverage(conn, code)
        return {
            "region": found,
            "period": period,
            "figures": with_averages(figures[code]),
            "coverage": covered,
            "children": [{**child, "figures": with_averages(figures[child["code"]])} for child in below],
            "unattributed": unattributed(figures[code], [figures[child["code"]] for child in below]),
            "freshness": freshness(),
        }

    @app.get(
        "/v1/regions/{code}/work-report",
        tags=["statistics"],
        summary="The work report, in the seeds' wording",
    )
    async def region_work_report(
        code: RegionCodePath,
        caller: Caller,
        period: Annotated[str, Query(description="YYYY, YYYY-Qn or YYYY-MM")],
        format: TableFormat = TableFormat.json,
    ) -> Response:
        refuse_advisors(caller, "a region's work report")
        require_region(caller, code)
        async with host.pool.acquire() as conn:
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

    @app.get("/v1/regions/{code}/series", tags=["statistics"], summary="A region's months of a year")
    async def region_series(
        code: RegionCodePath, caller: Caller, year: Annotated[int, Query(ge=2000, le=2100)]
    ) -> dict[str, Any]:
        refuse_advisors(caller, "a region's monthly series")
        require_region(caller, code)
        months = begun_months(year, clock.now().astimezone(DEFAULT_ZONE).date())
        async with host.pool.acquire() as conn:
            found = await queries.series(conn, code, months)
        return {
            "region_code": code,
            "year": year,
            "months": [{"period": m, "figures": with_averages(found[m])} for m in months],
        }

    @app.get(
        "/v1/regions/{code}/approvals",
        tags=["statistics"],
        summary="Where each county's year-end approval stands (not started, submitted, returned, accepted)",
    )
    async def region_approvals(
        code: RegionCodePath, caller: Caller, year: Annotated[int, Query(ge=2000, le=2100)]
    ) -> dict[str, Any]:
        refuse_advisors(caller, "a region's approvals")
        require_region(caller, code)
        async with host.pool.acquire() as conn:
            found = await queries.approvals(conn, code, year)
        return {"region_code": code, "year": year, "counties": found}

    @app.get("/v1/regions/{code}/path", tags=["regions"], summary="The region and the regions above it")
    async def region_path(code: RegionCodePath, caller: Caller) -> dict[str, Any]:
        require_region(caller, code)
        async with host.pool.acquire() as conn:
            return {"path": await queries.path(conn, code)}

    @app.get(
        "/v1/regions", tags=["regions"], summary="Search regions by Chinese name, within the caller's region"
    )
    async def search(
        caller: Caller,
        name: Annotated[str, Query(min_length=1, max_length=50)],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        async with host.pool.acquire() as conn:
            return {"regions": await queries.search(conn, name, caller.region_code, limit)}

    @app.get("/v1/me", tags=["regions"], summary="Who the caller is and which region they read")
    async def me(caller: Caller) -> dict[str, Any]:
        async with host.pool.acquire() as conn:
            found = await queries.region(conn, caller.region_code)
        return {
            "subject": caller.subject,
            "role": str(caller.role),
            "region_code": caller.region_code,
            "region_name": found["name"] if found else caller.region_code,
            "local_mode": caller.subject == "local-mode",
        }

    @app.get(
        "/v1/villages/{code}/ledger-summary",
        tags=["regions"],
        summary="The ledger's summary of a village (asked of the ledger service with the caller's token)",
    )
    async def ledger_summary(code: VillageCodePath, caller: Caller, request: Request) -> dict[str, Any]:
        # The code is 12 ASCII digits (checked above), so it cannot change the ledger URL (no ?, #, /).
        require_region(caller, code)
        if caller.role is Role.advisor:
            today = clock.now().astimezone(DEFAULT_ZONE).date()
            async with host.pool.acquire() as conn:
                serving = await queries.village_advisors(conn, code, today)
            require_village_reader(caller, code, {advisor["advisor_id"] for advisor in serving})
        headers = {}
        if "authorization" in request.headers:
            headers["Authorization"] = request.headers["authorization"]
        try:
            async with httpx.AsyncClient(base_url=settings.ledger_url, timeout=5.0) as ledger:
                file = await ledger.get(f"/v1/villages/{code}", headers=headers)
                recent = await ledger.get(
                    f"/v1/villages/{code}/ledger",
                    params={"order": "newest_first", "limit": 10},
                    headers=headers,
                )
        except httpx.HTTPError as error:
            raise ApiError(
                502, "ledger_unavailable", f"the ledger service did not answer ({type(error).__name__})"
            ) from None
        for answer in (file, recent):
            if answer.status_code != 200:
                raise ApiError(
                    502 if answer.status_code >= 500 else answer.status_code,
                    "ledger_refused",
                    f"the ledger service answered {answer.status_code}",
                )
        found, entries = file.json(), recent.json()["entries"]
        return {
            "village_code": code,
            "name": found["name"],
            "entries": found["entries"],
            "advisors": [
                {
                    key: advisor[key]
                    for key in ("advisor_id", "name", "organisation", "term_start", "term_end")
                }
                for advisor in found["advisors"]
            ],
            # Kind, time, advisor and whether voided: no resident's field and no free text.
            "recent": [
                {
                    "occurred_at": entry["occurred_at"],
                    "kind": SERVICE_RECORD_NAMES.get(entry["type"], entry["type"]),
                    "advisor_id": entry["advisor_id"],
                    "voided": entry["voided"],
                }
                for entry in entries
            ],
            "ledger_url": f"{settings.ledger_url}/v1/villages/{code}/ledger",
        }

    async def village_notice(code: str) -> dict[str, Any]:
        today = clock.now().astimezone(DEFAULT_ZONE).date()
        async with host.pool.acquire() as conn:
            found = await queries.region(conn, code)
            if found is None or found["level"] != "village":
                raise ApiError(404, "not_found", f"no village {code}")
            path = await queries.path(conn, code)
            advisors = await queries.village_advisors(conn, code, today)
            figures = await queries.figures(conn, [code], str(today.year))
        return notice(found, path, advisors, today.year, figures[code])

    @app.get(
        "/v1/public/villages/{code}",
        tags=["public"],
        summary="A village's public notice (公示), no login: its advisor and this year's counts",
    )
    async def public_notice(code: VillageCodePath) -> dict[str, Any]:
        return await village_notice(code)

    @app.get("/public/villages/{code}", include_in_schema=False)
    async def public_page(code: VillageCodePath) -> HTMLResponse:
        return HTMLResponse(notice_html(await village_notice(code)))

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/config.json", include_in_schema=False)
    async def page_config() -> JSONResponse:
        """What the page needs to sign officials in: the provider's issuer and the page's client id."""
        oidc = (
            {"issuer": settings.oidc_issuer, "client_id": settings.oidc_client_id}
            if settings.oidc_issuer
            else None
        )
        return JSONResponse(
            {"oidc": oidc, "assessment_url": settings.assessment_public_url.rstrip("/")},
            headers={"Cache-Control": "no-cache"},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    static = {
        "app.js": WEB / "app.js",
        "style.css": WEB / "style.css",
        "echarts.min.js": settings.echarts_file,
    }

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> FileResponse:
        found = static.get(name)
        if found is None or not found.is_file():
            hint = " (bin/setup installs ECharts from the npm registry)" if name == "echarts.min.js" else ""
            raise ApiError(404, "not_found", f"no file {name}{hint}")
        return FileResponse(found, headers={"Cache-Control": "no-cache"})

    return app
