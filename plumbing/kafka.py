"""Kafka helpers: how every client connects (security included), the one producer and consumer factory,
admin clients, idempotent topic creation, bounded publishing."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.envelope import KafkaRecord
from contracts.topics import TOPICS, TopicSpec

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
TOPIC_ALREADY_EXISTS = 36  # Kafka's error code in a CreateTopics answer


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge a record in time; nothing may be reported as stored."""


class TopicsMissing(RuntimeError):
    """Topics a client needs do not exist and it may not create them; an administrator creates them."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the broker is and who we are to it: the one place a Kafka client's security options come from.

    PLAINTEXT is for an open broker (docker-compose); the devstack and the cluster take SASL_SSL with
    SCRAM-SHA-512, a user per service, and the CA that signed the broker's certificate."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if self.security_protocol.startswith("SASL_") and not (self.username and self.password):
            raise ValueError(f"Kafka {self.security_protocol} needs a user name and a password")

    @property
    def principal(self) -> str:
        """Who the broker will see: the SASL user, or ANONYMOUS."""
        return self.username if self.security_protocol.startswith("SASL_") and self.username else "ANONYMOUS"

    @cached_property
    def _ssl_context(self) -> ssl.SSLContext | None:
        # One context per connection settings, shared by every client made from them (not one per client).
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client (producer, consumer, admin) takes for this broker."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self._ssl_context is not None:
            options["ssl_context"] = self._ssl_context
        if self.security_protocol.startswith("SASL_"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return options


def create_producer(
    kafka: KafkaConnection, client_id: str, request_timeout_ms: int = 10_000
) -> AIOKafkaProducer:
    """Idempotent producer (acks=all): a retried send is written once per partition."""
    return AIOKafkaProducer(
        **kafka.client_options(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=request_timeout_ms,
        compression_type=None,
    )


def create_consumer(kafka: KafkaConnection, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of this broker; `options` are aiokafka's (group_id, offsets, batch sizes)."""
    return AIOKafkaConsumer(*topics, **kafka.client_options(), **options)


def create_admin(kafka: KafkaConnection, timeout_seconds: float = 30) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=int(timeout_seconds * 1000))


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
    kafka: KafkaConnection,
    specs: Iterable[TopicSpec] = TOPICS,
    replication_factor: int = 1,
    timeout_seconds: float = 30,
) -> None:
    """Create the topics that are missing, with their partitions and keep-forever retention.

    On a closed broker a service sees only the topics its ACLs name and may create none: when they all
    exist this is a no-op; a missing one raises TopicsMissing naming it (an administrator creates it)."""
    admin = create_admin(kafka, timeout_seconds)
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
                response = await admin.create_topics(missing, timeout_ms=int(timeout_seconds * 1000))
            except TopicAlreadyExistsError:
                return  # another process created them between our list and create: the goal is reached
            refused = [
                name for name, code, *_ in response.topic_errors if code not in (0, TOPIC_ALREADY_EXISTS)
            ]
            if refused:
                raise TopicsMissing(
                    f"Kafka topics {sorted(refused)} do not exist and user {kafka.principal} may not "
                    "create them: an administrator creates the topics (`python -m devstack up`, or the "
                    "cluster's KafkaTopics)"
                )
    finally:
        await admin.close()


async def kafka_reachable(kafka: KafkaConnection, timeout_seconds: float = 3) -> bool:
    admin = create_admin(kafka, timeout_seconds)
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
    kafka: KafkaConnection, topics: Iterable[str], timeout_seconds: float = 30
) -> list[TopicPartition]:
    """Every partition of the given topics; an error names a topic that does not exist."""
    admin = create_admin(kafka, timeout_seconds)
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
