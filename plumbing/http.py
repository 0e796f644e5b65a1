"""What every service's HTTP side shares: one error shape, request logs and metrics, health endpoints.

Every error answers `{"error": {"status", "code", "message", "request_id", "fields": [...]}}` where each
field entry names the field, the rule and the offending value.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
import structlog
from fastapi import FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.envelope import ContractViolation, FieldError
from plumbing import metrics, tracing
from plumbing.logs import get_logger

log = get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
LivenessCheck = Callable[[], dict[str, Any]]

# Codes in paths and queries are ASCII digits (`\d` takes fullwidth ones too); advisor ids as contracts say.
VILLAGE_CODE = r"^[0-9]{12}$"
REGION_CODE = r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$"
ADVISOR_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
# Times asked about lie within these years: beyond them PostgreSQL's and Python's calendars overflow.
QUERY_YEARS = (2000, 2100)
URL_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")

# Every answer: no sniffing, no framing, no referrer; scripts only from the service itself (the dashboard
# page and its ECharts are files under /static; inline styles are allowed for ECharts' tooltips and the
# public notice's <style>). The API documentation pages load Swagger UI / ReDoc from their CDN.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCUMENTATION_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCUMENTATION_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _year_within(year: int) -> None:
    first, last = QUERY_YEARS
    if not first <= year <= last:
        raise PydanticCustomError(
            "within_years", "must lie within the years {first}-{last}", {"first": first, "last": last}
        )


def _iso_not_a_number(value: Any) -> Any:
    """A time in a query is ISO 8601: `since=1774000000` is refused, not read as a Unix timestamp."""
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        raise PydanticCustomError(
            "iso_8601", "write an ISO 8601 date or time, e.g. 2026-03-20T09:30:00+08:00"
        )
    return value


def _moment_within_years(moment: datetime) -> datetime:
    _year_within(moment.year)
    return moment


def _day_within_years(day: date) -> date:
    _year_within(day.year)
    return day


def _month_within_years(month: str) -> str:
    _year_within(int(month[:4]))
    return month


VillageCodePath = Annotated[str, Path(pattern=VILLAGE_CODE, description="12-digit village code")]
RegionCodePath = Annotated[str, Path(pattern=REGION_CODE, description="2, 4, 6, 9 or 12-digit division code")]
# The dashboard answers for the country too (the Ministry's view): "0" above the provinces.
NATIONAL_REGION_CODE = r"^(0|[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$"
NationalRegionCodePath = Annotated[
    str,
    Path(
        pattern=NATIONAL_REGION_CODE, description="0 (the country) or a 2, 4, 6, 9 or 12-digit division code"
    ),
]
AdvisorIdPath = Annotated[str, Path(pattern=ADVISOR_ID, description="advisor id")]
QueryMoment = Annotated[datetime, BeforeValidator(_iso_not_a_number), AfterValidator(_moment_within_years)]
QueryDay = Annotated[date, BeforeValidator(_iso_not_a_number), AfterValidator(_day_within_years)]
QueryMonth = Annotated[str, AfterValidator(_month_within_years)]


class OrjsonResponse(JSONResponse):
    """JSON encoded by orjson: a batch's thousand results in a tenth of the standard library's time."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error meant for the client: status, a stable code, a message that says what to do."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}


def field_entry(error: FieldError) -> dict[str, Any]:
    entry: dict[str, Any] = {"field": error.field, "rule": error.rule, "message": error.message}
    if error.value is not None:
        entry["value"] = (
            error.value if isinstance(error.value, str | int | float | bool) else str(error.value)
        )
    return entry


def error_body(
    status: int, code: str, message: str, request_id: str | None, fields: list[FieldError] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "code": code, "message": message, "request_id": request_id}
    if fields:
        body["fields"] = [field_entry(error) for error in fields]
    return {"error": body}


def request_validation_fields(error: RequestValidationError) -> list[FieldError]:
    found = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if part not in ("body",)]
        found.append(
            FieldError(
                field=".".join(location) or "body",
                rule=str(item.get("type", "invalid")),
                message=str(item.get("msg", "invalid")),
                value=item.get("input") if item.get("type") != "missing" else None,
            )
        )
    return found


def require_json_body(request: Request) -> None:
    """415 unless the body is declared `application/json` (text/plain bodies are not guessed at)."""
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
            [
                FieldError(
                    "headers.content-type", "application_json", "must be application/json", declared or None
                )
            ],
        )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


