"""The dashboard service: its projection and its routes (`routes/`: statistics, regions, the web page and
the villages' public notices)."""

from urllib.parse import urlsplit

from fastapi import FastAPI

from plumbing.clock import Clock, SystemClock
from plumbing.http import install_common
from plumbing.routing import wire
from plumbing.service import ProjectionHost, host_lifespan
from plumbing.tracing import Tracing
from services.dashboard.projection import dashboard_projection
from services.dashboard.routes import ROUTERS
from services.dashboard.settings import DashboardSettings


def origins(*urls: str | None) -> tuple[str, ...]:
    """The origins the page talks to: the identity provider's (its token endpoint), the assessment
    API's (the year-end approval buttons) and intake's (the public notice's ratings)."""
    found = []
    for url in urls:
        if url:
            parts = urlsplit(url)
            found.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(found))


def create_app(settings: DashboardSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or DashboardSettings()
    clock = clock or SystemClock()
    spans = Tracing.from_environment("dashboard")
    host = ProjectionHost(dashboard_projection(), settings, clock, tracer=spans.record_tracer)

    app = FastAPI(
        title="villagecounsel dashboard",
        version="1.0.0",
        summary="Five-level statistics: province → prefecture → county → township → village.",
        lifespan=host_lifespan(host, "dashboard", spans),
    )
    install_common(
        app,
        "dashboard",
        host.readiness,
        host.liveness,
        connect_sources=origins(
            settings.oidc_issuer, settings.assessment_public_url, settings.intake_public_url
        ),
        spans=spans,
    )
    wire(
        app,
        settings=settings,
        clock=clock,
        open_region=settings.open_region,
        host=host,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app
