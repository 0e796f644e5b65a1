"""Publishing to Kafka with every wait bounded, and the producer recreated when it cannot recover.

aiokafka's idempotent producer can wait forever while the broker is down and can stay broken after
an OutOfOrderSequenceNumber (aio-libs/aiokafka issues 1101, 1017): every publish has a deadline, and
after repeated failures, or one of the errors it does not come back from, the producer is replaced.
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

from contracts.envelope import KafkaRecord
from plumbing.kafka import KafkaConnection, create_producer
from plumbing.logs import get_logger

log = get_logger(__name__)

UNRECOVERABLE: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    ProducerFenced,
    ProducerClosed,
    IllegalStateError,
)
RESTART_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class Stored:
    partition: int
    offset: int


@dataclass(frozen=True)
class NotStored:
    reason: str


PublishResult = Stored | NotStored


class Publisher:
    def __init__(self, kafka: KafkaConnection, timeout_seconds: float, recreate_after_failures: int) -> None:
        self._kafka = kafka
        self._timeout = timeout_seconds
        self._recreate_after = recreate_after_failures
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._failures_in_a_row = 0
        self._last_start_failure = 0.0
        self.producers_created = 0
        self._closing: set[asyncio.Task[None]] = set()  # replaced producers being stopped

    async def start(self) -> None:
        try:
            await self._ready_producer()
        except KafkaError as error:
            log.warning("kafka_unavailable_at_start", error=type(error).__name__)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() - self._last_start_failure < RESTART_BACKOFF_SECONDS:
                raise KafkaError("the producer failed to start a moment ago")
            producer = create_producer(
                self._kafka, "intake", request_timeout_ms=max(1000, int(self._timeout * 1000))
            )
            try:
                async with asyncio.timeout(self._timeout):
                    await producer.start()
            except (TimeoutError, KafkaError, OSError) as error:
                self._last_start_failure = time.monotonic()
                await _stop_quietly(producer)
                raise KafkaError(f"cannot start a producer: {type(error).__name__}") from error
            self._producer = producer
            self.producers_created += 1
            return producer

    async def publish_all(self, records: Sequence[KafkaRecord]) -> list[PublishResult]:
        """Send every record and wait, at most the timeout, for the broker's acknowledgements."""
        if not records:
            return []
        try:
            producer = await self._ready_producer()
        except KafkaError as error:
            return [NotStored(str(error))] * len(records)
        deadline = time.monotonic() + self._timeout
        pending: list[asyncio.Future[object] | BaseException] = []
        try:
            async with asyncio.timeout(self._timeout):
                for record in records:
                    pending.append(
                        await producer.send(
                            record.topic, value=record.value, key=record.key, headers=record.headers
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
        await self._note_outcome(trouble)
        return results

    async def _note_outcome(self, trouble: BaseException | None) -> None:
        if trouble is None:
            self._failures_in_a_row = 0
            return
        self._failures_in_a_row += 1
        if isinstance(trouble, UNRECOVERABLE) or self._failures_in_a_row >= self._recreate_after:
            log.warning("producer_recreated", error=type(trouble).__name__, failures=self._failures_in_a_row)
            self._failures_in_a_row = 0
            old, self._producer = self._producer, None
            if old is not None:
                closing = asyncio.get_running_loop().create_task(_stop_quietly(old))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout=5)