class RequestContextMiddleware:
    """Request id, one log line per request, and the HTTP metrics (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 100 else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        # The server span the FastAPI instrumentation opened around this request; probes have none.
        trace = tracing.current() or tracing.start(headers.get(tracing.HEADER.encode()))
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", []).extend(
                    [
                        (b"x-request-id", request_id.encode("latin-1")),
                        (tracing.HEADER.encode(), trace.traceparent.encode()),
                    ]
                )
            await send(message)

        started = time.perf_counter()
        in_flight = metrics.HTTP_IN_FLIGHT.labels(self.service)
        in_flight.inc()
        structlog.contextvars.bind_contextvars(
            request_id=request_id, trace_id=trace.trace_id, span_id=trace.span_id
        )
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            in_flight.dec()
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            status = status_holder["status"]
            metrics.HTTP_REQUESTS.labels(self.service, route_path, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(self.service, route_path).observe(elapsed)
            if route_path not in ("/metrics", "/healthz", "/readyz"):
                log.info(
                    "http_request",
                    route=route_path,
                    method=method,
                    status=status,
                    latency_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id", "trace_id", "span_id")


class SecurityHeadersMiddleware:
    """CSP, X-Frame-Options, nosniff and Referrer-Policy on every answer of every service."""

    def __init__(self, app: ASGIApp, connect_sources: tuple[str, ...] = ()) -> None:
        self.app = app
        # The page may also talk to these origins (the identity provider's token endpoint).
        self.policy = CONTENT_SECURITY_POLICY + "; connect-src " + " ".join(("'self'", *connect_sources))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCUMENTATION_POLICY if scope.get("path") in DOCUMENTATION_PATHS else self.policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend(SECURITY_HEADERS)
                headers.append((b"content-security-policy", policy.encode()))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def url_control_characters(scope: Scope) -> list[FieldError]:
    """Control characters in the decoded path or a query value: each named, none ever reaches a handler
    (a CR/LF in a path used to end in a response header and drop the connection)."""
    found: list[FieldError] = []
    rule, message = "no_control_characters", "control characters (U+0000-U+001F, U+007F) are not allowed"
    if URL_CONTROL_CHARACTER.search(scope.get("path", "")):
        found.append(FieldError("path", rule, message))
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if URL_CONTROL_CHARACTER.search(name) or URL_CONTROL_CHARACTER.search(value):
            found.append(FieldError(f"query.{URL_CONTROL_CHARACTER.sub('?', name)}", rule, message))
    return found


class UrlTextMiddleware:
    """422 for a request whose path or query carries a control character, before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problems = url_control_characters(scope) if scope["type"] == "http" else []
        if not problems:
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        body = error_body(
            422, "validation_failed", "the URL carries control characters", request_id, problems
        )
        await JSONResponse(body, status_code=422)(scope, receive, send)


class _CorsOnPaths:
    """CORS on some paths only: the rest of the app answers as if no other origin existed."""

    def __init__(self, app: ASGIApp, origins: list[str], paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = paths
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=["Content-Type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def allow_browser_origins(app: FastAPI, origins: list[str], paths: tuple[str, ...] = ()) -> None:
    """CORS for the web pages of other services (the dashboard's, the workbench's) that call this API with
    the signed-in official's or advisor's token; with `paths`, only those (POST, no credentials: the
    dashboard's public notice posting a resident's rating to intake)."""
    if origins and paths:
        app.add_middleware(_CorsOnPaths, origins=origins, paths=paths)
    elif origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Access-Purpose"],
        )


def install_common(
    app: FastAPI,
    service: str,
    readiness: ReadinessCheck,
    liveness: LivenessCheck | None = None,
    connect_sources: tuple[str, ...] = (),
    *,
    spans: tracing.Tracing | None = None,
) -> None:
    """Add the error handlers, request middleware, the server spans and /healthz, /readyz, /metrics to a
    service app (a service passes the `spans` its lifespan starts; without, they have ids and go nowhere)."""
    app.add_middleware(UrlTextMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, connect_sources=connect_sources)
    app.add_middleware(RequestContextMiddleware, service=service)
    # Outside every middleware above: the server span is current while they and the route run.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=(spans or tracing.Tracing(service)).provider,
        excluded_urls=tracing.UNTRACED_PATHS,
        exclude_spans=["receive", "send"],  # a span per ASGI message would cost more than the request
    )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(error.status, error.code, error.message, _request_id(request), error.fields),
            status_code=error.status,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = request_validation_fields(error)
        return JSONResponse(
            error_body(
                422,
                "validation_failed",
                "the request does not fit the contract",
                _request_id(request),
                fields,
            ),
            status_code=422,
        )

    @app.exception_handler(ContractViolation)
    async def _contract_violation(request: Request, error: ContractViolation) -> JSONResponse:
        return JSONResponse(
            error_body(
                422,
                "validation_failed",
                "the record does not fit the contract",
                _request_id(request),
                error.errors,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(error.status_code, "http_error", str(error.detail), _request_id(request)),
            status_code=error.status_code,
            headers=dict(error.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # The type and place only: exception texts can quote request values, which may be personal.
        trace = error.__traceback__
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        where = f"{trace.tb_frame.f_code.co_filename}:{trace.tb_lineno}" if trace else "?"
        log.error("unhandled_error", error=type(error).__name__, where=where)
        return JSONResponse(
            error_body(500, "internal_error", "an unexpected error; it was logged", _request_id(request)),
            status_code=500,
        )

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Alive (fails when the projection crashed, or stalled while Kafka and PostgreSQL answer)",
    )
    async def healthz() -> JSONResponse:
        details = liveness() if liveness is not None else {}
        healthy = not details.get("crashed", False)
        if healthy and details.get("stalled", False):
            # A stall while a dependency is down is that outage (readiness reports it, and a restart would
            # not end it: it would only put every consumer into a crash loop); a stall while both answer
            # is a stuck consumer, which a restart does end.
            checks = await readiness()
            waiting_for = sorted(name for name, ok in checks.items() if not ok)
            details = {**details, "waiting_for": waiting_for}
            healthy = bool(waiting_for)
        return JSONResponse(
            {"status": "ok" if healthy else "failing", **details}, status_code=200 if healthy else 503
        )

    @app.get("/readyz", tags=["operations"], summary="Ready (Kafka and PostgreSQL reachable)")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
