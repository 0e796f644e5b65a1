"""The dashboard's page and public notices: the web page at `/` with its configuration and files, and each
village's public notice (公示) at `/public/villages/{code}` and `/v1/public/villages/{code}` (no login)."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from contracts.events import DEFAULT_ZONE
from plumbing.clock import Clock
from plumbing.http import ApiError, VillageCodePath
from plumbing.routing import AppClock, Database, Db
from services.dashboard import queries
from services.dashboard.public import notice, notice_html, page_url
from services.dashboard.settings import WEB, DashboardSettings

router = APIRouter()


def public_base_url(request: Request) -> str:
    """Where residents reach the dashboard: the configured address, else the one this request came to."""
    settings: DashboardSettings = request.app.state.settings
    return settings.public_base_url or str(request.base_url)


async def village_notice(db: Database, clock: Clock, code: str, base_url: str) -> dict[str, Any]:
    today = clock.now().astimezone(DEFAULT_ZONE).date()
    async with db.acquire() as conn:
        found = await queries.region(conn, code)
        if found is None or found["level"] != "village":
            raise ApiError(404, "not_found", f"no village {code}")
        path = await queries.path(conn, code)
        advisors = await queries.village_advisors(conn, code, today)
        teams = await queries.village_teams_today(conn, code, today)
        figures = await queries.figures(conn, [code], str(today.year))
    return notice(found, path, advisors, today.year, figures[code], page_url(base_url, code), teams)


@router.get(
    "/v1/public/villages/{code}",
    tags=["public"],
    summary="A village's public notice (公示), no login: its advisor and this year's counts",
)
async def public_notice(code: VillageCodePath, request: Request, db: Db, clock: AppClock) -> dict[str, Any]:
    return await village_notice(db, clock, code, public_base_url(request))


@router.get("/public/villages/{code}", include_in_schema=False)
async def public_page(code: VillageCodePath, request: Request, db: Db, clock: AppClock) -> HTMLResponse:
    settings: DashboardSettings = request.app.state.settings
    shown = await village_notice(db, clock, code, public_base_url(request))
    ratings = (
        f"{settings.intake_public_url.rstrip('/')}/v1/public/ratings" if settings.intake_public_url else None
    )
    return HTMLResponse(notice_html(shown, ratings))


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/config.json", include_in_schema=False)
async def page_config(request: Request) -> JSONResponse:
    """What the page needs: the provider's issuer and the page's client id (sign-in), and the assessment
    API's address (the year-end approval buttons)."""
    settings: DashboardSettings = request.app.state.settings
    oidc = (
        {"issuer": settings.oidc_issuer, "client_id": settings.oidc_client_id}
        if settings.oidc_issuer
        else None
    )
    return JSONResponse(
        {"oidc": oidc, "assessment_url": settings.assessment_public_url.rstrip("/")},
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    return Response(status_code=204)


def _static(settings: DashboardSettings) -> dict[str, Path]:
    return {
        "app.js": WEB / "app.js",
        "rating.js": WEB / "rating.js",
        "style.css": WEB / "style.css",
        "echarts.min.js": settings.echarts_file,
    }


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str, request: Request) -> FileResponse:
    found = _static(request.app.state.settings).get(name)
    if found is None or not found.is_file():
        hint = " (bin/setup installs ECharts from the npm registry)" if name == "echarts.min.js" else ""
        raise ApiError(404, "not_found", f"no file {name}{hint}")
    return FileResponse(found, headers={"Cache-Control": "no-cache"})
