"""The projection runtime: one loop that turns Kafka topics into PostgreSQL tables exactly once.

A batch is applied in one PostgreSQL transaction together with the next offsets of its partitions.
Inside that transaction the offset rows are locked and compared with what this consumer believes its
position is; records below the stored offset are skipped and a store that is behind the consumer
forces a seek back. So a crash at any point, a zombie consumer after a rebalance, or a schema swapped
underneath by a rebuild can neither lose nor repeat an event. Kafka-side commits are made for lag
visibility only and never read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from asyncpg.transaction import Transaction
from opentelemetry.trace import SpanKind, Tracer

from contracts.envelope import (
    ContractViolation,
    Event,
    content_fingerprint,
    from_kafka_record,
    payload_values,
    to_kafka_record,
)
from contracts.topics import dead_letter_topic
from plumbing import metrics
from plumbing.clock import Clock
from plumbing.kafka import KafkaConnection, create_consumer, topic_partitions
from plumbing.logs import get_logger
from plumbing.postgres import (
    RUNTIME_MIGRATIONS,
    Connection,
    apply_migrations,
    checked_schema,
    read_migrations,
)
from plumbing.tracing import TraceContext, from_kafka_headers

log = get_logger(__name__)

LAG_REFRESH_SECONDS = 5.0
# How long the group's offsets (lag only) are waited on when stopping, in a rebalance and by the lag watch.
KAFKA_COMMIT_WAIT_SECONDS = 2.0
# The longest pause between two attempts at a batch that failed for a reason that passes (a database or
# broker away): what a recovery waits at most after the outage ends (10 s before; issue 14's target is 15 s
# from the fault's end to the lag worked off).
RETRY_DELAY_MAX_SECONDS = 2.0

# SQLSTATE classes that say "this data cannot be applied" rather than "try again": 22 data exception,
# 23 integrity constraint violation. Anything else is retried or crashes the process.
POISON_SQLSTATE_CLASSES = ("22", "23")
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.CannotConnectNowError,
    KafkaError,
)

OFFSETS_UNREADABLE: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, asyncpg.PostgresError)

# SQLSTATEs that say "the database takes no writes now", not "this batch is wrong": 25006 a read-only
# transaction (a standby after a fail-over, `default_transaction_read_only` set by an operator), class 53
# insufficient resources (disk full, out of memory, too many connections), class 57 operator intervention
# (shut down, cancelled). The batch is retried on a fresh session (a read-only one stays read-only).
WRITES_REFUSED_SQLSTATES = ("25006",)
WRITES_REFUSED_SQLSTATE_CLASSES = ("53", "57")


@dataclass(frozen=True)
class ConsumedEvent:
    event: Event
    topic: str
    partition: int
    offset: int
    fingerprint: bytes
    trace: TraceContext | None = None  # the `traceparent` of the request that wrote it (plumbing/tracing.py)
    # The payload's `payload_values`, dumped once for the fingerprint, for a projection that files them.
    values: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Conflict:
    """An event id seen again with different content; the first one stays, this one is kept out."""

    later: ConsumedEvent
    first_topic: str
    first_partition: int
    first_offset: int


@dataclass(frozen=True)
class Batch:
    events: list[ConsumedEvent]
    conflicts: list[Conflict]
    now: datetime


ApplyBatch = Callable[[Connection, Batch], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    """What a service declares: its name (consumer group), schema, topics, migrations and apply step."""

    name: str
    schema: str
    topics: tuple[str, ...]
    migrations: Path
    apply: ApplyBatch

    def all_migrations(self) -> list[Any]:
        return read_migrations("runtime", RUNTIME_MIGRATIONS) + read_migrations(self.name, self.migrations)


class BatchHooks:
    """Points in a batch's application where a test may act (stop the process as a crash would, raise an
    error the runtime does not expect): no-ops here. Tests inject their own (tests/support/failpoints.py)
    through `ProjectionHost.hooks`; the runtime carries no test code."""

    def mid_batch(self) -> None:
        """Inside the batch's transaction, after the projection applied it, before the commit."""

    def after_commit(self) -> None:
        """After the batch's transaction committed, before the consumer's offsets move on."""


class _Resync(Exception):
    def __init__(self, stored: dict[TopicPartition, int]) -> None:
        self.stored = stored


@dataclass(frozen=True)
class _Poison:
    record: ConsumerRecord[bytes, bytes]
    reason: str
    record_event_id: str | None = None


