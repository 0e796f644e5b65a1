"""The ledger's HTTP API: a village's file, entries with their corrections, an advisor's work log,
exports a justice office files, and the chain check an auditor runs."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from plumbing.audit import access_purpose, prepare_audit
from plumbing.clock import Clock, SystemClock
from plumbing.http import allow_browser_origins, install_common
from plumbing.personal import Sealer, master_key_from_text, prepare_keystore
from plumbing.routing import wire
from plumbing.service import ProjectionHost, host_lifespan
from plumbing.tracing import Tracing
from services.ledger.projection import ledger_projection
from services.ledger.routes import router
from services.ledger.settings import LedgerSettings


def create_app(settings: LedgerSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or LedgerSettings()
    clock = clock or SystemClock()
    spans = Tracing.from_environment("ledger")
    host = ProjectionHost(
        ledger_projection(settings.personal_digest_key.encode()), settings, clock, tracer=spans.record_tracer
    )
    sealer = Sealer(master_key_from_text(settings.personal_master_key))
    hosted = host_lifespan(host, "ledger", spans)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with hosted(app):
            async with host.pool.acquire() as conn:
                await prepare_keystore(conn)  # the ledger opens seals with the keys intake keeps there
                await prepare_audit(conn)
            yield

    app = FastAPI(
        title="villagecounsel ledger",
        version="1.0.0",
        summary="一村一卷: every village's file of records, with corrections, exports and a tamper check.",
        lifespan=lifespan,
        dependencies=[Depends(access_purpose)],
    )
    install_common(app, "ledger", host.readiness, host.liveness, spans=spans)
    allow_browser_origins(app, settings.cors_origins)
    wire(app, settings=settings, clock=clock, open_region=settings.open_region, host=host, sealer=sealer)
    app.include_router(router)
    return app
