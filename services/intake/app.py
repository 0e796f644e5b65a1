"""Intake: validate, publish CloudEvents, 202 after Kafka's ack. `create_app` builds the parts (publisher,
key store, admission) and wires the routes (`routes/`: records and the batch, erasures, imports).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from contracts.envelope import to_kafka_record
from contracts.topics import INPUT_TOPICS, TOPIC_BY_NAME
from plumbing.clock import Clock, SystemClock
from plumbing.http import allow_browser_origins, install_common
from plumbing.kafka import ensure_topics, kafka_reachable
from plumbing.logs import configure_logging, get_logger
from plumbing.personal import Sealer, master_key_from_text
from plumbing.routing import wire
from plumbing.tracing import Tracing
from services.intake.backfill import ImportRun
from services.intake.default_policy import default_policy_event
from services.intake.openapi import install_openapi
from services.intake.publisher import NotStored, Publisher
from services.intake.ratings import ClientBuckets
from services.intake.routes import ROUTERS
from services.intake.routes.common import Admission, IntakeParts
from services.intake.routes.ratings import RATINGS_PATH
from services.intake.routes.workbench import workbench_connect_sources
from services.intake.rules import Limits
from services.intake.sealing import Keystore
from services.intake.settings import IntakeSettings

log = get_logger(__name__)


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    clock = clock or SystemClock()
    kafka = settings.kafka_connection()
    spans = Tracing.from_environment("intake")
    publisher = Publisher(
        kafka,
        settings.publish_timeout_seconds,
        settings.producer_recreate_after_failures,
        spans.tracer,
        settings.producer_recreate_after_seconds,
    )
    limits = Limits(
        max_age=timedelta(days=settings.max_record_age_days),
        clock_skew=timedelta(seconds=settings.clock_skew_seconds),
    )
    admission = Admission(settings.max_in_flight_requests, settings.retry_after_seconds)
    keystore = Keystore(
        settings.database_url,
        Sealer(master_key_from_text(settings.personal_master_key)),
        settings.keystore_timeout_seconds,
    )
    unavailable_headers = {"Retry-After": str(settings.retry_after_seconds)}

    async def publish_default_policies() -> None:
        """Until Kafka has stored them (intake starts without Kafka); repeats are dropped by id."""
        records = [
            to_kafka_record(default_policy_event(code, clock.now()))
            for code in settings.default_policy_region_codes
        ]
        while True:
            results = await publisher.publish_all(records)
            records = [
                record
                for record, result in zip(records, results, strict=True)
                if isinstance(result, NotStored)
            ]
            if not records:
                return
            log.warning("default_policy_not_stored", regions=len(records))
            await asyncio.sleep(settings.retry_after_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        configure_logging("intake", settings.log_level)
        spans.start()
        try:
            await ensure_topics(
                kafka,
                [TOPIC_BY_NAME[topic] for topic in INPUT_TOPICS],
                replication_factor=settings.topic_replication_factor,
                timeout_seconds=settings.kafka_timeout_seconds,
            )
        except Exception as error:  # noqa: BLE001 - intake starts without Kafka and answers 503 until it is back
            log.warning("topics_not_ensured", error=type(error).__name__)
        await publisher.start()
        policies = asyncio.create_task(publish_default_policies(), name="intake-default-policies")
        try:
            with contextlib.suppress(TimeoutError):  # with Kafka up, stored before the first request
                await asyncio.wait_for(asyncio.shield(policies), settings.publish_timeout_seconds)
            yield
        finally:
            policies.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await policies
            await publisher.stop()
            await keystore.stop()
            spans.stop()

    app = FastAPI(
        title="villagecounsel intake",
        version="1.0.0",
        summary="Record what village legal advisors do (一村一法律顾问), one by one or in offline batches.",
        lifespan=lifespan,
    )

    async def readiness() -> dict[str, bool]:
        return {"kafka": await kafka_reachable(kafka), "keystore": await keystore.reachable()}

    install_common(app, "intake", readiness, connect_sources=workbench_connect_sources(settings), spans=spans)
    install_openapi(app)
    allow_browser_origins(app, settings.public_page_origins, paths=(RATINGS_PATH,))
    importer = ImportRun(keystore, publisher, batch_size=settings.import_batch_records)
    buckets = ClientBuckets(settings.rating_burst, settings.ratings_per_minute)
    parts = IntakeParts(settings, publisher, keystore, limits, importer, unavailable_headers, buckets)
    # Intake has no local mode: every record needs a token.
    wire(
        app,
        settings=settings,
        clock=clock,
        open_region=None,
        parts=parts,
        publisher=publisher,
        admission=admission,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app
