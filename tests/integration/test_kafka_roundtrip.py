"""Every event type survives the real broker: model -> Kafka record -> broker -> record -> model."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from contracts.envelope import from_kafka_record
from contracts.events import PAYLOAD_BY_TYPE
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import read_topic, send_all
from tests.support.samples import sample_event


async def test_every_event_type_round_trips_through_the_broker(
    infrastructure: Infrastructure, producer: AIOKafkaProducer, tag: str
) -> None:
    sent = {}
    for event_type in sorted(PAYLOAD_BY_TYPE):
        event = sample_event(event_type, event_id=uuid.uuid4(), advisor_id=f"{tag}-adv")
        sent[event.id] = event
    await send_all(producer, list(sent.values()))
    sent_ids = {str(event_id) for event_id in sent}

    received = {}
    for topic in ("village-services", "registry", "assessment"):
        for record in await read_topic(infrastructure.kafka, topic):
            # Only this test's records: others' deliberately broken ones (poison, forged) share the topics.
            if dict(record.headers).get("ce_id", b"").decode() not in sent_ids:
                continue
            event = from_kafka_record(record.topic, record.key, record.value, list(record.headers))
            if event.id in sent:
                received[event.id] = event
                assert record.key == event.subject.encode()
    assert received == sent
