"""Hosting: the one place a consumer service wires its pool, producer and projection runner."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import uvicorn
import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from opentelemetry.trace import Tracer

from contracts.topics import with_dead_letters
from plumbing.clock import Clock
from plumbing.kafka import KafkaConnection, create_producer, ensure_topics, kafka_reachable
from plumbing.logs import configure_logging, get_logger
from plumbing.postgres import create_pool, database_reachable
from plumbing.projection import BatchHooks, Projection, ProjectionRunner, prepare_schema
from plumbing.rebuild import drop_expired_retired
from plumbing.settings import ProjectionSettings, ServiceSettings
from plumbing.tracing import Tracing

log = get_logger(__name__)

RETIRED_SWEEP_SECONDS = 3600.0
EXIT_CRASHED = 70  # EX_SOFTWARE: the projection loop died; a supervisor starts the process again


class ProjectionHost:
    """Starts and stops, in order, everything one projection needs; reports its health."""

    def __init__(
        self,
        projection: Projection,
        settings: ProjectionSettings,
        clock: Clock,
        on_crash: Callable[[], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.projection = projection
        self.tracer = tracer  # per-record spans (plumbing/tracing.py); None makes none
        self.settings = settings
        self.clock = clock
        self.on_crash = on_crash  # `serve` sets it to end the process, so that a supervisor restarts it
        self.crashed = False
        # Where a test may act inside a batch (tests/support/failpoints.py); the runtime's own are no-ops.
        self.hooks = BatchHooks()
        self._pool: asyncpg.Pool | None = None
        self._kafka: KafkaConnection | None = None
        self._producer: AIOKafkaProducer | None = None
        self.runner: ProjectionRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.projection.name}: the host is not started")
        return self._pool

    async def start(self) -> None:
        settings = self.settings
        self._pool = await create_pool(
            settings.database_url,
            self.projection.schema,
            settings.database_pool_max,
            command_timeout=settings.database_command_timeout_seconds,
        )
        await prepare_schema(self._pool, self.projection)
        self._kafka = kafka = settings.kafka_connection()
        await ensure_topics(
            kafka,
            with_dead_letters(self.projection.topics),
            replication_factor=settings.topic_replication_factor,
        )
        self._producer = create_producer(kafka, f"{self.projection.name}-dlq")
        await self._producer.start()
        self.runner = ProjectionRunner(
            self.projection,
            self._pool,
            self._producer,
            kafka=kafka,
            clock=self.clock,
            batch_max_records=settings.batch_max_records,
            poll_timeout_ms=settings.poll_timeout_ms,
            stall_after_seconds=settings.stall_after_seconds,
            kafka_timeout_seconds=settings.kafka_timeout_seconds,
            kafka_commit_interval_seconds=settings.kafka_commit_interval_seconds,
            hooks=self.hooks,
            tracer=self.tracer,
        )
        self._stopping.clear()
        self._task = asyncio.create_task(
            self.runner.run(self._stopping), name=f"projection-{self.projection.name}"
        )
        self._task.add_done_callback(self._report_crash)
        self._sweeper = asyncio.create_task(
            self._drop_expired_retired(), name=f"sweep-{self.projection.name}"
        )

    async def _drop_expired_retired(self) -> None:
        """Retired schemas (what a rebuild switched away from) are dropped once older than the setting."""
        keep = timedelta(hours=self.settings.retired_schema_keep_hours)
        while not self._stopping.is_set():
            try:
                await drop_expired_retired(self.pool, self.projection.schema, keep, self.clock.now())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("retired_schemas_not_swept", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=RETIRED_SWEEP_SECONDS)

    def _report_crash(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is None:
            return
        self.crashed = True
        log.error(
            "projection_crashed",
            projection=self.projection.name,
            error=f"{type(error).__module__}.{type(error).__qualname__}",
            **_what_to_check(error),
            exc_info=None if isinstance(error, asyncpg.PostgresError) else error,
        )
        if self.on_crash is not None:
            self.on_crash()

    async def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._sweeper, timeout=10)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                # within an orchestrator's grace period (30 s by default), the producer's stop included
                await asyncio.wait_for(asyncio.shield(self._task), timeout=15)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), timeout=10)
        if self._pool is not None:
            await self._pool.close()

    def liveness(self) -> dict[str, Any]:
        status: dict[str, Any] = self.runner.status() if self.runner else {"starting": True}
        if self._task is not None and self._task.done() and not self._stopping.is_set():
            status["crashed"] = True
        return status

    @property
    def kafka(self) -> KafkaConnection:
        """How this service connects to Kafka (its own user), for its other clients."""
        if self._kafka is None:
            raise RuntimeError(f"{self.projection.name}: the host is not started")
        return self._kafka

    async def readiness(self) -> dict[str, bool]:
        """Reachable is not enough: a database that takes no writes answers `SELECT 1`, so the projection
        also says whether its batches go through (not while one is being retried)."""
        return {
            "postgres": await database_reachable(self.pool),
            "kafka": await kafka_reachable(self.kafka),
            "applying": self.runner is not None and self.runner.retrying is None,
        }


def _what_to_check(error: BaseException) -> dict[str, str]:
    """What an operator reads in the crash line. PostgreSQL's messages can quote a value from a record,
    so only its SQLSTATE is logged for those."""
    if isinstance(error, asyncpg.PostgresError):
        return {
            "sqlstate": str(error.sqlstate),
            "check": "PostgreSQL refused the batch: the server log at this time, the schema's migrations "
            "and the service role's privileges",
        }
    if isinstance(error, KafkaError):
        return {"message": str(error)[:300], "check": "the Kafka brokers, the topics and the consumer group"}
    return {
        "message": str(error)[:300],
        "check": "the traceback below; the process exits so that its supervisor starts it again",
    }


def host_lifespan(
    host: ProjectionHost, service: str, spans: Tracing
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan of a service that is a projection plus its API: logging, spans, then the host, all
    stopped in reverse."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service, host.settings.log_level)
        spans.start()
        try:
            await host.start()
            try:
                yield
            finally:
                await host.stop()
        finally:
            spans.stop()

    return lifespan


# The cyclic collector, for a process that holds a large fixed heap (modules, pydantic's and FastAPI's
# schemas: a million objects) and allocates a batch's short-lived objects at a time. With the defaults a
# ledger rebuild spent 1.4 s of 10 s in it, a tenth of that in ten full collections walking the fixed heap
# (bench/README.md). Frozen at start, the fixed heap is never walked again; young objects are collected
# after 50,000 allocations instead of 700 (reference counting frees all but cycles before that).
COLLECTOR_THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    """Moves everything allocated so far out of the collector's reach and raises its thresholds; a
    process calls it once, after its imports and set-up, before its work starts."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def serve(app: FastAPI, settings: ServiceSettings) -> int:
    """Serve until stopped; the exit code is EXIT_CRASHED when the service's projection died, so that
    docker-compose, Kubernetes or bin/run-local start it again instead of leaving it up doing nothing."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            loop="uvloop",  # measured in bench/: p99 of one record per request
            http="httptools",
        )
    )
    host = getattr(app.state, "host", None)
    if isinstance(host, ProjectionHost):

        def shut_down() -> None:
            server.should_exit = True

        host.on_crash = shut_down
    tune_collector()
    server.run()
    if isinstance(host, ProjectionHost) and host.crashed:
        log.error("exiting_after_crash", projection=host.projection.name, exit_code=EXIT_CRASHED)
        return EXIT_CRASHED
    return 0


async def migrate(projection: Projection, settings: ProjectionSettings) -> int:
    """The projection's schema migrations and nothing else (the migration Job runs this before a release
    rolls out; the service would apply them at start too). Returns how many migrations the schema has."""
    pool = await create_pool(settings.database_url, projection.schema, 1)
    try:
        await prepare_schema(pool, projection)
    finally:
        await pool.close()
    return len(projection.all_migrations())


def projection_main(
    service: str,
    make_app: Callable[[], FastAPI],
    make_projection: Callable[[], Projection],
    make_settings: Callable[[], ProjectionSettings],
    argv: list[str] | None = None,
) -> int:
    """`python -m services.X [serve|rebuild]` for a consumer service."""
    from plumbing.clock import SystemClock
    from plumbing.rebuild import rebuild, rebuild_part

    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "migrate", "rebuild", "rebuild-part"]
    )
    parser.add_argument("--drop-retired", action="store_true", help="rebuild: drop the replaced schema")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="rebuild: processes to split the partitions among (default VC_REBUILD_WORKERS, 1)",
    )
    parser.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)  # rebuild-part, internal
    parser.add_argument("--of", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = make_settings()
    configure_logging(service, settings.log_level)
    if args.command in ("rebuild", "rebuild-part"):
        tune_collector()
    if args.command == "serve":
        return serve(make_app(), settings)
    if args.command == "migrate":
        applied = uvloop.run(migrate(make_projection(), settings))
        print(f"{service}: schema {make_projection().schema} migrated, {applied} migrations", file=sys.stdout)  # noqa: T201
        return 0
    if args.command == "rebuild-part":
        applied = uvloop.run(rebuild_part(make_projection(), settings, SystemClock(), args.part, args.of))
        print(f"rebuild part {args.part}/{args.of}: {applied} events applied", file=sys.stdout)  # noqa: T201
        return 0
    workers = args.workers if args.workers is not None else settings.rebuild_workers
    if workers < 1:
        parser.error("--workers must be at least 1")

    def part_command(part: int, parts: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            f"services.{service}",
            "rebuild-part",
            "--part",
            str(part),
            "--of",
            str(parts),
        ]

    report = uvloop.run(
        rebuild(
            make_projection(),
            settings,
            SystemClock(),
            drop_retired=args.drop_retired,
            workers=workers,
            part_command=part_command,
        )
    )
    print(report.summary(), file=sys.stdout)  # noqa: T201
    return 0
