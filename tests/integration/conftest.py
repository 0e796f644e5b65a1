"""Session fixtures: the real Kafka broker and PostgreSQL, topics created, a unique tag per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from devstack.identity import IdentityProfile
from plumbing.kafka import create_producer, ensure_topics
from tests.support.chaos_rounds import Round, run_rounds
from tests.support.infrastructure import Infrastructure, provide_identity, provide_infrastructure


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide_infrastructure() as found:
        yield found


@pytest.fixture(scope="session")
def identity(infrastructure: Infrastructure) -> Iterator[IdentityProfile]:
    """The real OpenID Connect provider (oidc-provider) with the demo officials; after the devstack, so
    that the devstack's `down` is the one that stops what its `up` started."""
    with provide_identity() as found:
        yield found


@pytest.fixture(scope="session")
async def topics(infrastructure: Infrastructure) -> None:
    """Created by an administrator, as in the cluster (on the devstack `up` has made them already)."""
    await ensure_topics(infrastructure.kafka)


@pytest.fixture(scope="session")
async def producer(infrastructure: Infrastructure, topics: None) -> AsyncIterator[AIOKafkaProducer]:
    """The tests' injector: writes any record to any topic (the super user on the closed devstack)."""
    kafka_producer = create_producer(infrastructure.kafka, "tests")
    await kafka_producer.start()
    try:
        yield kafka_producer
    finally:
        await kafka_producer.stop()


@pytest.fixture(scope="session")
async def admin_pool(infrastructure: Infrastructure) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infrastructure.database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def chaos_rounds() -> dict[str, Round]:
    """The short chaos rounds, one broker and the cluster, side by side, once (support/chaos_rounds.py)."""
    return run_rounds()


@pytest.fixture
def tag() -> str:
    """A short unique tag: ids, consumer groups and schemas of one test never meet another's."""
    return "t" + uuid.uuid4().hex[:10]
