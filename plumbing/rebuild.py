"""Rebuild a projection from offset 0 into fresh tables, then switch over while the old one serves.

The new schema `<schema>_rebuild` is filled by a runner of its own; once it has reached the topics'
end, one transaction takes the projection's exclusive lock (live batches hold it shared), renames the
serving schema to `<schema>_retired_<time>` and the new one to `<schema>`. Live runners then find
PostgreSQL's offsets in the new schema and re-align to them, so nothing is lost or applied twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

from plumbing.clock import Clock
from plumbing.kafka import create_producer, ensure_topics
from plumbing.logs import get_logger
from plumbing.postgres import create_pool
from plumbing.projection import Projection, ProjectionRunner, prepare_schema, projection_lock_key
from plumbing.settings import ProjectionSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    events_applied: int
    seconds: float
    retired_schema: str | None

    def summary(self) -> str:
        retired = f"; the old tables are in schema {self.retired_schema}" if self.retired_schema else ""
        return (
            f"{self.projection}: rebuilt from offset 0, {self.events_applied} events in {self.seconds:.1f}s, "
            f"switched over{retired}"
        )


async def rebuild(
    projection: Projection, settings: ProjectionSettings, clock: Clock, *, drop_retired: bool = False
) -> RebuildReport:
    started = time.monotonic()
    target = f"{projection.schema}_rebuild"
    pool = await create_pool(settings.database_url, projection.schema, max_size=4)
    producer = create_producer(settings.kafka_bootstrap_servers, f"{projection.name}-rebuild-dlq")
    try:
        await ensure_topics(
            settings.kafka_bootstrap_servers, replication_factor=settings.topic_replication_factor
        )
        await pool.execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')
        await prepare_schema(pool, projection, schema=target)
        await producer.start()
        runner = ProjectionRunner(
            projection,
            pool,
            producer,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            clock=clock,
            schema=target,
            group_mode=False,
            batch_max_records=max(settings.batch_max_records, settings.rebuild_batch_max_records),
            poll_timeout_ms=settings.poll_timeout_ms,
            kafka_timeout_seconds=settings.kafka_timeout_seconds,
        )
        await runner.start()
        try:
            applied = await runner.catch_up()
            applied += await runner.catch_up()  # what arrived during the first pass
        finally:
            await runner.stop()
        # Fresh tables have no statistics yet; without them the first queries may get poor plans.
        tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", target)
        for table in tables:
            await pool.execute(f'ANALYZE "{target}"."{table["tablename"]}"')
        retired = await switch_over(pool, projection, target, drop_retired=drop_retired)
    finally:
        await producer.stop()
        await pool.close()
    report = RebuildReport(projection.name, applied, time.monotonic() - started, retired)
    log.info(
        "projection_rebuilt", projection=projection.name, events=applied, seconds=round(report.seconds, 1)
    )
    return report


async def switch_over(
    pool: asyncpg.Pool, projection: Projection, target: str, *, drop_retired: bool
) -> str | None:
    retired = f"{projection.schema}_retired_{time.strftime('%Y%m%d%H%M%S')}"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", projection_lock_key(projection))
        exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", projection.schema)
        if exists:
            await conn.execute(f'ALTER SCHEMA "{projection.schema}" RENAME TO "{retired}"')
        await conn.execute(f'ALTER SCHEMA "{target}" RENAME TO "{projection.schema}"')
        if exists and drop_retired:
            await conn.execute(f'DROP SCHEMA "{retired}" CASCADE')
    return retired if exists and not drop_retired else None
