"""The projection runtime through PostgreSQL's death: it survives kill -9 of the server, its lag is true
while it cannot apply anything, and an error it does not know ends it for its supervisor to restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from contracts.envelope import Event
from devstack.broker_security import ADMIN
from devstack.stack import Profile, postgres_down, postgres_kill, postgres_up
from devstack.tcp_proxy import TcpProxy
from plumbing.clock import SystemClock
from plumbing.kafka import KafkaConnection, create_consumer
from plumbing.postgres import Connection
from plumbing.projection import LAG_REFRESH_SECONDS, Batch, Projection
from plumbing.service import EXIT_CRASHED, ProjectionHost
from plumbing.settings import ProjectionSettings
from tests.support.counting import apply_counts, counting_projection
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import consultations, send_all
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
# A PostgreSQL of its own (the Kafka ports are never used): killing it touches no other test.
PG_OUTAGE = Profile("pg-outage", kafka_port=18192, controller_port=18193, postgres_port=18532)
COMMAND_TIMEOUT = 3.0
PROXY_PORT = 22434  # the chaos range (devstack/chaos.py leaves it free)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[str]:
    postgres_up(PG_OUTAGE)
    try:
        yield PG_OUTAGE.database_url
    finally:
        postgres_down(PG_OUTAGE)
        shutil.rmtree(PG_OUTAGE.home, ignore_errors=True)


@pytest.fixture
async def own_pool(own_postgres: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(own_postgres, min_size=0, max_size=2)
    assert pool is not None
    try:
        yield pool
    finally:
        pool.terminate()


def settings(infrastructure: Infrastructure, database_url: str) -> ProjectionSettings:
    return ProjectionSettings(
        **infrastructure.kafka_settings(ADMIN),  # the counting projection's groups are named per test
        database_url=database_url,
        batch_max_records=50,
        poll_timeout_ms=200,
        stall_after_seconds=1.0,
    )


async def applied_counts(pool: asyncpg.Pool, tag: str) -> dict[object, int]:
    try:
        rows = await pool.fetch(
            f'SELECT event_id, applications FROM "{tag}".applied WHERE advisor_id LIKE $1', f"{tag}-%"
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return {}
    return {row["event_id"]: row["applications"] for row in rows}


async def topic_end(producer: AIOKafkaProducer, kafka: KafkaConnection, topic: str) -> int:
    """Every record of the topic: what a new consumer group is behind by."""
    partitions = [TopicPartition(topic, number) for number in await producer.partitions_for(topic)]
    consumer = create_consumer(kafka)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends.values())


def liveness(host: ProjectionHost) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def probe() -> dict[str, Any]:
        return host.liveness()

    return probe


async def test_kill_9_of_postgresql_mid_batch_is_survived_with_true_lag_and_nothing_lost_or_doubled(
    infrastructure: Infrastructure,
    producer: AIOKafkaProducer,
    own_postgres: str,
    own_pool: asyncpg.Pool,
    tag: str,
) -> None:
    """Without the fix, the loop died with asyncpg's InternalClientError (MagicStack/asyncpg#784) in
    about half the kills, and the lag read 0 for as long as the database was down."""

    async def apply_slowly(conn: Connection, batch: Batch) -> None:
        """Every batch holds its transaction open a while, so the kill lands in the middle of one."""
        await conn.execute("SELECT pg_sleep(0.05)")
        await apply_counts(conn, batch)

    base = counting_projection(tag, tag)
    projection = Projection(base.name, base.schema, base.topics, base.migrations, apply_slowly)
    host = ProjectionHost(projection, settings(infrastructure, own_postgres), SystemClock())
    await host.start()
    sent: list[Event] = []
    try:
        for kill in range(3):
            batch = consultations(tag, 1000)
            sent += batch
            await send_all(producer, batch)
            await eventually(
                lambda: applied_counts(own_pool, tag),
                lambda found, done=len(sent) - len(batch): len(found) > done,
                what=f"progress before kill {kill + 1}",
            )
            postgres_kill(PG_OUTAGE)
            down = await eventually(
                liveness(host),
                lambda status: status.get("lag", 0) > 0 and status.get("stalled") is True,
                seconds=LAG_REFRESH_SECONDS * 3,
                what="lag and a stall reported while PostgreSQL is down",
            )
            assert not down.get("crashed"), down
            postgres_up(PG_OUTAGE)
            await eventually(
                lambda: applied_counts(own_pool, tag),
                lambda found, total=len(sent): len(found) >= total,
                seconds=90,
                what=f"catch-up after kill {kill + 1}",
            )
            assert not host.liveness().get("crashed"), host.liveness()
        found = await applied_counts(own_pool, tag)
        assert set(found) == {event.id for event in sent}
        assert {event_id: n for event_id, n in found.items() if n != 1} == {}
        await eventually(
            liveness(host),
            lambda status: status["lag"] == 0 and not status["stalled"],
            seconds=LAG_REFRESH_SECONDS * 3,
            what="lag back to 0",
        )
    finally:
        await host.stop()


async def test_lag_is_the_whole_backlog_before_anything_is_applied(
    infrastructure: Infrastructure, producer: AIOKafkaProducer, tag: str
) -> None:
    """A projection whose first batch does not finish: before the fix its lag read 0 all along."""
    gate = asyncio.Event()

    async def apply_when_let_through(conn: Connection, batch: Batch) -> None:
        await gate.wait()
        await apply_counts(conn, batch)

    await send_all(producer, consultations(tag, 30))
    base = counting_projection(tag, tag)
    projection = Projection(base.name, base.schema, base.topics, base.migrations, apply_when_let_through)
    host = ProjectionHost(projection, settings(infrastructure, infrastructure.database_url), SystemClock())
    await host.start()
    try:
        backlog = await topic_end(producer, infrastructure.kafka, "village-services")
        await eventually(
            liveness(host),
            lambda status: status["lag"] == backlog,
            seconds=LAG_REFRESH_SECONDS * 3,
            what=f"lag {backlog} while the first batch waits",
        )
        gate.set()
        await eventually(
            liveness(host),
            lambda status: status["lag"] == 0,
            seconds=120,
            what="lag 0 after catch-up",
        )
    finally:
        gate.set()
        await host.stop()


async def test_an_unexpected_error_ends_the_host_for_its_supervisor(
    infrastructure: Infrastructure, producer: AIOKafkaProducer, tag: str
) -> None:
    class Unforeseen(Exception):
        pass

    async def apply_fails(conn: Connection, batch: Batch) -> None:
        raise Unforeseen("a bug in the projection")

    ended = asyncio.Event()
    base = counting_projection(tag, tag)
    projection = Projection(base.name, base.schema, base.topics, base.migrations, apply_fails)
    host = ProjectionHost(
        projection, settings(infrastructure, infrastructure.database_url), SystemClock(), on_crash=ended.set
    )
    await send_all(producer, consultations(tag, 1))
    await host.start()
    try:
        await asyncio.wait_for(ended.wait(), timeout=60)
        assert host.crashed
        assert host.liveness()["crashed"] is True
    finally:
        await host.stop()


async def test_a_service_whose_projection_died_exits_with_70_and_says_what_to_check(
    infrastructure: Infrastructure, producer: AIOKafkaProducer, tag: str, tmp_path: Path
) -> None:
    """The ledger as bin/run-local runs it: before, it stayed up consuming nothing (/healthz crashed:true)."""
    log = tmp_path / "ledger.log"
    env = {
        **infrastructure.kafka_environment("ledger"),
        "VC_HTTP_PORT": "18801",
        "VC_FAILPOINTS": "error_mid_batch=1",
    }
    await send_all(producer, consultations(tag, 1))
    with log.open("wb") as out:
        ledger = subprocess.Popen(
            [sys.executable, "-m", "tests.support.failpoints", "ledger"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def exit_code() -> int | None:
            return ledger.poll()

        code = await eventually(exit_code, lambda found: found is not None, seconds=120, what="the exit")
    finally:
        if ledger.poll() is None:
            ledger.kill()
            ledger.wait()
    text = log.read_text()
    assert code == EXIT_CRASHED, text[-3000:]
    [crash] = [json.loads(line) for line in text.splitlines() if '"projection_crashed"' in line]
    assert crash["error"] == "tests.support.failpoints.FailpointError"
    assert crash["message"] == "failpoint error_mid_batch reached"
    assert "supervisor" in crash["check"]


async def dead_lettered(infrastructure: Infrastructure, tag: str) -> int:
    """Records of this test on the dead-letter topic."""
    consumer = create_consumer(infrastructure.kafka, enable_auto_commit=False)
    partitions = [TopicPartition("village-services.dlq", 0)]
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found = 0
        while await consumer.position(partitions[0]) < ends[partitions[0]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found += sum(1 for record in records if tag.encode() in (record.value or b""))
        return found
    finally:
        await consumer.stop()


async def test_a_database_that_refuses_writes_is_retried_unready_and_nothing_is_dropped(
    infrastructure: Infrastructure,
    producer: AIOKafkaProducer,
    own_postgres: str,
    own_pool: asyncpg.Pool,
    tag: str,
) -> None:
    """PostgreSQL read-only (a standby after a fail-over, or `default_transaction_read_only` set by an
    operator), its sessions ended: before the fix the loop died on ReadOnlySQLTransactionError, and a
    read-only session kept in the pool would have refused every batch after writes were allowed again."""
    host = ProjectionHost(
        counting_projection(tag, tag), settings(infrastructure, own_postgres), SystemClock()
    )
    await host.start()
    admin = await asyncpg.connect(own_postgres)
    sent = consultations(tag, 20)
    try:
        await send_all(producer, sent)
        await eventually(
            lambda: applied_counts(own_pool, tag), lambda found: len(found) == 20, what="the first records"
        )
        await admin.execute("ALTER DATABASE villagecounsel SET default_transaction_read_only = on")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        later = consultations(tag, 20)
        sent += later
        await send_all(producer, later)
        refused = await eventually(
            host.readiness, lambda checks: checks.get("applying") is False, what="/readyz: not applying"
        )
        assert refused["postgres"] is True  # reachable: `SELECT 1` is not enough to be ready
        assert not host.liveness().get("crashed"), host.liveness()
        await admin.execute("ALTER DATABASE villagecounsel RESET default_transaction_read_only")
        found = await eventually(
            lambda: applied_counts(own_pool, tag),
            lambda found: len(found) == len(sent),
            seconds=60,
            what="every record once writes are allowed again",
        )
        assert set(found) == {event.id for event in sent}
        assert {event_id: n for event_id, n in found.items() if n != 1} == {}
        await eventually(host.readiness, lambda checks: all(checks.values()), what="ready again")
        assert await dead_lettered(infrastructure, tag) == 0
    finally:
        await admin.execute("ALTER DATABASE villagecounsel RESET default_transaction_read_only")
        await admin.close()
        await host.stop()


async def test_half_open_database_connections_are_found_out_and_replaced(
    infrastructure: Infrastructure,
    producer: AIOKafkaProducer,
    own_postgres: str,
    own_pool: asyncpg.Pool,
    tag: str,
) -> None:
    """Every connection loses its server side while the projection's side stays open and hears nothing
    (devstack/tcp_proxy.py): before the fix the next batch waited on such a connection for good. A
    statement gets `database_command_timeout_seconds`, once: the ROLLBACK after it is not waited on too
    (which doubled the wait), nor another dead connection from the pool."""
    proxy = TcpProxy(PROXY_PORT, PG_OUTAGE.postgres_port)
    await proxy.start()
    through_proxy = own_postgres.replace(f":{PG_OUTAGE.postgres_port}/", f":{PROXY_PORT}/")
    host = ProjectionHost(
        counting_projection(tag, tag),
        settings(infrastructure, through_proxy).model_copy(
            update={"database_command_timeout_seconds": COMMAND_TIMEOUT}
        ),
        SystemClock(),
    )
    await host.start()
    sent = consultations(tag, 20)
    try:
        await send_all(producer, sent)
        await eventually(
            lambda: applied_counts(own_pool, tag), lambda found: len(found) == 20, what="the first records"
        )
        assert proxy.connections > 0
        proxy.half_open()
        later = consultations(tag, 20)
        sent += later
        await send_all(producer, later)
        found = await eventually(
            lambda: applied_counts(own_pool, tag),
            lambda found: len(found) == len(sent),
            seconds=COMMAND_TIMEOUT + 2,  # one timeout, a retry; not two timeouts
            what="every record, on new connections",
        )
        assert {event_id: n for event_id, n in found.items() if n != 1} == {}
        assert not host.liveness().get("crashed"), host.liveness()
    finally:
        await host.stop()
        await proxy.stop()
