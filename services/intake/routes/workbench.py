"""The advisor's workbench (法律顾问工作台) at `/workbench/`: a phone-first offline web app served by intake
itself. Its files, its configuration, its forms (derived from the contracts, `forms.py`) and, in local mode
only, a development sign-in for the demo advisors. Records go through intake's own `/v1/batch`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from contracts.envelope import FieldError
from plumbing.auth import Role, mint_token
from plumbing.http import ApiError, OrjsonResponse, require_json_body
from plumbing.routing import AppClock
from services.intake.forms import form_description
from services.intake.settings import IntakeSettings

WORKBENCH = Path(__file__).resolve().parents[1] / "workbench"  # the page's files, services/intake/workbench/
FILES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "sw.js": "text/javascript",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
}
# The demo advisors devstack/demo.py registers (and the identity provider's users.json lists the first two).
DEMO_ADVISORS = frozenset(f"demo-lawyer-{number:02d}" for number in range(1, 31))
DEV_TOKEN_LIFETIME = timedelta(hours=12)
NO_CACHE = {"Cache-Control": "no-cache"}


def workbench_connect_sources(settings: IntakeSettings) -> tuple[str, ...]:
    """The origins the workbench page fetches besides its own: the identity provider's (sign-in), the
    assessment's and the ledger's (my month)."""
    urls = (settings.oidc_issuer, settings.assessment_public_url, settings.ledger_url)
    return tuple(
        dict.fromkeys(f"{part.scheme}://{part.netloc}" for part in map(urlsplit, filter(None, urls)))
    )


def _local_sign_in_refusal(settings: IntakeSettings, advisor_id: Any) -> ApiError | None:
    if settings.open_region is None or settings.environment != "development":
        return ApiError(
            403,
            "forbidden",
            "the development sign-in exists in local mode only; sign in through the identity provider",
            [FieldError("open_region", "local_mode_only", "VC_OPEN_REGION is not set")],
        )
    if settings.jwt_algorithm != "HS256":
        return ApiError(
            403,
            "forbidden",
            "the development sign-in needs the development secret (VC_JWT_ALGORITHM=HS256)",
            [FieldError("jwt_algorithm", "hs256_only", "not HS256", settings.jwt_algorithm)],
        )
    if advisor_id not in DEMO_ADVISORS:
        return ApiError(
            403,
            "forbidden",
            "only the demo advisors (demo-lawyer-01 ... demo-lawyer-30) sign in without the provider",
            [FieldError("advisor_id", "demo_advisors_only", "a demo advisor's id", str(advisor_id)[:64])],
        )
    return None


router = APIRouter(prefix="/workbench", include_in_schema=False)


@router.get("")
async def workbench_root() -> RedirectResponse:
    return RedirectResponse("/workbench/", status_code=308)


@router.get("/")
async def workbench_page() -> FileResponse:
    return FileResponse(WORKBENCH / "index.html", headers=NO_CACHE)


@router.get("/config.json")
async def workbench_config(request: Request) -> JSONResponse:
    settings: IntakeSettings = request.app.state.settings
    oidc = (
        {"issuer": settings.oidc_issuer, "client_id": settings.oidc_client_id}
        if settings.oidc_issuer
        else None
    )
    local = _local_sign_in_refusal(settings, next(iter(sorted(DEMO_ADVISORS)))) is None
    return JSONResponse(
        {
            "oidc": oidc,
            "local_sign_in": local,
            "demo_advisors": sorted(DEMO_ADVISORS) if local else [],
            "batch_max_records": min(settings.batch_max_records, 200),
            "assessment_url": (settings.assessment_public_url or "").rstrip("/") or None,
            "ledger_url": (settings.ledger_url or "").rstrip("/") or None,
        },
        headers=NO_CACHE,
    )


@router.get("/forms.json")
async def workbench_forms() -> OrjsonResponse:
    return OrjsonResponse(form_description(), headers=NO_CACHE)


@router.post("/dev-sign-in")
async def development_sign_in(request: Request, clock: AppClock) -> JSONResponse:
    settings: IntakeSettings = request.app.state.settings
    require_json_body(request)
    try:
        body: Any = orjson.loads((await request.body())[:4096])
    except orjson.JSONDecodeError:
        raise ApiError(
            422,
            "validation_failed",
            "the body is not JSON",
            [FieldError("body", "json_invalid", 'e.g. {"advisor_id": "demo-lawyer-01"}')],
        ) from None
    advisor_id = body.get("advisor_id") if isinstance(body, dict) else None
    refusal = _local_sign_in_refusal(settings, advisor_id)
    if refusal is not None:
        raise refusal
    assert settings.open_region is not None  # noqa: S101 - checked by the refusal above
    token = mint_token(
        settings,
        subject=str(advisor_id),
        role=Role.advisor,
        region_code=settings.open_region,
        now=clock.now(),
        lifetime=DEV_TOKEN_LIFETIME,
    )
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(DEV_TOKEN_LIFETIME.total_seconds()),
            "advisor_id": advisor_id,
            "region": settings.open_region,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/{name}")
async def workbench_file(name: str) -> FileResponse:
    media_type = FILES.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no file {name} in the workbench")
    headers = {**NO_CACHE, "Service-Worker-Allowed": "/workbench/"} if name == "sw.js" else NO_CACHE
    return FileResponse(WORKBENCH / name, media_type=media_type, headers=headers)
