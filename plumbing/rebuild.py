"""Rebuild a projection from offset 0 into fresh tables, then switch over while the old one serves.

The new schema `<schema>_rebuild` is filled by a runner of its own (or, with `--workers N`, by N processes
each replaying its share of the partitions, then one pass over all of them) up to the topics' end, then to
the end again for what arrived meanwhile. Then one transaction takes the projection's exclusive lock (live
batches hold it shared), brings the new schema up to the serving one's offsets (what the live runners
applied since the last pass), renames the serving schema to `<schema>_retired_<time>` and the new one to
`<schema>`. Live runners then find their own offsets, or later ones, in the new schema and skip what the
rebuild applied, so nothing is lost or applied twice.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition

from contracts.topics import with_dead_letters
from plumbing.clock import Clock
from plumbing.kafka import KafkaConnection, create_producer, ensure_topics
from plumbing.logs import get_logger
from plumbing.postgres import Connection, create_pool
from plumbing.projection import Projection, ProjectionRunner, prepare_schema, projection_lock_key
from plumbing.settings import ProjectionSettings

log = get_logger(__name__)

# The longest the switch-over may hold the live consumers (it waits for their batches in flight, then
# applies what they applied since the rebuild's last pass: seconds of records, not minutes).
SWITCH_OVER_SECONDS = 60.0


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


PartCommand = Callable[[int, int], Sequence[str]]


async def rebuild(
    projection: Projection,
    settings: ProjectionSettings,
    clock: Clock,
    *,
    drop_retired: bool = False,
    workers: int = 1,
    part_command: PartCommand | None = None,
) -> RebuildReport:
    """Replay everything into fresh tables and switch over. With `workers` > 1 the partitions are split
    among that many processes (`part_command(part, parts)` starts one; each runs `rebuild_part`) filling
    the same fresh schema; then this process replays what arrived meanwhile over every partition."""
    if workers > 1 and part_command is None:
        raise ValueError("a rebuild with several workers needs the command that starts one")
    started = time.monotonic()
    target = f"{projection.schema}_rebuild"
    pool = await create_pool(settings.database_url, projection.schema, max_size=4)
    kafka = settings.kafka_connection()
    producer = create_producer(kafka, f"{projection.name}-rebuild-dlq")
    try:
        await ensure_topics(
            kafka,
            with_dead_letters(projection.topics),
            replication_factor=settings.topic_replication_factor,
        )
        await pool.execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')
        await prepare_schema(pool, projection, schema=target)
        applied = 0
        if workers > 1 and part_command is not None:
            applied += await _run_parts(projection, part_command, workers)
        await producer.start()
        runner = _rebuild_runner(projection, settings, kafka, clock, pool, producer, target, None)
        async with _running(runner):
            # Everything (one worker), or what arrived while the parts ran.
            await _replay(runner)
            # Fresh tables have no statistics yet; without them the first queries may get poor plans.
            tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", target)
            for table in tables:
                await pool.execute(f'ANALYZE "{target}"."{table["tablename"]}"')
            retired = await switch_over(pool, projection, runner, drop_retired=drop_retired)
        applied += runner.events_applied
    finally:
        await producer.stop()
        await pool.close()
    report = RebuildReport(projection.name, applied, time.monotonic() - started, retired)
    log.info(
        "projection_rebuilt",
        projection=projection.name,
        events=applied,
        workers=workers,
        seconds=round(report.seconds, 1),
    )
    return report


async def rebuild_part(
    projection: Projection, settings: ProjectionSettings, clock: Clock, part: int, parts: int
) -> int:
    """One worker of a parallel rebuild: its share of the partitions (every `parts`-th, from `part`) into
    the fresh schema the rebuild prepared. Offsets are stored per partition with the rows, so the shares
    never overlap and the final pass resumes where each stopped. Returns the events applied."""
    target = f"{projection.schema}_rebuild"
    pool = await create_pool(settings.database_url, projection.schema, max_size=2)
    kafka = settings.kafka_connection()
    producer = create_producer(kafka, f"{projection.name}-rebuild-dlq")
    try:
        exists = await pool.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", target)
        if not exists:
            raise RuntimeError(f"schema {target} does not exist: a part runs inside `rebuild --workers`")
        await producer.start()
        runner = _rebuild_runner(projection, settings, kafka, clock, pool, producer, target, (part, parts))
        async with _running(runner):
            return await _replay(runner)
    finally:
        await producer.stop()
        await pool.close()


@asynccontextmanager
async def _running(runner: ProjectionRunner) -> AsyncIterator[None]:
    await runner.start()
    try:
        yield
    finally:
        await runner.stop()


async def _replay(runner: ProjectionRunner) -> int:
    """Catch up to the topics' end, then once more for what arrived during the first pass."""
    applied = await runner.catch_up()
    return applied + await runner.catch_up()


def _rebuild_runner(
    projection: Projection,
    settings: ProjectionSettings,
    kafka: KafkaConnection,
    clock: Clock,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    target: str,
    share: tuple[int, int] | None,
) -> ProjectionRunner:
    return ProjectionRunner(
        projection,
        pool,
        producer,
        kafka=kafka,
        clock=clock,
        schema=target,
        group_mode=False,
        share=share,
        batch_max_records=max(settings.batch_max_records, settings.rebuild_batch_max_records),
        poll_timeout_ms=settings.poll_timeout_ms,
        kafka_timeout_seconds=settings.kafka_timeout_seconds,
    )


