"""Producing test events in bulk and reading a topic back, through the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition

from contracts.envelope import Event, to_kafka_record
from plumbing.kafka import KafkaConnection, create_admin, create_consumer, topic_partitions
from tests.support.samples import sample_event


def village(number: int) -> str:
    """Distinct, well-formed village codes: spreads records over every partition."""
    return f"370402{100 + number // 150:03d}{200 + number % 150:03d}"


def consultations(tag: str, count: int, villages: int = 60, first: int = 0) -> list[Event]:
    """`count` consultations of seven advisors in turn, the `first`-th onwards of a round of villages."""
    return [
        sample_event(
            "consultation.recorded",
            event_id=uuid.uuid4(),
            advisor_id=f"{tag}-a{i % 7}",
            recorded_by=f"{tag}-a{i % 7}",
            village_code=village(i % villages),
            person_times=1 + i % 4,
        )
        for i in range(first, first + count)
    ]


async def send_all(producer: AIOKafkaProducer, events: Sequence[Event]) -> None:
    futures = []
    for event in events:
        record = to_kafka_record(event)
        futures.append(
            await producer.send(record.topic, value=record.value, key=record.key, headers=record.headers)
        )
    await asyncio.gather(*futures)


async def read_topic(kafka: KafkaConnection, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything in a topic right now, from offset 0."""
    consumer = create_consumer(kafka, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


async def described_group(kafka: KafkaConnection, group: str) -> Any | None:
    """The group as its coordinator describes it (DescribeGroups: error, id, state, protocol type,
    protocol, members as (member id, client id, host, metadata, assignment)); None if it is not known."""
    admin = create_admin(kafka)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return next((described for described in response.groups if described[1] == group), None)


async def group_offsets(kafka: KafkaConnection, group: str) -> dict[TopicPartition, int]:
    """The offsets the group committed to Kafka (OffsetFetch), by partition."""
    admin = create_admin(kafka)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
