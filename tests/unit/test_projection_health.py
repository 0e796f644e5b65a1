"""A projection with lag and no progress for too long is unhealthy, so an orchestrator restarts it
(consumers have been seen stuck after a broker restart: aio-libs/aiokafka issues 1154, 1187, 625)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition
from fastapi import FastAPI
from prometheus_client import REGISTRY

from plumbing.clock import SystemClock
from plumbing.http import install_common
from plumbing.kafka import KafkaConnection
from plumbing.projection import BatchHooks, ProjectionRunner, _SeekToStoredOffsets, writes_refused
from tests.support.counting import counting_projection
from tests.support.failpoints import Failpoints

TP = TopicPartition("village-services", 0)


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def runner(seconds: Seconds) -> ProjectionRunner:
    return ProjectionRunner(
        counting_projection("health", "health"),
        pool=cast(Any, None),
        dlq_producer=cast(Any, None),
        kafka=KafkaConnection("unused:1"),
        clock=SystemClock(),
        stall_after_seconds=60,
        monotonic=seconds,
    )


def test_lag_without_progress_beyond_the_limit_is_a_stall() -> None:
    seconds = Seconds()
    projection = runner(seconds)
    projection.record_lag(TP, 5)
    seconds.now += 59
    assert not projection.stalled()
    seconds.now += 2
    assert projection.stalled()
    assert projection.status()["stalled"] is True


def test_no_lag_is_never_a_stall_however_long_it_is_quiet() -> None:
    seconds = Seconds()
    projection = runner(seconds)
    projection.record_lag(TP, 0)
    seconds.now += 10_000
    assert not projection.stalled()


async def test_healthz_fails_while_stalled_and_recovers() -> None:
    seconds = Seconds()
    projection = runner(seconds)
    app = FastAPI()

    async def ready() -> dict[str, bool]:
        return {"kafka": True}

    install_common(app, "health-test", ready, projection.status)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/healthz")).status_code == 200
        projection.record_lag(TP, 3)
        seconds.now += 120
        answer = await client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["lag"] == 3
        projection.record_lag(TP, 0)
        assert (await client.get("/healthz")).status_code == 200


def test_failpoints_parse_names_and_counts() -> None:
    points = Failpoints.parse("mid_batch=3, after_db_commit")
    assert points.remaining == {"mid_batch": 3, "after_db_commit": 1}
    points.hit("somewhere_else")
    assert points.remaining == {"mid_batch": 3, "after_db_commit": 1}
    points.mid_batch()
    assert points.remaining == {"mid_batch": 2, "after_db_commit": 1}


def test_the_runtime_carries_no_crash_points() -> None:
    """Issue 16: crash points are injected from the tests; the runtime's hooks do nothing, and nothing in
    plumbing or the services ends the process at a failpoint or reads VC_FAILPOINTS."""
    hooks = BatchHooks()
    hooks.mid_batch()
    hooks.after_commit()
    root = Path(__file__).resolve().parents[2]
    product = [*(root / "plumbing").rglob("*.py"), *(root / "services").rglob("*.py")]
    assert [
        str(path) for path in product if "_exit(" in path.read_text() or "FAILPOINT" in path.read_text()
    ] == []


class GroupConsumer:
    """The parts of a consumer the lag gauge asks: what it holds, the topic's partitions, their ends."""

    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends
        self.held: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return self.held

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.ends if tp.topic == topic}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions}


class OffsetsInPostgres(ProjectionRunner):
    """PostgreSQL's stored offsets as a plain dict; `down` makes reading them fail as in an outage."""

    stored: dict[TopicPartition, int]
    down = False

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if self.down:
            raise ConnectionRefusedError("PostgreSQL is down")
        return {tp: self.stored.get(tp, 0) for tp in partitions}


def lag_gauge(name: str, tp: TopicPartition) -> float | None:
    return REGISTRY.get_sample_value(
        "vc_projection_lag_records", {"projection": name, "topic": tp.topic, "partition": str(tp.partition)}
    )


async def test_lag_is_broker_end_minus_postgresql_before_assignment_in_an_outage_after_a_rebalance() -> None:
    first, second = TopicPartition("village-services", 0), TopicPartition("village-services", 1)
    consumer = GroupConsumer({first: 120, second: 80})
    projection = OffsetsInPostgres(
        counting_projection("lag-gauge", "lag_gauge"),
        pool=cast(Any, None),
        dlq_producer=cast(Any, None),
        kafka=KafkaConnection("unused:1"),
        clock=SystemClock(),
    )
    projection._consumer = cast(Any, consumer)
    projection.stored = {first: 100, second: 30}

    await projection.refresh_lag()  # nothing assigned yet: every partition of its topics
    assert projection.total_lag() == 20 + 50

    projection.down = True
    consumer.ends = {first: 150, second: 90}
    await projection.refresh_lag()  # the last offsets known from PostgreSQL against the broker's ends
    assert projection.total_lag() == 50 + 60

    projection.down = False
    consumer.held = {first}  # a rebalance gave the second partition to another pod
    await projection.refresh_lag()
    assert projection.total_lag() == 50
    assert lag_gauge("lag-gauge", first) == 50
    assert lag_gauge("lag-gauge", second) is None


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (asyncpg.ReadOnlySQLTransactionError("read-only"), True),  # a standby, or read-only by an operator
        (asyncpg.DiskFullError("no space left"), True),
        (asyncpg.OutOfMemoryError("out of memory"), True),
        (asyncpg.AdminShutdownError("terminating connection"), True),
        (asyncpg.QueryCanceledError("canceling statement"), True),
        (asyncpg.UniqueViolationError("duplicate key"), False),  # the batch's data: isolated, dead-lettered
        (asyncpg.InvalidTextRepresentationError("bad input"), False),
        (asyncpg.InsufficientPrivilegeError("permission denied"), False),  # a deployment error: crash
        (asyncpg.UndefinedTableError("no such table"), False),
    ],
)
def test_a_database_that_takes_no_writes_for_now_is_retried_not_dead_lettered(
    error: asyncpg.PostgresError, retried: bool
) -> None:
    assert writes_refused(error) is retried


async def test_an_assignment_that_arrives_while_the_runner_stops_is_let_go_quietly() -> None:
    """A group that completes a rebalance while the runner stops its consumer calls the rebalance listener
    after the runner let go of the consumer: nothing to seek any more. It raised, and aiokafka logged an
    ERROR for the listener at every such stop."""
    projection = runner(Seconds())
    listener = _SeekToStoredOffsets(projection)
    await listener.on_partitions_assigned([TP])
    await listener.on_partitions_revoked([TP])
