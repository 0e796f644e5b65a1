"""Publishing to Kafka with every wait bounded, and the producer recreated when it cannot recover.

aiokafka's idempotent producer can wait forever while the broker is down and can stay broken after
an OutOfOrderSequenceNumber (aio-libs/aiokafka issues 1101, 1017): every publish has a deadline, and
after repeated failures, or one of the errors it does not come back from, the producer is replaced.
Replacements back off (0.5 s doubling to 8 s, until a record is stored again), so a broker outage costs a
handful of producers rather than one a second, and every replaced producer is stopped to its end.

A producer is replaced for failures only when they have lasted `recreate_after_seconds` (10 s, above the
9 s in which a cluster's controller fences a dead leader): through a leader's loss the producer's own
retries reach the new leader as soon as the metadata names it, while a new producer must bootstrap and get
a producer id first, and so came back later than the old one would have. Only the current producer's
outcomes count: the answers of requests still in flight on a replaced one say nothing about its successor
(before, a burst of them replaced each new producer at once and doubled the back-off to its end).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    IllegalStateError,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from contracts.envelope import H_ID, H_TYPE, KafkaRecord
from plumbing import tracing
from plumbing.kafka import KafkaConnection, create_producer
from plumbing.logs import get_logger
from services.intake import metrics

log = get_logger(__name__)

UNRECOVERABLE: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    ProducerFenced,
    ProducerClosed,
    IllegalStateError,
)
RESTART_BACKOFF_SECONDS = 0.5
RESTART_BACKOFF_MAX_SECONDS = 8.0
STOP_GRACE_SECONDS = 5.0
# A producer's start (bootstrap, then a producer id) is not cut off by a request's timeout: right after a
# broker's restart it can take longer than one, and each start abandoned at 5 s then waited out a doubled
# back-off before the next (a single broker's restart took over 15 s to come back from in the soak).
START_GIVE_UP_SECONDS = 60.0


@dataclass(frozen=True)
class Stored:
    partition: int
    offset: int


class NoProducer(KafkaError):  # type: ignore[misc]
    """No producer to send with: starting one failed, or the back-off after a failure has not passed."""


@dataclass(frozen=True)
class NotStored:
    reason: str  # a bounded token (an error's class name, or "timeout"): it is a metric's label


PublishResult = Stored | NotStored


class Publisher:
    def __init__(
        self,
        kafka: KafkaConnection,
        timeout_seconds: float,
        recreate_after_failures: int,
        tracer: Tracer,
        recreate_after_seconds: float = 10.0,
    ) -> None:
        self._kafka = kafka
        self._tracer = tracer
        self._timeout = timeout_seconds
        self._recreate_after = recreate_after_failures
        self._recreate_after_seconds = recreate_after_seconds
        self._producer: AIOKafkaProducer | None = None
        self._failures_in_a_row = 0
        self._failing_since: float | None = None
        self.producers_recreated = 0
        self._backoff = 0.0
        self._next_start_at = 0.0
        self.producers_created = 0
        self._closing: set[asyncio.Task[None]] = set()  # replaced producers being stopped
        self._starting: asyncio.Task[AIOKafkaProducer] | None = None

    async def start(self) -> None:
        try:
            await self._ready_producer(time.monotonic() + self._timeout)
        except KafkaError as error:
            log.warning("kafka_unavailable_at_start", error=type(error).__name__)

    async def stop(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await starting
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_producer(producer)
        if self._closing:
            await asyncio.wait(set(self._closing))

    def _hold_off(self) -> None:
        """No new producer before the back-off has passed; each failure in a row doubles it."""
        self._backoff = min(max(self._backoff * 2, RESTART_BACKOFF_SECONDS), RESTART_BACKOFF_MAX_SECONDS)
        self._next_start_at = time.monotonic() + self._backoff

    async def _ready_producer(self, deadline: float) -> AIOKafkaProducer:
        """The producer, or one being started: a request waits for the start until its own deadline, and
        the start goes on after that (up to START_GIVE_UP_SECONDS) for the requests that come next."""
        if self._producer is not None:
            return self._producer
        if self._starting is None:
            wait = self._next_start_at - time.monotonic()
            if wait > 0:
                raise NoProducer(f"Kafka did not answer a moment ago; next attempt in {wait:.1f} s")
            self._starting = asyncio.get_running_loop().create_task(self._start_producer())
            self._starting.add_done_callback(_retrieved)
        starting = self._starting
        await asyncio.wait({starting}, timeout=max(0.0, deadline - time.monotonic()))
        if not starting.done():
            raise NoProducer("a producer is still starting")
        if starting.cancelled():
            raise NoProducer("the producer's start was cancelled")
        return starting.result()

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = create_producer(
            self._kafka, "intake", request_timeout_ms=max(1000, int(self._timeout * 1000))
        )
        try:
            async with asyncio.timeout(START_GIVE_UP_SECONDS):
                await producer.start()
        except (TimeoutError, KafkaError, OSError) as error:
            metrics.PRODUCER_STARTS.labels("failed").inc()
            self._hold_off()
            self._starting = None
            await _stop_producer(producer)
            log.warning(
                "producer_not_started", error=type(error).__name__, next_attempt_seconds=self._backoff
            )
            raise NoProducer(f"cannot start a producer: {type(error).__name__}") from error
        except asyncio.CancelledError:
            await _stop_producer(producer)
            raise
        metrics.PRODUCER_STARTS.labels("started").inc()
        self._producer = producer
        self._starting = None
        self.producers_created += 1
        return producer

    async def publish_all(self, records: Sequence[KafkaRecord]) -> list[PublishResult]:
        """Send every record and wait, at most the timeout, for the broker's acknowledgements."""
        if not records:
            return []
        # One producer span per publish (a request's record, or an import's batch), a child of the request's
        # server span; its `traceparent` goes into every record's headers, so the consumers continue it.
        name, attributes = _producer_span(records)
        with self._tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as span:
            results = await self._publish_all(records)
            if any(isinstance(result, NotStored) for result in results):
                span.set_status(StatusCode.ERROR)
            return results

    async def _publish_all(self, records: Sequence[KafkaRecord]) -> list[PublishResult]:
        deadline = time.monotonic() + self._timeout
        try:
            producer = await self._ready_producer(deadline)
        except KafkaError as error:
            return [NotStored(type(error).__name__)] * len(records)
        pending: list[asyncio.Future[object] | BaseException] = []
        trace = tracing.kafka_headers()  # the producer span's traceparent
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                for record in records:
                    pending.append(
                        await producer.send(
                            record.topic,
                            value=record.value,
                            key=record.key,
                            headers=[*record.headers, *trace],
                        )
                    )
        except (TimeoutError, KafkaError) as error:
            pending.extend([error] * (len(records) - len(pending)))
        futures = [item for item in pending if isinstance(item, asyncio.Future)]
        if futures:
            await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        results: list[PublishResult] = []
        trouble: BaseException | None = None
        for item in pending:
            if isinstance(item, BaseException):
                results.append(NotStored(type(item).__name__))
                trouble = item
            elif not item.done():
                item.cancel()
                results.append(NotStored("timeout"))
                trouble = trouble or TimeoutError()
            elif item.exception() is not None:
                failure = item.exception()
                results.append(NotStored(type(failure).__name__))
                trouble = failure
            else:
                metadata = item.result()
                results.append(Stored(metadata.partition, metadata.offset))  # type: ignore[attr-defined]
        self._note_outcome(producer, trouble)
        return results

    def _note_outcome(self, producer: AIOKafkaProducer, trouble: BaseException | None) -> None:
        if producer is not self._producer:
            return  # a replaced producer's: its requests have had their answer
        if trouble is None:
            self._failures_in_a_row = 0
            self._failing_since = None
            self._backoff = 0.0
            return
        self._failures_in_a_row += 1
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        failing_for = now - self._failing_since
        if isinstance(trouble, UNRECOVERABLE) or (
            self._failures_in_a_row >= self._recreate_after and failing_for >= self._recreate_after_seconds
        ):
            log.warning(
                "producer_recreated",
                error=type(trouble).__name__,
                failures=self._failures_in_a_row,
                failing_seconds=round(failing_for, 1),
            )
            self.producers_recreated += 1
            self._failures_in_a_row = 0
            self._failing_since = None
            self._hold_off()
            old, self._producer = self._producer, None
            if old is not None:
                closing = asyncio.get_running_loop().create_task(_stop_producer(old))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)