def decode_records(
    records: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]],
) -> tuple[list[ConsumedEvent], list[_Poison]]:
    """A fetched batch decoded as every projection decodes it, in (topic, partition, offset) order: each
    record validated against its contract once, its payload's values and content fingerprint computed;
    what breaks a rule is set aside with the rules it broke (for the dead-letter topic). The benchmark's
    consumer ceiling (bench/ceiling.py) times this very function."""
    decoded: list[ConsumedEvent] = []
    poison: list[_Poison] = []
    for tp in sorted(records, key=lambda item: (item.topic, item.partition)):
        for record in records[tp]:
            try:
                event = from_kafka_record(tp.topic, record.key, record.value, list(record.headers or ()))
            except ContractViolation as violation:
                rules = ",".join(sorted({f"{error.field}:{error.rule}" for error in violation.errors}))
                poison.append(_Poison(record, f"contract:{rules}"))
                continue
            values = payload_values(event.data)
            decoded.append(
                ConsumedEvent(
                    event,
                    tp.topic,
                    tp.partition,
                    record.offset,
                    content_fingerprint(event, values),
                    from_kafka_headers(record.headers),
                    values,
                )
            )
    return decoded, poison


@asynccontextmanager
async def _transaction(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """A connection in a transaction; one that fails with anything but PostgreSQL's own error is terminated.

    After the server dies mid-query, asyncpg can leave a connection in the middle of an operation and the
    next use fails with InternalClientError "cannot switch to state 15; another operation (2) is in
    progress" (MagicStack/asyncpg#784). Such a connection must never go back to the pool: it is closed
    here and the caller retries on a fresh one (the server rolled the transaction back when it went away).
    Nothing more is sent on it, not even a ROLLBACK: after a timeout the server may never answer (a
    half-open connection), and `async with conn.transaction()` would wait on its ROLLBACK as long again.
    """
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        try:
            await transaction.start()
            yield conn
            await transaction.commit()
        except BaseException as error:
            answered = isinstance(error, _Resync) or (
                isinstance(error, asyncpg.PostgresError) and not writes_refused(error)
            )
            if answered:
                await _roll_back(conn, transaction)
            else:
                conn.terminate()  # a read-only session stays read-only: a fresh one may not be
            if not isinstance(error, asyncpg.PostgresError | _Resync):
                # What broke this connection (a reset, a half-open or hung network path) has most likely
                # broken the idle ones too: each would cost a retry and a timeout, so all are replaced.
                await pool.expire_connections()
            raise


async def _roll_back(conn: Connection, transaction: Transaction) -> None:
    """Roll back on a connection PostgreSQL answers on; a transaction that already ended (its COMMIT
    failed) needs none, and a ROLLBACK that fails leaves the connection to be terminated."""
    try:
        await transaction.rollback()
    except asyncpg.InterfaceError:
        return  # the transaction ended already, or the connection is closed
    except BaseException:
        conn.terminate()
        raise


def catch_up_goal(
    ends: Mapping[TopicPartition, int], until: Mapping[TopicPartition, int] | None
) -> dict[TopicPartition, int]:
    """The offset to reach in each partition: its end, or `until`'s offset for it (none when `until` has
    no offset for it) but never beyond the end, as a topic restored from the mirror can be shorter than
    the offsets stored for the one it replaced."""
    if until is None:
        return dict(ends)
    return {tp: min(end, until.get(tp, 0)) for tp, end in ends.items()}


def projection_lock_key(projection: Projection) -> str:
    """Live batches hold this advisory lock shared; a rebuild's switch-over holds it exclusively."""
    return f"projection:{projection.name}"


async def prepare_schema(pool: asyncpg.Pool, projection: Projection, schema: str | None = None) -> None:
    async with pool.acquire() as conn:
        await apply_migrations(conn, schema or projection.schema, projection.all_migrations())


class ProjectionRunner:
    """Runs one projection: `run()` until stopped, or `catch_up()` to the topics' current end."""

    def __init__(
        self,
        projection: Projection,
        pool: asyncpg.Pool,
        dlq_producer: AIOKafkaProducer,
        *,
        kafka: KafkaConnection,
        clock: Clock,
        schema: str | None = None,
        group_mode: bool = True,
        share: tuple[int, int] | None = None,
        batch_max_records: int = 2000,
        poll_timeout_ms: int = 500,
        stall_after_seconds: float = 120.0,
        kafka_timeout_seconds: float = 10.0,
        kafka_commit_interval_seconds: float = 1.0,
        hooks: BatchHooks | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        tracer: Tracer | None = None,
    ) -> None:
        self.projection = projection
        self._tracer = tracer  # a span per applied record of a sampled trace; None: no spans (rebuilds)
        self.schema = checked_schema(schema or projection.schema)
        # Only batches into the serving tables hold the projection's lock (shared): a rebuild's runner fills
        # a schema of its own, and applies its last records while the switch-over holds the lock exclusively.
        self._serving = self.schema == projection.schema
        self._pool = pool
        self._dlq = dlq_producer
        self._kafka = kafka
        self._clock = clock
        self._group_mode = group_mode
        if share is not None and not (share[1] >= 1 and 0 <= share[0] < share[1]):
            raise ValueError(f"share {share}: part must be in 0..parts-1")
        self._share = share
        self._batch_max = batch_max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._stall_after = stall_after_seconds
        self._kafka_timeout = kafka_timeout_seconds
        self._kafka_commit_interval = kafka_commit_interval_seconds
        self._hooks = hooks or BatchHooks()
        self._monotonic = monotonic
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._last_progress = monotonic()
        self._lag: dict[TopicPartition, int] = {}
        self._stored_known: dict[TopicPartition, int] = {}  # PostgreSQL's offsets as last read or written
        self._held: set[TopicPartition] = set()  # the partitions this consumer held most recently
        self._kafka_pending: dict[TopicPartition, int] = {}  # applied, not yet committed to the group
        self._kafka_committed_at = monotonic()
        self._kafka_committing = asyncio.Lock()
        self.events_applied = 0
        self.newest_event_time: datetime | None = None
        self.retrying: str | None = None  # what the batch being retried failed with, None while applying

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        consumer = create_consumer(
            self._kafka,
            group_id=self.projection.name if self._group_mode else None,
            client_id=f"{self.projection.name}-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self._batch_max,
            # A request without an answer (a half-open connection, a broker that hangs) fails after this
            # and the consumer reconnects: 40 s before (issue 14). It must exceed the group's rebalance
            # timeout (aiokafka's default: the session timeout, 10 s), as aiokafka sends JoinGroup with it.
            request_timeout_ms=int(self._kafka_timeout * 1000) + 2_000,
        )
        await consumer.start()
        self._consumer = consumer
        if self._group_mode:
            consumer.subscribe(list(self.projection.topics), listener=_SeekToStoredOffsets(self))
        else:
            partitions = await topic_partitions(self._kafka, self.projection.topics)
            if self._share is not None:
                part, parts = self._share
                partitions = partitions[part::parts]  # sorted by topic and partition: each topic split evenly
            consumer.assign(partitions)
            await self._seek_to_stored(partitions)

    async def stop(self) -> None:
        """Commit what waits to the group (within KAFKA_COMMIT_WAIT_SECONDS) and leave it, within the Kafka
        timeout: a consumer stopped while its group rebalances can wait on the coordinator far longer than an
        orchestrator's grace period (the chaos round's rebalance saw a replica take over 30 s). Nothing
        depends on a clean leave: the offsets are in PostgreSQL, and the group drops a member that left
        silently after its session timeout."""
        if self._consumer is not None:
            await self._flush_to_kafka(within=KAFKA_COMMIT_WAIT_SECONDS)
            consumer, self._consumer = self._consumer, None
            try:
                await asyncio.wait_for(consumer.stop(), timeout=self._kafka_timeout)
            except TimeoutError:
                log.warning("consumer_stop_timed_out", projection=self.projection.name)

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume and apply until `stopping` is set; the consumer is always stopped on the way out."""
        await self.start()
        lag_watch = asyncio.create_task(self._watch_lag(stopping), name=f"lag-{self.projection.name}")
        try:
            while not stopping.is_set():
                await self.poll_once()
        finally:
            lag_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_watch
            await self.stop()

    async def catch_up(self, until: Mapping[TopicPartition, int] | None = None) -> int:
        """Apply everything up to the topics' end, or up to the next offsets `until` (`catch_up_goal`), each
        partition's goal set when it is first held; return how many events were applied. Records arriving
        meanwhile may be applied too, but are not waited for: re-reading the end after every batch chased
        it for as long as records kept coming (a rebuild under steady load never switched over, issue 14)."""
        consumer = self._require_consumer()
        before = self.events_applied
        goal: dict[TopicPartition, int] = {}
        while True:
            assigned = consumer.assignment()
            if not assigned:
                await self.poll_once()
                continue
            unknown = [tp for tp in assigned if tp not in goal]
            if unknown:
                goal.update(catch_up_goal(await consumer.end_offsets(unknown), until))
            if all(self._positions.get(tp, -1) >= goal[tp] for tp in assigned):
                return self.events_applied - before
            await self.poll_once()

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer holds now (none before it started or while its group rebalances)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the projection runner is not started")
        return self._consumer

    # -- health ------------------------------------------------------------------------------------

    def record_lag(self, tp: TopicPartition, lag: int) -> None:
        self._lag[tp] = max(0, lag)
        metrics.LAG.labels(self.projection.name, tp.topic, str(tp.partition)).set(self._lag[tp])

    def _forget_lag(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions this consumer no longer holds leave the gauge (their new owner reports them)."""
        for tp in list(partitions):
            self._lag.pop(tp, None)
            with contextlib.suppress(KeyError):
                metrics.LAG.remove(self.projection.name, tp.topic, str(tp.partition))

    def total_lag(self) -> int:
        return sum(self._lag.values())

    def stalled(self) -> bool:
        """True when there is lag and nothing was applied for longer than the stall limit."""
        return self.total_lag() > 0 and self._monotonic() - self._last_progress > self._stall_after

    def status(self) -> dict[str, Any]:
        return {
            "projection": self.projection.name,
            "schema": self.schema,
            "lag": self.total_lag(),
            "events_applied": self.events_applied,
            "seconds_since_progress": round(self._monotonic() - self._last_progress, 1),
            "newest_event_time": self.newest_event_time.isoformat() if self.newest_event_time else None,
            "stalled": self.stalled(),
            "retrying": self.retrying,
        }

    # -- the loop ----------------------------------------------------------------------------------

    async def poll_once(self) -> None:
        consumer = self._require_consumer()
        fetched = await consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._batch_max)
        records = {tp: batch for tp, batch in fetched.items() if batch}
        if records:
            await self._apply_with_retry(records)
            # A rebalance while the batch was applied may have taken some of its partitions away: their
            # lag is the new holder's to tell (aiokafka asserts on the highwater of a partition not held).
            held = consumer.assignment()
            for tp in records:
                if tp not in held:
                    continue
                end = consumer.highwater(tp)
                if end is not None and tp in self._positions:
                    self.record_lag(tp, end - self._positions[tp])

    async def _watch_lag(self, stopping: asyncio.Event) -> None:
        """Refresh the lag on a timer of its own, so it is true while the loop waits on a batch, on a
        database that is down, or on a group that has not assigned anything yet."""
        while not stopping.is_set():
            await self.refresh_lag()
            await self._flush_to_kafka(within=KAFKA_COMMIT_WAIT_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=LAG_REFRESH_SECONDS)

    def _lag_partitions(self) -> set[TopicPartition]:
        """What this consumer holds; between assignments what it held last; before the first one, every
        partition of its topics (none of them is being consumed yet)."""
        consumer = self._require_consumer()
        assigned = set(consumer.assignment())
        if assigned:
            self._held = assigned
            return assigned
        if self._held:
            return self._held
        return {
            TopicPartition(topic, partition)
            for topic in self.projection.topics
            for partition in consumer.partitions_for_topic(topic) or ()
        }

    async def refresh_lag(self) -> None:
        """Lag = the broker's end offsets - PostgreSQL's stored offsets (the last known ones while the
        database does not answer). A Kafka that does not answer leaves the last values standing."""
        consumer = self._require_consumer()
        partitions = self._lag_partitions()
        self._forget_lag(set(self._lag) - partitions)
        if not partitions:
            return
        try:
            async with asyncio.timeout(self._kafka_timeout):
                ends = await consumer.end_offsets(list(partitions))
        except (TimeoutError, KafkaError) as error:
            log.warning("lag_unknown", projection=self.projection.name, error=type(error).__name__)
            return
        try:
            async with asyncio.timeout(self._kafka_timeout):
                self._stored_known.update(await self.stored_offsets(list(partitions)))
        except OFFSETS_UNREADABLE as error:
            log.warning(
                "lag_from_last_known_offsets", projection=self.projection.name, error=type(error).__name__
            )
        for tp in partitions:
            stored = self._stored_known.get(tp, self._positions.get(tp))
            if tp in ends and stored is not None:
                self.record_lag(tp, ends[tp] - stored)
        if self.total_lag() == 0:
            self._mark_progress()

    def _mark_progress(self) -> None:
        self._last_progress = self._monotonic()
        metrics.LAST_PROGRESS.labels(self.projection.name).set(self._clock.now().timestamp())

    async def _apply_with_retry(
        self, records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Retry what may pass later; isolate a batch PostgreSQL refuses; crash on anything else."""
        delay = 0.2
        isolate = False
        while True:
            try:
                await self._apply(records, isolate=isolate)
                self.retrying = None
                return
            except _Resync as resync:
                self.retrying = None
                metrics.RESYNCS.labels(self.projection.name).inc()
                await self._seek(resync.stored)
                return
            except TRANSIENT_ERRORS as error:
                self.retrying = type(error).__name__
                log.warning("projection_retry", projection=self.projection.name, error=self.retrying)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_DELAY_MAX_SECONDS)
            except asyncpg.PostgresError as error:
                if writes_refused(error):
                    self.retrying = type(error).__name__
                    log.warning(
                        "projection_retry",
                        projection=self.projection.name,
                        error=self.retrying,
                        sqlstate=error.sqlstate,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_DELAY_MAX_SECONDS)
                    continue
                if isolate or not _is_poison(error):
                    raise
                log.warning(
                    "projection_isolating_batch",
                    projection=self.projection.name,
                    sqlstate=error.sqlstate,
                    error=type(error).__name__,
                )
                isolate = True

    async def _apply(
        self, records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], *, isolate: bool
    ) -> None:
        started = time.perf_counter()
        started_ns = time.time_ns()
        decoded, poison = decode_records(records)
        phases = [("decode", time.perf_counter())]

        async with _transaction(self._pool) as conn:
            await self._begin_batch(conn)
            stored = await self._lock_offsets(conn, list(records))
            for tp, offset in stored.items():
                known = self._positions.get(tp)
                if known is not None and offset < known:
                    raise _Resync(stored)
            decoded = [
                item for item in decoded if item.offset >= stored[TopicPartition(item.topic, item.partition)]
            ]
            poison = [item for item in poison if item.record.offset >= stored[_tp(item.record)]]
            next_offsets = {tp: batch_records[-1].offset + 1 for tp, batch_records in records.items()}
            next_offsets = {tp: max(offset, stored[tp]) for tp, offset in next_offsets.items()}
            fresh, conflicts, duplicates = await self._deduplicate(conn, decoded, next_offsets)
            batch = Batch(events=fresh, conflicts=conflicts, now=self._clock.now())
            phases.append(("read", time.perf_counter()))
            if isolate:
                poison.extend(await self._apply_one_by_one(conn, batch))
            elif fresh or conflicts:
                await self.projection.apply(conn, batch)
            for item in poison:
                await self._dead_letter(item)
            phases.append(("apply", time.perf_counter()))
            self._hooks.mid_batch()
        phases.append(("commit", time.perf_counter()))
        self._hooks.after_commit()

        self._positions.update(next_offsets)
        self._stored_known.update(next_offsets)
        self.events_applied += len(fresh)
        batch_size = sum(map(len, records.values()))
        self._record_metrics(fresh, conflicts, duplicates, batch_size, started)
        if self._tracer is not None:
            refused = {item.record_event_id for item in poison}
            applied = [item for item in fresh if str(item.event.id) not in refused]
            record_spans(self._tracer, self.projection.name, applied, started_ns, batch_size)
        phases.append(("metrics", time.perf_counter()))
        await self._commit_to_kafka(next_offsets)
        phases.append(("kafka", time.perf_counter()))
        self._record_phases(started, phases)
        self._mark_progress()

    async def _begin_batch(self, conn: Connection) -> None:
        """One round trip before the batch's work: the schema, and (into the serving tables) the
        projection's lock held shared, as a rebuild's switch-over holds it exclusively."""
        if self._serving:
            await conn.execute(
                "SELECT set_config('search_path', $1, true), pg_advisory_xact_lock_shared(hashtext($2))",
                self.schema,
                projection_lock_key(self.projection),
            )
        else:
            await conn.execute("SELECT set_config('search_path', $1, true)", self.schema)

    async def _lock_offsets(
        self, conn: Connection, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The batch's partitions' stored offsets, their rows locked (in one order, so that two consumers
        of a rebalance never deadlock); a partition seen for the first time gets its row at offset 0."""
        ordered = sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
        topics = [tp.topic for tp in ordered]
        numbers = [tp.partition for tp in ordered]
        stored: dict[TopicPartition, int] = {}
        for attempt in range(2):
            rows = await conn.fetch(
                """SELECT topic, partition, next_offset FROM projection_offsets
                   WHERE consumer_group = $1 AND (topic, partition) IN
                         (SELECT * FROM unnest($2::text[], $3::int[]))
                   ORDER BY topic, partition
                   FOR UPDATE""",
                self.projection.name,
                topics,
                numbers,
            )
            stored = {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}
            if len(stored) == len(ordered) or attempt:
                break
            # Rows for the new partitions, then all of them read and locked again in order: a row locked
            # by the first read stays locked, the new ones are locked in the same pass.
            await conn.execute(
                """INSERT INTO projection_offsets (consumer_group, topic, partition, next_offset)
                   SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS x(t, p)
                   ON CONFLICT DO NOTHING""",
                self.projection.name,
                topics,
                numbers,
            )
        return stored

    async def _deduplicate(
        self, conn: Connection, decoded: list[ConsumedEvent], next_offsets: Mapping[TopicPartition, int]
    ) -> tuple[list[ConsumedEvent], list[Conflict], int]:
        """The batch's events not applied before (their ids recorded now), the ones whose id was seen with
        other content, and how many were plain repeats; the partitions' next offsets are written by the
        same statement (their rows are locked since `_lock_offsets`): one round trip for both."""
        first_in_batch: dict[Any, ConsumedEvent] = {}
        later_in_batch: list[ConsumedEvent] = []
        for item in decoded:
            if item.event.id in first_in_batch:
                later_in_batch.append(item)
            else:
                first_in_batch[item.event.id] = item
        candidates = list(first_in_batch.values())
        offsets = sorted(next_offsets.items(), key=lambda entry: (entry[0].topic, entry[0].partition))
        inserted = await conn.fetch(
            """WITH advanced AS (
                   UPDATE projection_offsets AS o SET next_offset = x.n, updated_at = now()
                   FROM unnest($8::text[], $9::int[], $10::bigint[]) AS x(t, p, n)
                   WHERE o.consumer_group = $7 AND o.topic = x.t AND o.partition = x.p
               )
               INSERT INTO processed_events (event_id, fingerprint, topic, partition, "offset", applied_at)
               SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::int[], $5::bigint[],
                                    $6::timestamptz[])
               ON CONFLICT (event_id) DO NOTHING
               RETURNING event_id""",
            [item.event.id for item in candidates],
            [item.fingerprint for item in candidates],
            [item.topic for item in candidates],
            [item.partition for item in candidates],
            [item.offset for item in candidates],
            [self._clock.now()] * len(candidates),
            self.projection.name,
            [tp.topic for tp, _ in offsets],
            [tp.partition for tp, _ in offsets],
            [offset for _, offset in offsets],
        )
        new_ids = {row["event_id"] for row in inserted}
        fresh = [item for item in candidates if item.event.id in new_ids]
        seen_before = [item for item in candidates if item.event.id not in new_ids] + later_in_batch
        conflicts: list[Conflict] = []
        duplicates = 0
        if seen_before:
            rows = await conn.fetch(
                """SELECT event_id, fingerprint, topic, partition, "offset" FROM processed_events
                   WHERE event_id = ANY($1::uuid[])""",
                list({item.event.id for item in seen_before}),
            )
            first = {row["event_id"]: row for row in rows}
            for item in seen_before:
                original = first[item.event.id]
                if bytes(original["fingerprint"]) == item.fingerprint:
                    duplicates += 1
                else:
                    conflicts.append(
                        Conflict(item, original["topic"], original["partition"], original["offset"])
                    )
        return fresh, conflicts, duplicates

    async def _apply_one_by_one(self, conn: Connection, batch: Batch) -> list[_Poison]:
        """Apply each event in its own savepoint; the ones PostgreSQL refuses go to the dead-letter topic."""
        refused: list[_Poison] = []
        for item in batch.events:
            try:
                async with conn.transaction():
                    await self.projection.apply(conn, Batch(events=[item], conflicts=[], now=batch.now))
            except asyncpg.PostgresError as error:
                if not _is_poison(error):
                    raise
                refused.append(
                    _Poison(
                        _as_record(item), f"apply:{error.sqlstate}:{type(error).__name__}", str(item.event.id)
                    )
                )
        if refused:
            # A refused event was not applied: forget its id so that a corrected retry is not a duplicate.
            await conn.execute(
                "DELETE FROM processed_events WHERE event_id = ANY($1::uuid[])",
                [UUID(poison.record_event_id) for poison in refused if poison.record_event_id],
            )
        if batch.conflicts:
            await self.projection.apply(conn, Batch(events=[], conflicts=batch.conflicts, now=batch.now))
        return refused

    async def _dead_letter(self, poison: _Poison) -> None:
        record = poison.record
        headers = [
            *list(record.headers or ()),
            ("dlq_reason", poison.reason.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_consumer", self.projection.name.encode()),
        ]
        async with asyncio.timeout(self._kafka_timeout):
            await self._dlq.send_and_wait(
                dead_letter_topic(record.topic), value=record.value, key=record.key, headers=headers
            )
        rule = poison.reason.split(":", 2)[0]
        metrics.DEAD_LETTERED.labels(self.projection.name, record.topic, rule).inc()
        event_id = dict(record.headers or ()).get("ce_id", b"").decode("utf-8", "replace") or None
        log.warning(
            "dead_lettered",
            projection=self.projection.name,
            event_id=event_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            rule=poison.reason,
            **_trace_fields(from_kafka_headers(record.headers)),
        )

    def _record_phases(self, started: float, phases: list[tuple[str, float]]) -> None:
        """Each phase's time (`phases`: each phase's name and the moment it ended), so that a slow batch
        shows where it was slow without a profiler (bench/results/2026-12-07-national-62074x1-end-to-end)."""
        name = self.projection.name
        previous = started
        for phase, ended in phases:
            metrics.BATCH_PHASE_SECONDS.labels(name, phase).observe(ended - previous)
            previous = ended

    def _record_metrics(
        self,
        fresh: list[ConsumedEvent],
        conflicts: list[Conflict],
        duplicates: int,
        size: int,
        started: float,
    ) -> None:
        name = self.projection.name
        # Once per type and batch, not per event: at thousands of events a second the per-event label
        # lookups and log calls were a tenth of a projection's time (bench/README.md).
        for event_type, count in Counter(item.event.type for item in fresh).items():
            metrics.EVENTS_APPLIED.labels(name, event_type).inc(count)
        if fresh:
            newest = max(item.event.time for item in fresh)
            if self.newest_event_time is None or newest > self.newest_event_time:
                self.newest_event_time = newest
            log.debug(
                "batch_applied",
                projection=name,
                events=len(fresh),
                first_offset=fresh[0].offset,
                last_offset=fresh[-1].offset,
            )
            if log.bind().is_enabled_for(logging.DEBUG):  # per event only when asked: it costs
                for item in fresh:
                    log.debug(
                        "event_applied",
                        projection=name,
                        event_id=str(item.event.id),
                        type=item.event.type,
                        topic=item.topic,
                        partition=item.partition,
                        offset=item.offset,
                        **_trace_fields(item.trace),
                    )
        if self.newest_event_time is not None:
            metrics.NEWEST_EVENT_TIME.labels(name).set(self.newest_event_time.timestamp())
        if duplicates:
            metrics.DUPLICATES_SKIPPED.labels(name).inc(duplicates)
        if conflicts:
            metrics.CONFLICTS_SEEN.labels(name).inc(len(conflicts))
        for conflict in conflicts:
            log.warning(
                "event_conflict",
                projection=name,
                event_id=str(conflict.later.event.id),
                type=conflict.later.event.type,
                partition=conflict.later.partition,
                offset=conflict.later.offset,
                first_partition=conflict.first_partition,
                first_offset=conflict.first_offset,
                **_trace_fields(conflict.later.trace),
            )
        metrics.BATCH_SIZE.labels(name).observe(size)
        metrics.BATCH_SECONDS.labels(name).observe(time.perf_counter() - started)

    async def _commit_to_kafka(self, next_offsets: dict[TopicPartition, int]) -> None:
        """For lag dashboards and the autoscaler only: PostgreSQL holds the offsets that count. So the group's
        offsets are committed at most once per `kafka_commit_interval_seconds` (a round trip to the
        coordinator per batch was a tenth of a live batch's time, bench/results/2026-12-07-national-62074x1-
        end-to-end/ANALYSIS.md), and what waits is committed by the lag watch, on a revocation and on stop."""
        consumer = self._consumer
        if not self._group_mode or consumer is None:
            return
        # Only what is still held: a partition revoked while the batch ran is its new holder's to commit.
        held = consumer.assignment()
        self._kafka_pending.update({tp: offset for tp, offset in next_offsets.items() if tp in held})
        if self._monotonic() - self._kafka_committed_at >= self._kafka_commit_interval:
            await self._flush_to_kafka()

    async def _flush_to_kafka(
        self,
        partitions: Sequence[TopicPartition] | None = None,
        *,
        wait: bool = True,
        within: float | None = None,
    ) -> None:
        """Commit to the group what waits for `partitions` (all by default; the ones still held), one
        commit at a time so that an older one never lands after a newer one. All of it within `within`
        seconds (default: the Kafka timeout), the wait for a commit in flight included; what failed or ran
        out of time waits again, unless newer offsets came meanwhile. `wait=False` (inside a rebalance):
        nothing at all when a commit is in flight, which may itself wait on the rebalance."""
        consumer = self._consumer
        if consumer is None or not self._group_mode or (not wait and self._kafka_committing.locked()):
            return
        owned: dict[TopicPartition, int] = {}
        try:
            async with asyncio.timeout(within or self._kafka_timeout), self._kafka_committing:
                chosen = list(self._kafka_pending) if partitions is None else partitions
                waiting = {tp: self._kafka_pending.pop(tp) for tp in chosen if tp in self._kafka_pending}
                owned = {tp: offset for tp, offset in waiting.items() if tp in consumer.assignment()}
                if not owned:
                    return
                self._kafka_committed_at = self._monotonic()
                await consumer.commit(owned)
        except (CommitFailedError, IllegalStateError, KafkaError, TimeoutError) as error:
            for tp, offset in owned.items():
                self._kafka_pending.setdefault(tp, offset)
            log.info("kafka_commit_skipped", projection=self.projection.name, error=type(error).__name__)

    # -- positions ---------------------------------------------------------------------------------

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        async with _transaction(self._pool) as conn:
            await conn.execute("SELECT set_config('search_path', $1, true)", self.schema)
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM projection_offsets WHERE consumer_group = $1",
                self.projection.name,
            )
        stored = {TopicPartition(row["topic"], row["partition"]): row["next_offset"] for row in rows}
        return {tp: stored.get(tp, 0) for tp in partitions}

    async def _seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        await self._seek(await self.stored_offsets(partitions))

    async def _seek(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self._consumer
        if consumer is None:  # let go while the offsets were read (the runner stops): nothing to seek
            return
        assigned = consumer.assignment()
        for tp, offset in offsets.items():
            if tp in assigned:
                consumer.seek(tp, offset)
                self._positions[tp] = offset
                if self._group_mode:
                    # The group's offset in Kafka follows PostgreSQL's even if no record comes (the holder
                    # before may have gone without committing it): the lag watch commits it.
                    self._kafka_pending[tp] = offset

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self._positions.pop(tp, None)
            self._kafka_pending.pop(tp, None)


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On every assignment, continue from the offsets PostgreSQL holds, never from Kafka's."""

    def __init__(self, runner: ProjectionRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._runner._flush_to_kafka(list(revoked), wait=False, within=KAFKA_COMMIT_WAIT_SECONDS)
        self._runner._forget(list(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        # A group may complete a rebalance while the runner stops its consumer: it let go of it already.
        if self._runner._consumer is not None:
            await self._runner._seek_to_stored(list(assigned))


def _tp(record: ConsumerRecord[bytes, bytes]) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def record_spans(
    tracer: Tracer, consumer_group: str, applied: Sequence[ConsumedEvent], started_ns: int, batch_size: int
) -> None:
    """A consumer span per applied record whose trace was sampled, a child of the producer span named in
    its headers, from the batch's start to its commit (a record's own share of the batch is not timed).

    Per record rather than one span per batch with a link to each record: the record's trace then shows
    every projection that applied it, and the cost follows the sampling chosen where the trace starts
    (unsampled records cost a flag test); a batch span would also lose links past the SDK's limit (128).
    """
    ended_ns = time.time_ns()
    for item in applied:
        if item.trace is None or not item.trace.sampled:
            continue
        span = tracer.start_span(
            f"process {item.topic}",
            context=item.trace.as_parent(),
            kind=SpanKind.CONSUMER,
            start_time=started_ns,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": item.topic,
                "messaging.destination.partition.id": str(item.partition),
                "messaging.kafka.offset": item.offset,
                "messaging.consumer.group.name": consumer_group,
                "messaging.message.id": str(item.event.id),
                "messaging.batch.message_count": batch_size,
                "cloudevents.event_id": str(item.event.id),
                "cloudevents.event_type": item.event.type,
            },
        )
        span.end(end_time=ended_ns)


def _trace_fields(trace: TraceContext | None) -> dict[str, str]:
    """The log fields that tie a consumer's line to the request that wrote the record."""
    return {"trace_id": trace.trace_id, "parent_span_id": trace.span_id} if trace else {}


def writes_refused(error: asyncpg.PostgresError) -> bool:
    """PostgreSQL takes no writes for now (read-only, out of disk, shut down): retry, never dead-letter."""
    sqlstate = getattr(error, "sqlstate", "") or ""
    return sqlstate in WRITES_REFUSED_SQLSTATES or sqlstate[:2] in WRITES_REFUSED_SQLSTATE_CLASSES


def _is_poison(error: asyncpg.PostgresError) -> bool:
    sqlstate = getattr(error, "sqlstate", "") or ""
    return sqlstate[:2] in POISON_SQLSTATE_CLASSES


def _as_record(item: ConsumedEvent) -> ConsumerRecord[bytes, bytes]:
    """Rebuild the wire form of an event the database refused, for the dead-letter topic."""
    return consumer_record(item.event, item.topic, item.partition, item.offset)


def consumer_record(event: Event, topic: str, partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    """An event as a consumer would have fetched it from `topic` at (partition, offset)."""
    wire = to_kafka_record(event)
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=wire.key,
        value=wire.value,
        checksum=None,
        serialized_key_size=len(wire.key),
        serialized_value_size=len(wire.value),
        headers=tuple(wire.headers),
    )