PART_APPLIED = re.compile(r"^rebuild part \d+/\d+: (\d+) events applied$", re.MULTILINE)


async def _run_parts(projection: Projection, part_command: PartCommand, parts: int) -> int:
    """Start every part, wait for all; one failing stops the others and fails the rebuild (the serving
    schema is untouched; `<schema>_rebuild` is dropped by the next attempt)."""
    processes = [
        await asyncio.create_subprocess_exec(*part_command(part, parts), stdout=asyncio.subprocess.PIPE)
        for part in range(parts)
    ]
    outputs = [asyncio.ensure_future(process.communicate()) for process in processes]
    applied = 0
    try:
        pending: set[asyncio.Task[tuple[bytes, bytes]]] = set(outputs)
        while pending:  # the first part to fail stops the rest at once
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for output in done:
                part = outputs.index(output)
                code = processes[part].returncode
                found = PART_APPLIED.search(output.result()[0].decode(errors="replace"))
                if code != 0 or found is None:
                    raise RuntimeError(f"{projection.name}: rebuild part {part}/{parts} failed (exit {code})")
                applied += int(found.group(1))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return applied


async def switch_over(
    pool: asyncpg.Pool, projection: Projection, runner: ProjectionRunner, *, drop_retired: bool
) -> str | None:
    """Rename the runner's schema to the serving one. Under the projection's exclusive lock (no live batch
    runs until the rename commits) the runner first applies what the live consumers applied since its
    last pass, up to the serving schema's offsets: the new tables never serve less than the old ones did,
    and each live consumer finds its own position or one beyond it in the new schema, so it skips what
    the rebuild applied and goes on. Before, the new offsets could be behind the live consumer's, and it
    went back for the records in between only when their partition got another one (issue 14)."""
    retired = retired_schema_name(projection.schema, datetime.now(UTC))
    try:
        async with asyncio.timeout(SWITCH_OVER_SECONDS), pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", projection_lock_key(projection))
            locked = time.monotonic()
            exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", projection.schema)
            applied = 0
            if exists:
                applied = await runner.catch_up(until=await _serving_offsets(conn, projection))
                await conn.execute(f'ALTER SCHEMA "{projection.schema}" RENAME TO "{retired}"')
            await conn.execute(f'ALTER SCHEMA "{runner.schema}" RENAME TO "{projection.schema}"')
            if exists and drop_retired:
                await conn.execute(f'DROP SCHEMA "{retired}" CASCADE')
    except TimeoutError as error:
        raise RuntimeError(
            f"{projection.name}: the switch-over did not finish within {SWITCH_OVER_SECONDS:.0f} s (the live "
            f"consumers wait while it runs); the serving tables are untouched, {runner.schema} is dropped "
            "by the next attempt: check the broker and the database, then rebuild again"
        ) from error
    log.info(
        "projection_switched_over",
        projection=projection.name,
        events_under_lock=applied,
        seconds_under_lock=round(time.monotonic() - locked, 2),
    )
    return retired if exists and not drop_retired else None


async def _serving_offsets(conn: Connection, projection: Projection) -> dict[TopicPartition, int]:
    await conn.execute("SELECT set_config('search_path', $1, true)", projection.schema)
    if await conn.fetchval("SELECT to_regclass('projection_offsets')") is None:
        return {}  # a schema made for the service (by its database roles) that no consumer has served yet
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM projection_offsets WHERE consumer_group = $1",
        projection.name,
    )
    return {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}


RETIRED_STAMP = "%Y%m%d%H%M%S"


def retired_schema_name(schema: str, at: datetime) -> str:
    return f"{schema}_retired_{at.astimezone(UTC).strftime(RETIRED_STAMP)}"


def expired_retired_schemas(names: Sequence[str], schema: str, keep: timedelta, now: datetime) -> list[str]:
    """The retired copies of a projection's schema that are older than `keep` (their stamp is UTC)."""
    pattern = re.compile(rf"^{re.escape(schema)}_retired_([0-9]{{14}})$")
    expired = []
    for name in names:
        match = pattern.match(name)
        if match is None:
            continue
        retired_at = datetime.strptime(match[1], RETIRED_STAMP).replace(tzinfo=UTC)
        if now - retired_at >= keep:
            expired.append(name)
    return sorted(expired)


async def drop_expired_retired(pool: asyncpg.Pool, schema: str, keep: timedelta, now: datetime) -> list[str]:
    """Drop the retired copies a rebuild left behind once they are older than `keep`: they hold what the
    projection held then, and nothing should outlive its purpose (personal data least of all)."""
    async with pool.acquire() as conn:
        names = [
            row["nspname"]
            for row in await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", f"{schema}_retired_"
            )
        ]
        expired = expired_retired_schemas(names, schema, keep, now)
        for name in expired:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    for name in expired:
        log.info("retired_schema_dropped", schema=name)
    return expired
