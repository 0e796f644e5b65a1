"""Kafka helpers: the one producer factory, idempotent topic creation, bounded publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.envelope import KafkaRecord
from contracts.topics import TOPICS, TopicSpec


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge a record in time; nothing may be reported as stored."""


def create_producer(
    bootstrap_servers: str, client_id: str, request_timeout_ms: int = 10_000
) -> AIOKafkaProducer:
    """Idempotent producer (acks=all): a retried send is written once per partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=request_timeout_ms,
        compression_type=None,
    )


async def publish(producer: AIOKafkaProducer, record: KafkaRecord, timeout_seconds: float) -> tuple[int, int]:
    """Send one record and wait for the broker's acknowledgement; return (partition, offset)."""
    try:
        async with asyncio.timeout(timeout_seconds):
            metadata = await producer.send_and_wait(
                record.topic, value=record.value, key=record.key, headers=record.headers
            )
    except (TimeoutError, KafkaError) as error:
        raise PublishFailed(f"Kafka did not acknowledge {record.topic}: {type(error).__name__}") from error
    return metadata.partition, metadata.offset


async def publish_many(
    producer: AIOKafkaProducer, records: Sequence[KafkaRecord], timeout_seconds: float
) -> list[tuple[int, int]]:
    """Send every record, then wait for all the broker's acknowledgements; (partition, offset) of each.
    Raises PublishFailed when any is not acknowledged in time (some may be stored: send them again, with
    the same ids)."""
    try:
        async with asyncio.timeout(timeout_seconds):
            futures = [
                await producer.send(record.topic, value=record.value, key=record.key, headers=record.headers)
                for record in records
            ]
            found = await asyncio.gather(*futures)
    except (TimeoutError, KafkaError) as error:
        raise PublishFailed(
            f"Kafka did not acknowledge {len(records)} records: {type(error).__name__}"
        ) from error
    return [(metadata.partition, metadata.offset) for metadata in found]


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec] = TOPICS,
    replication_factor: int = 1,
    timeout_seconds: float = 30,
) -> None:
    """Create the topics that are missing, with their partitions and keep-forever retention."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=spec.configs,
            )
            for spec in specs
            if spec.name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing, timeout_ms=int(timeout_seconds * 1000))
            except TopicAlreadyExistsError:
                pass  # another process created them between our list and create: the goal is reached
    finally:
        await admin.close()


async def kafka_reachable(bootstrap_servers: str, timeout_seconds: float = 3) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            await admin.describe_cluster()
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await admin.close()
    return True


async def topic_partitions(
    bootstrap_servers: str, topics: Iterable[str], timeout_seconds: float = 30
) -> list[TopicPartition]:
    """Every partition of the given topics; an error names a topic that does not exist."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    missing = [item["topic"] for item in described if item["error_code"] != 0]
    if missing:
        raise RuntimeError(f"topics {missing} do not exist: run the topic set-up (ensure_topics) first")
    return sorted(
        (
            TopicPartition(item["topic"], part["partition"])
            for item in described
            for part in item["partitions"]
        ),
        key=lambda tp: (tp.topic, tp.partition),
    )