def _retrieved(task: asyncio.Task[AIOKafkaProducer]) -> None:
    """A start's failure is answered to the requests that waited for it; if none did, it is read here so
    that asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _producer_span(records: Sequence[KafkaRecord]) -> tuple[str, dict[str, str | int]]:
    """The span's name and attributes: where the records went and, for one record, its event id and type
    (never the payload or the key)."""
    attributes: dict[str, str | int] = {"messaging.system": "kafka", "messaging.operation.type": "send"}
    topics = {record.topic for record in records}
    name = "send"
    if len(topics) == 1:
        attributes["messaging.destination.name"] = topic = next(iter(topics))
        name = f"send {topic}"
    if len(records) > 1:
        attributes["messaging.batch.message_count"] = len(records)
    else:
        headers = dict(records[0].headers)
        if H_ID in headers:
            attributes["messaging.message.id"] = attributes["cloudevents.event_id"] = headers[H_ID].decode()
        if H_TYPE in headers:
            attributes["cloudevents.event_type"] = headers[H_TYPE].decode()
    return name, attributes


async def _stop_producer(producer: AIOKafkaProducer) -> None:
    """Stop a producer and the tasks it started.

    aiokafka's stop() first waits for unsent batches to drain, which never happens while the broker is
    down; cut off by a timeout it left the sender task pending, and asyncio later reported "Task was
    destroyed but it is pending". Their requests have had their answer (503) already, so after a grace
    period the batches are failed, which lets stop() close the sender and the connections.
    """
    stopping = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=STOP_GRACE_SECONDS)
    if not done:
        _fail_batches(producer)
        done, _ = await asyncio.wait({stopping}, timeout=STOP_GRACE_SECONDS)
    if not done:
        stopping.cancel()
        log.warning("producer_stop_incomplete")
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        await _close_client(producer)
        return
    failure = stopping.exception()
    if failure is not None:
        # A batch failed above while its request was in flight leaves the accumulator's pending set when it
        # fails; when that request then times out, the sender re-queues it and removes it again: KeyError,
        # raised from stop() before it closes the client, so the connections and the metadata task stayed
        # open, one set for each producer replaced during an outage.
        log.warning("producer_stop_failed", error=type(failure).__name__)
        await _close_client(producer)


async def _close_client(producer: AIOKafkaProducer) -> None:
    """Close a producer's connections and its metadata task, whatever became of its stop()."""
    closing = asyncio.ensure_future(producer.client.close())
    done, _ = await asyncio.wait({closing}, timeout=STOP_GRACE_SECONDS)
    if not done:
        closing.cancel()
        log.warning("producer_client_close_incomplete")
    elif closing.exception() is not None:
        log.warning("producer_client_close_failed", error=type(closing.exception()).__name__)


def _fail_batches(producer: AIOKafkaProducer) -> None:
    """End a stopping producer's unsent batches (there is no public way to).

    Failing a batch also fails its drain waiter, a future that nothing awaits once the producer stops, and
    asyncio reported each as "Future exception was never retrieved: ProducerClosed" when it was collected:
    the waiters' failures are read here, as aiokafka reads the batch's own future's. And a sender that then
    ends with an error (the KeyError above) called back its own fail-all, which for an idempotent producer
    outside a transaction raised AttributeError in asyncio's log: the batches are failed here, so that
    callback is removed first.
    """
    sender = producer._sender
    if sender is not None and sender.sender_task is not None:
        sender.sender_task.remove_done_callback(sender._fail_all)
    accumulator = producer._message_accumulator
    batches = [batch for queue in accumulator._batches.values() for batch in queue]
    batches.extend(accumulator._pending_batches)
    accumulator.fail_all(ProducerClosed())
    for batch in batches:
        waiter = batch._drain_waiter
        if waiter.done() and not waiter.cancelled():
            waiter.exception()
