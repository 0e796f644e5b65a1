"""The broker is closed (issue 12, finding 2): no connection without SCRAM over TLS, and each user writes and
reads only what contracts/access.py grants it. Against the devstack's real broker."""

from __future__ import annotations

import dataclasses
import logging
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from contracts.envelope import KafkaRecord, to_kafka_record
from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES, TopicSpec, with_dead_letters
from plumbing.kafka import (
    KafkaConnection,
    TopicsMissing,
    create_admin,
    create_consumer,
    create_producer,
    ensure_topics,
)
from tests.support.infrastructure import Infrastructure
from tests.support.samples import sample_event
from tests.support.waiting import eventually

pytestmark = pytest.mark.usefixtures("topics")

TOPIC_AUTHORIZATION_FAILED = 29


@pytest.fixture(autouse=True)
def closed_broker(infrastructure: Infrastructure) -> None:
    if not infrastructure.closed:
        pytest.skip("the broker given by the environment is not the devstack's closed one")


def forged_grade() -> KafkaRecord:
    """What the attacker of issue 12 sent: an `assessment.graded` with a subsidy nobody decided."""
    return to_kafka_record(sample_event("assessment.graded", uuid.uuid4(), subsidy_yuan="999999.00"))


def harmless(topic: str, tag: str) -> KafkaRecord:
    """A record a writer may store: of this test's own advisor, counted nowhere another test looks."""
    event_type = {VILLAGE_SERVICES: "lecture.held", ASSESSMENT: "compliance.alert_raised"}[topic]
    return to_kafka_record(sample_event(event_type, uuid.uuid4(), advisor_id=f"{tag}-probe"))


async def write(kafka: KafkaConnection, topic: str, record: KafkaRecord) -> int:
    """Produce one record to `topic` and wait for the broker's answer; its offset when stored."""
    producer = create_producer(kafka, "access-test", request_timeout_ms=5000)
    try:
        await producer.start()
        stored = await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
        return int(stored.offset)
    finally:
        await producer.stop()


async def refused_at_connection(kafka: KafkaConnection) -> None:
    producer = create_producer(kafka, "access-test", request_timeout_ms=5000)
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()


async def test_a_producer_without_tls_and_sasl_is_refused_and_with_tls_only_too(
    infrastructure: Infrastructure,
) -> None:
    await refused_at_connection(KafkaConnection(infrastructure.kafka_bootstrap))
    ca = infrastructure.kafka_as("intake").ca_file
    await refused_at_connection(KafkaConnection(infrastructure.kafka_bootstrap, "SSL", ca_file=ca))


async def test_a_wrong_password_is_refused_and_the_right_one_writes(
    infrastructure: Infrastructure, caplog: pytest.LogCaptureFixture, tag: str
) -> None:
    intake = infrastructure.kafka_as("intake")
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await refused_at_connection(dataclasses.replace(intake, password="guessed-" + uuid.uuid4().hex))
    assert "SaslAuthenticationFailed" in caplog.text
    assert await write(intake, VILLAGE_SERVICES, harmless(VILLAGE_SERVICES, tag)) >= 0


async def test_the_controller_port_takes_no_client_without_the_brokers_certificate(
    infrastructure: Infrastructure,
) -> None:
    assert infrastructure.profile is not None
    controller = f"127.0.0.1:{infrastructure.profile.controller_port}"
    intake = infrastructure.kafka_as("intake")
    await refused_at_connection(KafkaConnection(controller))
    await refused_at_connection(KafkaConnection(controller, "SSL", ca_file=intake.ca_file))
    await refused_at_connection(dataclasses.replace(intake, bootstrap_servers=controller))


@pytest.mark.parametrize(
    ("user", "topic"),
    [
        ("ledger", VILLAGE_SERVICES),
        ("ledger", ASSESSMENT),
        ("ledger", REGISTRY),
        ("intake", ASSESSMENT),
        ("dashboard", ASSESSMENT),
        ("assessment", VILLAGE_SERVICES),
    ],
)
async def test_a_user_cannot_write_a_topic_it_is_not_the_writer_of(
    infrastructure: Infrastructure, user: str, topic: str
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(infrastructure.kafka_as(user), topic, forged_grade())


async def test_an_integration_user_cannot_write_at_all(infrastructure: Infrastructure) -> None:
    """It writes nowhere, so the broker gives its idempotent producer not even a producer id."""
    with pytest.raises(ClusterAuthorizationFailedError):
        await write(infrastructure.kafka_as("integration-reader"), ASSESSMENT, forged_grade())


async def test_the_assessment_writes_its_topic_and_a_consumer_its_dead_letters(
    infrastructure: Infrastructure, tag: str
) -> None:
    assert await write(infrastructure.kafka_as("assessment"), ASSESSMENT, harmless(ASSESSMENT, tag)) >= 0
    assert await write(infrastructure.kafka_as("ledger"), "registry.dlq", forged_grade()) >= 0
    with pytest.raises(TopicAuthorizationFailedError):
        await write(infrastructure.kafka_as("ledger"), "assessment.dlq", forged_grade())


async def test_an_integration_user_reads_its_topic_in_its_own_groups_and_nothing_else(
    infrastructure: Infrastructure, producer: AIOKafkaProducer, tag: str
) -> None:
    marker = uuid.uuid4().hex.encode()
    record = harmless(ASSESSMENT, tag)
    await producer.send_and_wait(
        ASSESSMENT, record.value, key=record.key, headers=[*record.headers, ("t", marker)]
    )
    reader = infrastructure.kafka_as("integration-reader")
    consumer = create_consumer(
        reader, ASSESSMENT, group_id=f"integration-reader-{tag}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        seen: list[bytes] = []

        async def read_more() -> list[bytes]:
            batches = await consumer.getmany(timeout_ms=500)
            seen.extend(dict(record.headers).get("t", b"") for batch in batches.values() for record in batch)
            return seen

        await eventually(read_more, lambda found: marker in found, what="the reader sees the record")
    finally:
        await consumer.stop()

    foreign_group = create_consumer(reader, ASSESSMENT, group_id=f"ledger-{tag}")
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await foreign_group.start()
    finally:
        await foreign_group.stop()

    admin = create_admin(reader)
    await admin.start()
    try:
        described = await admin.describe_topics([VILLAGE_SERVICES, REGISTRY])
    finally:
        await admin.close()
    assert {item["topic"]: item["error_code"] for item in described} == {
        VILLAGE_SERVICES: TOPIC_AUTHORIZATION_FAILED,
        REGISTRY: TOPIC_AUTHORIZATION_FAILED,
    }


async def test_a_service_needs_no_create_right_for_its_existing_topics_and_names_a_missing_one(
    infrastructure: Infrastructure, tag: str
) -> None:
    ledger = infrastructure.kafka_as("ledger")
    await ensure_topics(ledger, with_dead_letters((VILLAGE_SERVICES, REGISTRY)))  # all exist: nothing to do
    missing = TopicSpec(f"{tag}.absent", partitions=1, key="-", description="-")
    with pytest.raises(TopicsMissing, match=rf"\['{tag}.absent'\] do not exist and user ledger may not"):
        await ensure_topics(ledger, [missing])
