"""The assessment service: its projection, its routes (`routes/`), and the periodic closing of months,
raising of alerts and grading of years.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI

from plumbing.clock import Clock, SystemClock
from plumbing.http import allow_browser_origins, install_common
from plumbing.kafka import PublishFailed, create_producer
from plumbing.logs import get_logger
from plumbing.routing import wire
from plumbing.service import ProjectionHost, host_lifespan
from plumbing.tracing import Tracing
from services.assessment.closing import Closer
from services.assessment.projection import assessment_projection
from services.assessment.routes import ROUTERS
from services.assessment.settings import AssessmentSettings

log = get_logger(__name__)


def create_app(settings: AssessmentSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or AssessmentSettings()
    clock = clock or SystemClock()
    spans = Tracing.from_environment("assessment")
    host = ProjectionHost(assessment_projection(), settings, clock, tracer=spans.record_tracer)
    hosted = host_lifespan(host, "assessment", spans)

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
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with hosted(app):
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

    app = FastAPI(
        title="villagecounsel assessment",
        version="1.0.0",
        summary="Rolling compliance against each region's rules: hours, lectures, a provisional grade.",
        lifespan=lifespan,
    )
    install_common(app, "assessment", host.readiness, liveness, spans=spans)
    allow_browser_origins(app, settings.cors_origins)
    wire(app, settings=settings, clock=clock, open_region=settings.open_region, host=host)
    for router in ROUTERS:
        app.include_router(router)
    return app
