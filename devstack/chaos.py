"""The acknowledged-write audit (issue 14): load through intake, faults injected, and a check made apart
from the services of what happened to every record intake acknowledged, in every projection.

A stack of its own, fresh: one broker (devstack profile `chaos`: Kafka 22092, PostgreSQL 22432) or a
three-broker KRaft cluster (devstack/cluster.py: replication 3, `min.insync.replicas` 2, acks=all);
intake, the ledger, the assessment and the dashboard (22800-22803) as processes under bin/supervise, as
bin/run-local runs them, each reaching PostgreSQL and every broker through TCP proxies (22433; 22095)
that this tool controls (devstack/tcp_proxy.py). The soak and the cluster's short round run on ports of
their own (`Ports` and the profiles below), so that a soak can run beside the test command.

Per scenario a client sends consultations with ids of its own, for an advisor of the scenario's own,
retrying a 429/503 with the same id after Retry-After as the contract asks, and notes every id answered
202 with its partition and offset. A fault is injected a third of the way in; the load goes on at least
a third of its length after the fault's end.

Afterwards the checker reads the topic and each projection's tables itself (ledger.entries,
assessment.activities, dashboard.counted_records, dashboard.advisor_activity_total and dashboard.figures)
and counts, per scenario:
- acknowledged: ids answered 202;
- lost: acknowledged but not at its offset in Kafka, or in Kafka but missing from a projection once every
  projection caught up;
- doubled: an id applied twice anywhere: more than one ledger entry, or a dashboard figure above what its
  counted records add up to (the advisor's records in `advisor_activity_total`, the village's
  `consultations` in `figures`: every scenario's so far, so a doubling there shows in the scenarios after
  it too); assessment activities and counted records are keyed by the event id, so a second application
  there would surface as a dead-lettered record instead;
- dead-lettered: acknowledged ids on `village-services.dlq`;
- stuck: ids missing from a projection when the settle time (90 s) ran out;
- other 5xx; given up (no 202 within 60 s of retries); stored without a 202 (not an error: a retry's
  first attempt may have been stored); never sent: applied under the scenario's advisor though no
  request carried it (fails the scenario: nothing unacknowledged may appear);
- recovery: from the fault's end until intake stores a record again, every service answers /readyz 200,
  and each projection's offsets in PostgreSQL reach the broker's end offsets as they were one second after
  the fault's end (the true lag of that moment worked off while the load goes on);
- checks: what a scenario expects beyond the figures (a SIGTERM ends a service cleanly within 30 s;
  /readyz says 503 while PostgreSQL refuses writes; intake answers 429 when overloaded and its memory
  stays bounded; a rebuild finishes). A failed check fails the scenario.

A record stored in Kafka more than once (a retry after a 503 whose write had in fact succeeded) is
expected and not counted: each projection must apply it once, which is what "doubled" checks.

    python -m devstack.chaos [--seconds 20] [--rate 20] [--scenarios consumer-kill,...] [--rounds 1]
                             [--cluster] [--report bench/results/chaos.md]
    python -m devstack.chaos --short-cluster   (the cluster's short round: tests/integration)
    python -m devstack.chaos --soak [--rounds N]   (every scenario, the cluster's too; the report in
                                                    bench/results/chaos-soak.md unless --report)

Kafka's proxy sits in front of a second listener of each broker (PROXIED, 22094) that advertises the
proxy's port (22095): a broker tells its clients where to connect, and its main listener would send them
around the proxy. On the cluster the network faults (`leader-latency`, `-reset`, `-hang`, `-half-open`)
act on the proxy in front of the broker that leads the partition the load writes to: the services lose
their path to the leader while the brokers, replicating over their main listeners, still reach it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.topics import TOPICS, dead_letter_topic
from devstack.broker_security import ADMIN
from devstack.cluster import ClusterProfile, cluster_down, cluster_up, node_kill, node_stop, node_up
from devstack.stack import ROOT, Profile, _say, down, kafka_kill, kafka_up, postgres_kill, postgres_up, up
from devstack.tcp_proxy import TcpProxy
from plumbing.kafka import KafkaConnection, create_admin, create_consumer, topic_partitions

CONSUMERS = ("ledger", "assessment", "dashboard")


@dataclass(frozen=True)
class Ports:
    """Where an audit's services and its PostgreSQL proxy listen: intake at `base`, the consumers at
    base+1..3, their extra replicas (rebalances) at base+11..13, the proxy in front of PostgreSQL at
    `postgres_proxy`."""

    base: int
    postgres_proxy: int

    @property
    def intake(self) -> int:
        return self.base

    @property
    def consumers(self) -> dict[str, int]:
        return {name: self.base + 1 + n for n, name in enumerate(CONSUMERS)}

    @property
    def replicas(self) -> dict[str, int]:
        return {name: self.base + 11 + n for n, name in enumerate(CONSUMERS)}


# Four stacks, each on ports of its own in the chaos range (22xxx; test_projection_outages.py's proxy
# takes 22434): the short round and the soak never meet, so a soak can run beside the test command.
CHAOS = Profile(  # the short round's single broker, Kafka's proxy at 22095 in front of its PROXIED 22094
    "chaos", kafka_port=22092, controller_port=22093, postgres_port=22432, kafka_proxied=(22094, 22095)
)
CHAOS_PORTS = Ports(base=22800, postgres_proxy=22433)
SOAK_CHAOS = Profile(
    "chaos-soak", kafka_port=22062, controller_port=22063, postgres_port=22462, kafka_proxied=(22064, 22065)
)
SOAK_CHAOS_PORTS = Ports(base=22860, postgres_proxy=22463)
SHORT_CLUSTER = ClusterProfile(  # the short round's three brokers (tests/integration/test_chaos_cluster.py)
    "chaos-cluster-short",
    kafka_ports=(22292, 22293, 22294),
    controller_ports=(22295, 22296, 22297),
    postgres_port=22632,
    kafka_proxied=((22282, 22285), (22283, 22286), (22284, 22287)),
)
SHORT_CLUSTER_PORTS = Ports(base=22820, postgres_proxy=22633)
CLUSTER = ClusterProfile(  # the soak's three brokers
    "chaos-cluster",
    kafka_ports=(22192, 22193, 22194),
    controller_ports=(22195, 22196, 22197),
    postgres_port=22532,
    kafka_proxied=((22182, 22185), (22183, 22186), (22184, 22187)),
)
CLUSTER_PORTS = Ports(base=22840, postgres_proxy=22533)
SOAK = (2, 15.0, 20.0)  # rounds, seconds of load per scenario, records a second: about 25 minutes
TOPIC = "village-services"
VILLAGE = "370402105201"
SETTLE_SECONDS = 90.0
RECOVERY_TARGET_SECONDS = 15.0
STOP_LIMIT_SECONDS = 30.0
# After its graceful shutdown uvicorn (0.29 and later) raises the SIGTERM it caught again, so a service
# stopped cleanly ends with 128 + 15, as docker and Kubernetes expect; 0 if it was stopped otherwise.
CLEAN_EXITS = (0, 128 + signal.SIGTERM)
OUTAGE_SECONDS = 5.0
LOAD_CAP_SECONDS = 60.0  # the longest the load goes on past its seconds waiting for a fault's end
INTAKE_MAX_IN_FLIGHT = 32  # low, so that the overload scenario passes it without melting a 2-core machine
INTAKE_MEMORY_LIMIT_MB = 150.0  # growth of intake's resident memory allowed under overload


@dataclass
class Tally:
    """What the client saw: every id answered 202 with where Kafka put it, and what else came back."""

    acknowledged: dict[str, tuple[int, int]] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)
    unavailable: int = 0
    other_5xx: int = 0
    connection_errors: int = 0


@dataclass
class Fault:
    """What a fault did, and what the scenario expected of the services while it lasted."""

    injected: int = 0
    failed_checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def expect(self, condition: bool, failure: str) -> None:
        if not condition:
            self.failed_checks.append(failure)


@dataclass(frozen=True)
class Outcome:
    scenario: str
    faults: int
    acknowledged: int
    lost: int
    doubled: int
    dead_lettered: int
    stuck: int
    unavailable: int
    other_5xx: int
    given_up: int
    stored_without_202: int
    recovery_seconds: float | None
    # applied by a projection under the scenario's advisor, though the client never sent it
    never_sent: int = 0
    failed_checks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    missing_by_projection: tuple[tuple[str, int], ...] = ()

    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.doubled == 0
            and self.dead_lettered == 0
            and self.stuck == 0
            and self.other_5xx == 0
            and self.given_up == 0
            and self.never_sent == 0
            and not self.failed_checks
            and self.recovery_seconds is not None
            and self.recovery_seconds <= RECOVERY_TARGET_SECONDS
        )


SERVICE_SETTINGS = {
    "VC_LOG_LEVEL": "WARNING",
    "VC_STALL_AFTER_SECONDS": "30",
    "VC_RETRY_AFTER_SECONDS": "1",
    "VC_MAX_IN_FLIGHT_REQUESTS": str(INTAKE_MAX_IN_FLIGHT),
}


@dataclass(frozen=True)
class Stack:
    """Where an audit runs: the single broker or the three-broker cluster, each service reaching Kafka and
    PostgreSQL through TCP proxies that the audit controls (one in front of each broker)."""

    ports: Ports
    single: Profile | None = None
    cluster: ClusterProfile | None = None

    @property
    def _profile(self) -> Profile:
        return self.cluster.postgres if self.cluster is not None else self.profile

    @property
    def profile(self) -> Profile:
        if self.single is None:
            raise ValueError("a single-broker fault on the cluster")
        return self.single

    @property
    def database_url(self) -> str:
        return self._profile.database_url

    @property
    def admin(self) -> KafkaConnection:
        return (self.cluster or self.profile).kafka_as(ADMIN)

    @property
    def home(self) -> Path:
        return self._profile.home

    @property
    def kafka_proxies(self) -> dict[int, tuple[int, int]]:
        """Per broker (node id): the proxy's port and the broker's PROXIED listener it forwards to."""
        if self.cluster is not None:
            return {
                node: (proxy, listener)
                for node, (listener, proxy) in zip(
                    self.cluster.nodes, self.cluster.kafka_proxied, strict=True
                )
            }
        listener, proxy = self.profile.kafka_proxied or (0, 0)
        return {1: (proxy, listener)}

    def environment(self, name: str) -> dict[str, str]:
        """How a service is configured: its own Kafka user and PostgreSQL role, Kafka and PostgreSQL through
        the proxies (on the cluster every broker's proxy in the bootstrap list, replication 3)."""
        environment = {
            **os.environ,
            **SERVICE_SETTINGS,
            **(self.cluster or self.profile).environment(name),
        }
        postgres_port = self._profile.postgres_port
        environment["DATABASE_URL"] = environment["DATABASE_URL"].replace(
            f":{postgres_port}/", f":{self.ports.postgres_proxy}/"
        )
        environment["KAFKA_BOOTSTRAP_SERVERS"] = ",".join(
            f"127.0.0.1:{proxy}" for proxy, _ in self.kafka_proxies.values()
        )
        return environment


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def resident_mb(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Services:
    """Intake and the three consumers, each under bin/supervise, so a killed one comes back as it would
    locally; extra consumer replicas on their own, for rebalances."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._log_dir = stack.home / "services"
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._supervisors: dict[str, subprocess.Popen[bytes]] = {}
        self._replicas: dict[str, subprocess.Popen[bytes]] = {}

    def _log(self, name: str) -> Path:
        return self._log_dir / f"{name}.log"

    def start(self) -> None:
        for name, port in (("intake", self._stack.ports.intake), *self._stack.ports.consumers.items()):
            with self._log(name).open("ab") as log:
                self._supervisors[name] = subprocess.Popen(
                    [str(ROOT / "bin" / "supervise"), sys.executable, "-m", f"services.{name}"],
                    env={**self._stack.environment(name), "VC_HTTP_PORT": str(port)},
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def service_pid(self, name: str) -> int | None:
        """The service's own process (the supervisor's child), None while the supervisor restarts it."""
        children = _children(self._supervisors[name].pid)
        return children[0] if children else None

    def kill_9(self, name: str) -> None:
        """SIGKILL the service itself, not its supervisor (which starts it again after 2 s)."""
        pid = self.service_pid(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def sigterm(self, name: str) -> tuple[float | None, int | None]:
        """SIGTERM the service itself; the seconds it took to end (None: not within the limit) and its
        exit code as its supervisor logged it."""
        pid = self.service_pid(name)
        if pid is None:
            return None, None
        log = self._log(name)
        logged = log.stat().st_size
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while _alive(pid):
            if time.monotonic() - started > STOP_LIMIT_SECONDS:
                return None, None
            await asyncio.sleep(0.1)
        took = time.monotonic() - started
        for _ in range(50):
            with log.open("rb") as text:
                text.seek(logged)
                for line in text.read().decode(errors="replace").splitlines():
                    if "[supervise]" in line and "exited with code" in line:
                        return took, int(line.rsplit("exited with code", 1)[1].split(";")[0])
            await asyncio.sleep(0.1)
        return took, None

    def start_replica(self, name: str) -> None:
        with self._log(f"{name}-replica").open("ab") as log:
            self._replicas[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                env={**self._stack.environment(name), "VC_HTTP_PORT": str(self._stack.ports.replicas[name])},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def stop_replica(self, name: str) -> tuple[float | None, int | None]:
        process = self._replicas.pop(name)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        while process.poll() is None:
            if time.monotonic() - started > STOP_LIMIT_SECONDS:
                process.kill()
                process.wait()
                return None, None
            await asyncio.sleep(0.1)
        return time.monotonic() - started, process.returncode

    def stop(self) -> None:
        processes = [*self._supervisors.values(), *self._replicas.values()]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def advisor_token(advisor: str) -> str:
    from plumbing.auth import Role, mint_token
    from services.intake.settings import IntakeSettings

    return mint_token(
        IntakeSettings(), subject=advisor, role=Role.advisor, region_code="370402", now=datetime.now(UTC)
    )


def consultation(record_id: str, advisor: str) -> dict[str, object]:
    return {
        "id": record_id,
        "advisor_id": advisor,
        "village_code": VILLAGE,
        "occurred_at": datetime.now(UTC).isoformat(),
        "channel": "phone",
        "person_times": 1,
        "topic": "land",
    }


class LoadClient:
    """Sends records with ids of its own, each retried with its id until 202 (at most 60 s)."""

    def __init__(self, client: httpx.AsyncClient, advisor: str, tally: Tally) -> None:
        self.client = client
        self._advisor = advisor
        self._headers = {"Authorization": f"Bearer {advisor_token(advisor)}"}
        self.tally = tally

    async def one(self) -> None:
        tally = self.tally
        record_id = str(uuid.uuid4())
        tally.sent.add(record_id)
        body = consultation(record_id, self._advisor)
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            try:
                answer = await self.client.post(
                    "/v1/consultations", json=body, headers=self._headers, timeout=15
                )
            except httpx.TransportError:
                tally.connection_errors += 1
                await asyncio.sleep(1)
                continue
            if answer.status_code == 202:
                found = answer.json()
                tally.acknowledged[record_id] = (found["partition"], found["offset"])
                return
            if answer.status_code in (429, 503) and "retry-after" in answer.headers:
                tally.unavailable += 1
                await asyncio.sleep(float(answer.headers["retry-after"]))
                continue
            if answer.status_code >= 500:
                tally.other_5xx += 1
                await asyncio.sleep(1)
                continue
            raise RuntimeError(f"intake refused a chaos record: {answer.status_code} {answer.text[:300]}")
        tally.given_up.add(record_id)

    async def probe(self) -> bool:
        """One record, one attempt: whether intake stored it (202). It is checked like any other; one
        answered 503 that was stored after all counts as "stored without a 202"."""
        record_id = str(uuid.uuid4())
        self.tally.sent.add(record_id)
        try:
            answer = await self.client.post(
                "/v1/consultations",
                json=consultation(record_id, self._advisor),
                headers=self._headers,
                timeout=5,
            )
        except httpx.TransportError:
            return False
        if answer.status_code == 202:
            found = answer.json()
            self.tally.acknowledged[record_id] = (found["partition"], found["offset"])
            return True
        if answer.status_code >= 500 and answer.status_code != 503:
            self.tally.other_5xx += 1
        return False

    async def steady(self, rate: float, seconds: float, fault_over: asyncio.Event | None = None) -> None:
        """`rate` new records a second for `seconds`, and with `fault_over` at least until a third of
        `seconds` after it is set (a fault that outlasts the load still meets records)."""
        in_flight: set[asyncio.Task[None]] = set()
        ends = time.monotonic() + seconds
        tail_set = False
        # Never past LOAD_CAP_SECONDS after `seconds`: a load that waited for a fault that never ends
        # would never stop (a rebuild under steady load was one until its catch-up stopped chasing the
        # topics' end, issue 14).
        cap = ends + LOAD_CAP_SECONDS
        while time.monotonic() < ends or (
            fault_over is not None and not fault_over.is_set() and time.monotonic() < cap
        ):
            if fault_over is not None and fault_over.is_set() and not tail_set:
                ends, tail_set = max(ends, time.monotonic() + seconds / 3), True
            task = asyncio.create_task(self.one())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            await asyncio.sleep(random.expovariate(rate))
        if in_flight:
            await asyncio.gather(*in_flight)

    async def flood(self, senders: int, seconds: float) -> None:
        """`senders` clients sending back to back for `seconds`: far beyond what intake takes at once."""

        async def sender(ends: float) -> None:
            while time.monotonic() < ends:
                await self.one()

        ends = time.monotonic() + seconds
        await asyncio.gather(*(sender(ends) for _ in range(senders)))


async def projection_offsets(
    connection: asyncpg.Connection | None, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> tuple[dict[int, int], dict[str, dict[int, int]]] | None:
    """The broker's end offsets, and each projection's offsets in PostgreSQL, by partition; None when
    either does not answer."""
    if connection is None:
        return None
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), timeout=3)
        stored: dict[str, dict[int, int]] = {}
        for name in CONSUMERS:
            rows = await asyncio.wait_for(
                connection.fetch(
                    f"SELECT partition, next_offset FROM {name}.projection_offsets "  # noqa: S608 - our names
                    "WHERE consumer_group = $1 AND topic = $2",
                    name,
                    TOPIC,
                ),
                timeout=3,
            )
            stored[name] = {row["partition"]: row["next_offset"] for row in rows}
    except (OSError, TimeoutError, KafkaError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    return {tp.partition: end for tp, end in ends.items()}, stored


async def all_ready(client: httpx.AsyncClient, ports: Ports) -> bool:
    for port in (ports.intake, *ports.consumers.values()):
        try:
            answer = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        except httpx.TransportError:
            return False
        if answer.status_code != 200:
            return False
    return True


async def recovered_after(
    stack: Stack,
    fault_ended: float,
    load: LoadClient,
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    deadline: float,
    *,
    store: bool,
) -> float | None:
    """Seconds from the fault's end until every service is ready and every projection has applied what
    the topic held one second after the fault's end (so a consumer killed while it was keeping up is not
    "recovered" before it is back and applying); with `store`, also until intake has stored a record
    again (a real one, counted like the load's: `?dry_run=true` never reaches Kafka, so it said intake
    was back while its producer still hung on a dead connection)."""
    connection: asyncpg.Connection | None = None
    target: dict[int, int] | None = None
    stored_again = not store
    try:
        while time.monotonic() < deadline:
            if connection is None or connection.is_closed():
                connection = None
                with contextlib.suppress(
                    OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError
                ):
                    connection = await asyncio.wait_for(asyncpg.connect(stack.database_url), timeout=3)
            if not stored_again:
                stored_again = await load.probe()
            ready = stored_again and await all_ready(load.client, stack.ports)
            found = await projection_offsets(connection, consumer, partitions)
            if found is not None and target is None and time.monotonic() >= fault_ended + 1:
                target = found[0]
            if ready and found is not None and target is not None:
                ends = target
                if all(
                    stored.get(partition, 0) >= end
                    for stored in found[1].values()
                    for partition, end in ends.items()
                ):
                    return time.monotonic() - fault_ended
            await asyncio.sleep(0.5)
        return None
    finally:
        if connection is not None:
            connection.terminate()


async def read_topic(stack: Stack, topic: str) -> dict[tuple[int, int], str]:
    """(partition, offset) → ce_id of every record of the topic, read to its end."""
    consumer = create_consumer(stack.admin, enable_auto_commit=False, isolation_level="read_committed")
    partitions = await topic_partitions(stack.admin, [topic])
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[tuple[int, int], str] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    found[(tp.partition, record.offset)] = dict(record.headers).get("ce_id", b"").decode()
        return found
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Projected:
    """What the projections hold for one advisor's records, read from their tables."""

    applied: dict[str, dict[str, int]]  # projection → event id → times applied
    advisor_activity: int  # the dashboard's count of the advisor's records in the village, by month
    counted: int  # the dashboard's counted records of the advisor
    village_figure: float  # the dashboard's `consultations` of the village, by month
    village_counted: int  # the dashboard's counted consultations in the village

    def figures_doubled(self) -> int:
        return max(0, self.advisor_activity - self.counted) + max(
            0, round(self.village_figure) - self.village_counted
        )


MONTHS = r"^\d{4}-\d{2}$"


async def read_projections(stack: Stack, advisor: str) -> Projected:
    connection = await asyncpg.connect(stack.database_url)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            ledger = await connection.fetch(
                "SELECT event_id::text AS id, count(*) AS n FROM ledger.entries "
                "WHERE advisor_id = $1 GROUP BY 1",
                advisor,
            )
            assessment = await connection.fetch(
                "SELECT event_id::text AS id, count(*) AS n FROM assessment.activities "
                "WHERE advisor_id = $1 GROUP BY 1",
                advisor,
            )
            dashboard = await connection.fetch(
                "SELECT event_id::text AS id, count(*) AS n FROM dashboard.counted_records "
                "WHERE advisor_id = $1 AND NOT voided GROUP BY 1",
                advisor,
            )
            activity = await connection.fetchval(
                "SELECT coalesce(sum(records), 0) FROM dashboard.advisor_activity_total "
                "WHERE region_code = $1 AND advisor_id = $2 AND period ~ $3",
                VILLAGE,
                advisor,
                MONTHS,
            )
            figure = await connection.fetchval(
                "SELECT coalesce(sum(consultations), 0) FROM dashboard.figures "
                "WHERE region_code = $1 AND period ~ $2",
                VILLAGE,
                MONTHS,
            )
            village_counted = await connection.fetchval(
                "SELECT count(*) FROM dashboard.counted_records "
                "WHERE village_code = $1 AND NOT voided AND figures ? 'consultations'",
                VILLAGE,
            )
    finally:
        await connection.close()
    return Projected(
        applied={
            "ledger": {row["id"]: row["n"] for row in ledger},
            "assessment": {row["id"]: row["n"] for row in assessment},
            "dashboard": {row["id"]: row["n"] for row in dashboard},
        },
        advisor_activity=int(activity),
        counted=len(dashboard),
        village_figure=float(figure),
        village_counted=int(village_counted),
    )


async def check(
    stack: Stack,
    tally: Tally,
    advisor: str,
    scenario: str,
    fault: Fault,
    recovery: float | None,
    caught_up: bool,
) -> Outcome:
    in_kafka = await read_topic(stack, TOPIC)
    dead_letters = set((await read_topic(stack, dead_letter_topic(TOPIC))).values())
    projected = await read_projections(stack, advisor)
    return outcome_of(scenario, tally, fault, in_kafka, dead_letters, projected, recovery, caught_up)


def outcome_of(
    scenario: str,
    tally: Tally,
    fault: Fault,
    in_kafka: dict[tuple[int, int], str],
    dead_letters: set[str],
    projected: Projected,
    recovery: float | None,
    caught_up: bool,
) -> Outcome:
    """The figures of a scenario from what the client saw and what Kafka and the projections hold."""
    ids_in_kafka = set(in_kafka.values())
    acknowledged = set(tally.acknowledged)
    misplaced = {i for i, where in tally.acknowledged.items() if in_kafka.get(where) != i}
    missing = {name: acknowledged - set(applied) for name, applied in projected.applied.items()}
    not_applied = set().union(*missing.values())
    doubled = {i for applied in projected.applied.values() for i, n in applied.items() if n > 1}
    stored_anywhere = set().union(*(set(applied) for applied in projected.applied.values()))
    return Outcome(
        scenario=scenario,
        faults=fault.injected,
        acknowledged=len(acknowledged),
        lost=len(misplaced | (not_applied & ids_in_kafka if caught_up else set())),
        doubled=len(doubled) + projected.figures_doubled(),
        dead_lettered=len(dead_letters & acknowledged),
        stuck=0 if caught_up else len(not_applied),
        unavailable=tally.unavailable,
        other_5xx=tally.other_5xx,
        given_up=len(tally.given_up),
        stored_without_202=len((tally.sent - acknowledged) & stored_anywhere),
        recovery_seconds=recovery,
        never_sent=len(stored_anywhere - tally.sent),
        failed_checks=tuple(fault.failed_checks),
        notes=tuple(fault.notes),
        missing_by_projection=tuple((name, len(ids)) for name, ids in missing.items() if ids),
    )


@dataclass
class Chaos:
    """What a fault acts on."""

    stack: Stack
    services: Services
    proxies: Proxies
    http: httpx.AsyncClient
    load: LoadClient
    leader_kills: int = 3


@dataclass(frozen=True)
class Proxies:
    """Between every service and PostgreSQL, and between every service and each broker (by node id)."""

    postgres: TcpProxy
    kafka: dict[int, TcpProxy]

    @classmethod
    def of(cls, stack: Stack) -> Proxies:
        profile = stack.cluster.postgres if stack.cluster is not None else stack.profile
        return cls(
            TcpProxy(stack.ports.postgres_proxy, profile.postgres_port),
            {node: TcpProxy(port, target) for node, (port, target) in stack.kafka_proxies.items()},
        )

    @property
    def all(self) -> list[TcpProxy]:
        return [self.postgres, *self.kafka.values()]


FaultAction = Callable[[Chaos, Fault], Awaitable[None]]


async def consumer_kill(chaos: Chaos, fault: Fault) -> None:
    for name in CONSUMERS:
        chaos.services.kill_9(name)  # bin/supervise starts it again after 2 s
        fault.injected += 1
        await asyncio.sleep(1)


async def consumer_sigterm(chaos: Chaos, fault: Fault) -> None:
    """Each consumer stopped as an orchestrator stops it; it must end cleanly with what it applied stored."""
    for name in CONSUMERS:
        took, code = await chaos.services.sigterm(name)
        fault.injected += 1
        fault.expect(took is not None, f"{name} did not end within {STOP_LIMIT_SECONDS:.0f} s of SIGTERM")
        fault.expect(took is None or code in CLEAN_EXITS, f"{name} ended with code {code} after SIGTERM")
        if took is not None:
            fault.notes.append(f"{name} stopped in {took:.1f} s")


async def broker_kill(chaos: Chaos, fault: Fault) -> None:
    kafka_kill(chaos.stack.profile)
    fault.injected += 1
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(kafka_up, chaos.stack.profile)


async def postgres_kill_restart(chaos: Chaos, fault: Fault) -> None:
    await asyncio.to_thread(postgres_kill, chaos.stack.profile)
    fault.injected += 1
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(postgres_up, chaos.stack.profile)


async def unready_consumers(http: httpx.AsyncClient, ports: Ports) -> set[str]:
    unready = set()
    for name, port in ports.consumers.items():
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"http://127.0.0.1:{port}/readyz", timeout=3)).status_code == 503:
                unready.add(name)
    return unready


async def postgres_read_only(chaos: Chaos, fault: Fault) -> None:
    """The database refuses writes, as after a fail-over to a standby or an operator's emergency stop:
    `default_transaction_read_only` on, and the open sessions ended, so every new one is read-only.
    Writes must be retried (never dropped or dead-lettered) and /readyz must say so; when writes are
    allowed again nothing ends the read-only sessions: the services must replace them themselves."""
    admin = await asyncpg.connect(chaos.stack.database_url)
    try:
        await admin.execute("ALTER DATABASE villagecounsel SET default_transaction_read_only = on")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        fault.injected += 1
        seen: set[str] = set()
        ends = time.monotonic() + OUTAGE_SECONDS + 3
        while time.monotonic() < ends:
            seen |= await unready_consumers(chaos.http, chaos.stack.ports)
            await asyncio.sleep(0.5)
        await admin.execute("ALTER DATABASE villagecounsel RESET default_transaction_read_only")
    finally:
        await admin.close()
    for name in CONSUMERS:
        fault.expect(name in seen, f"{name} never answered /readyz 503 while PostgreSQL refused writes")


async def _proxy(chaos: Chaos, target: str, fault: Fault) -> TcpProxy:
    """The proxy a network fault acts on: PostgreSQL's, the broker's, or (on the cluster) the one in front
    of the broker leading the partition the load writes to, so that the services lose their path to the
    leader while the brokers still reach each other."""
    if target == "postgres":
        return chaos.proxies.postgres
    if target == "kafka":
        [proxy] = chaos.proxies.kafka.values()
        return proxy
    partition = _load_partition(chaos)
    leader = await partition_leader(chaos.stack, partition)
    fault.expect(leader is not None, f"no leader for partition {partition}")
    fault.notes.append(f"between the services and broker {leader}, the leader of partition {partition}")
    return chaos.proxies.kafka[leader or 1]


def network_faults(target: str) -> dict[str, FaultAction]:
    """Latency, resets, a hang and half-open connections between every service and `target` ("postgres",
    "kafka", or on the cluster "leader")."""

    async def latency(chaos: Chaos, fault: Fault) -> None:
        proxy = await _proxy(chaos, target, fault)
        proxy.latency(0.3)
        fault.injected += 1
        await asyncio.sleep(OUTAGE_SECONDS)
        proxy.heal()

    async def reset(chaos: Chaos, fault: Fault) -> None:
        proxy = await _proxy(chaos, target, fault)
        for _ in range(2):
            fault.notes.append(f"{proxy.connections} connections reset")
            proxy.reset()
            fault.injected += 1
            await asyncio.sleep(2)

    async def hang(chaos: Chaos, fault: Fault) -> None:
        proxy = await _proxy(chaos, target, fault)
        proxy.hang()
        fault.injected += 1
        await asyncio.sleep(OUTAGE_SECONDS)
        proxy.heal()

    async def half_open(chaos: Chaos, fault: Fault) -> None:
        proxy = await _proxy(chaos, target, fault)
        fault.notes.append(f"{proxy.connections} connections left half-open")
        proxy.half_open()
        fault.injected += 1

    return {
        f"{target}-latency": latency,
        f"{target}-reset": reset,
        f"{target}-hang": hang,
        f"{target}-half-open": half_open,
    }


async def rebalance(chaos: Chaos, fault: Fault) -> None:
    """A second replica of each consumer joins its group under load, then leaves it (SIGTERM)."""
    for name in CONSUMERS:
        chaos.services.start_replica(name)
        fault.injected += 1
    deadline = time.monotonic() + 90
    waiting = set(CONSUMERS)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            with contextlib.suppress(httpx.TransportError):
                answer = await chaos.http.get(
                    f"http://127.0.0.1:{chaos.stack.ports.replicas[name]}/readyz", timeout=3
                )
                if answer.status_code == 200:
                    waiting.discard(name)
        await asyncio.sleep(0.5)
    fault.expect(not waiting, f"replicas not ready within 90 s: {sorted(waiting)}")
    await asyncio.sleep(3)  # both members consume
    for name in CONSUMERS:
        took, code = await chaos.services.stop_replica(name)
        fault.injected += 1
        fault.expect(took is not None, f"the {name} replica did not end within {STOP_LIMIT_SECONDS:.0f} s")
        fault.expect(
            took is None or code in CLEAN_EXITS or code == -signal.SIGTERM,
            f"the {name} replica ended with code {code}",
        )


async def rebuild(chaos: Chaos, fault: Fault) -> None:
    """A blue-green rebuild of each projection (plumbing/rebuild.py) while records keep arriving."""
    for name in CONSUMERS:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"services.{name}",
            "rebuild",
            "--drop-retired",
            env=chaos.stack.environment(name),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        fault.injected += 1
        fault.expect(process.returncode == 0, f"{name} rebuild: exit {process.returncode}: {output[-300:]!r}")
        summary = output.decode(errors="replace").strip().splitlines()[-1:] or [""]
        fault.notes.append(f"{name} rebuilt in {time.monotonic() - started:.1f} s ({summary[0][:160]})")


async def overload(chaos: Chaos, fault: Fault) -> None:
    """200 clients sending back to back, against intake's limit of 32 requests in flight."""
    pid = chaos.services.service_pid("intake")
    before = resident_mb(pid) if pid else 0.0
    peak = before
    flood = asyncio.create_task(chaos.load.flood(senders=200, seconds=OUTAGE_SECONDS))
    unavailable = chaos.load.tally.unavailable
    fault.injected += 1
    while not flood.done():
        peak = max(peak, resident_mb(pid) if pid else 0.0)
        await asyncio.sleep(0.2)
    await flood
    fault.notes.append(f"intake's memory {before:.0f} MB, at most {peak:.0f} MB under overload")
    fault.expect(chaos.load.tally.unavailable > unavailable, "intake never answered 429/503 under overload")
    fault.expect(
        peak - before < INTAKE_MEMORY_LIMIT_MB,
        f"intake's memory grew by {peak - before:.0f} MB under overload",
    )


SCENARIOS: dict[str, FaultAction] = {
    "consumer-kill": consumer_kill,
    "consumer-sigterm": consumer_sigterm,
    "broker-kill": broker_kill,
    "postgres-kill": postgres_kill_restart,
    "postgres-read-only": postgres_read_only,
    **network_faults("postgres"),
    **network_faults("kafka"),
    "rebalance": rebalance,
    "rebuild": rebuild,
    "overload": overload,
}


async def partition_leader(stack: Stack, partition: int = 0) -> int | None:
    """The broker that leads a partition of the topic now (None while no broker does)."""
    admin = create_admin(stack.admin, timeout_seconds=5)
    try:
        await admin.start()
        [topic] = await admin.describe_topics([TOPIC])
    except KafkaError:
        return None
    finally:
        with contextlib.suppress(KafkaError):
            await admin.close()
    for found in topic["partitions"]:
        if found.get("partition", found.get("partition_index")) == partition:
            leader = found.get("leader", found.get("leader_id"))
            return int(leader) if leader is not None and leader >= 0 else None
    return None


def short_of_replicas(described: list[dict[str, object]]) -> list[str]:
    """The partitions (as `topic-N`) whose in-sync replicas are fewer than their replicas, from an
    admin client's `describe_topics`; a topic that could not be described counts as short."""
    short = []
    for topic in described:
        if topic.get("error_code"):
            short.append(f"{topic['topic']}")
            continue
        partitions = topic["partitions"]
        for partition in partitions if isinstance(partitions, list) else []:
            if set(partition["isr"]) != set(partition["replicas"]):
                short.append(f"{topic['topic']}-{partition['partition']}")
    return sorted(short)


async def wait_fully_replicated(stack: Stack, seconds: float = 120) -> tuple[float, list[str]]:
    """Until every partition of the project's topics has all its replicas in sync again, as Kafka's
    replication tests wait for a bounced broker to be back before the next bounce: the seconds it took, and
    what was still short if it timed out."""
    started = time.monotonic()
    short = ["not described yet"]
    while time.monotonic() - started < seconds:
        admin = create_admin(stack.admin, timeout_seconds=5)
        try:
            await admin.start()
            short = short_of_replicas(await admin.describe_topics([spec.name for spec in TOPICS]))
        except KafkaError as error:
            short = [type(error).__name__]
        finally:
            with contextlib.suppress(KafkaError):
                await admin.close()
        if not short:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started, short


def _load_partition(chaos: Chaos) -> int:
    """The partition the load writes to (its records share a key)."""
    written = {partition for partition, _ in chaos.load.tally.acknowledged.values()}
    return min(written, default=0)


def _cluster(chaos: Chaos) -> ClusterProfile:
    if chaos.stack.cluster is None:
        raise ValueError("a cluster fault on a single broker")
    return chaos.stack.cluster


async def leader_kill(chaos: Chaos, fault: Fault) -> None:
    """kill -9 of the broker leading the partition the load writes to, `leader_kills` times (3; the short
    round's 2); each started again once another broker leads, after 5 s (the short round's at once), and
    back in every partition's in-sync replicas before the next kill. Until the controller fences it
    (`broker.session.timeout.ms`, 9 s) the partition has no leader."""
    cluster = _cluster(chaos)
    partition = _load_partition(chaos)
    for _ in range(chaos.leader_kills):
        leader = await partition_leader(chaos.stack, partition)
        fault.expect(leader is not None, f"no leader for partition {partition} before a kill")
        if leader is None:
            return
        await asyncio.to_thread(node_kill, cluster, leader)
        fault.injected += 1
        after = None
        for _ in range(40):
            after = await partition_leader(chaos.stack, partition)
            if after not in (None, leader):
                break
            await asyncio.sleep(0.5)
        fault.expect(after not in (None, leader), f"no broker took over partition {partition} from {leader}")
        fault.notes.append(f"leader {leader} killed, {after} took over")
        if chaos.leader_kills >= 3:
            await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(node_up, cluster, leader)
        await _back_in_sync(chaos, fault, leader)


async def _back_in_sync(chaos: Chaos, fault: Fault, node: int) -> None:
    """The restarted broker back in every partition's in-sync replicas before the next fault: a kill of
    the next leader before that leaves one in-sync replica, below `min.insync.replicas`, and the cluster
    rightly refuses acks=all writes for as long as that lasts; that would be the test's doing, not ours."""
    took, short = await wait_fully_replicated(chaos.stack)
    fault.expect(not short, f"broker {node} not back in sync after {took:.0f} s: {', '.join(short[:5])}")
    fault.notes.append(f"broker {node} back in sync in {took:.1f} s")


async def controlled_shutdown(chaos: Chaos, fault: Fault) -> None:
    """Each broker in turn stopped with SIGTERM (it hands its leaderships over) and started again."""
    cluster = _cluster(chaos)
    for node in cluster.nodes:
        took = await asyncio.to_thread(node_stop, cluster, node)
        fault.injected += 1
        fault.notes.append(f"broker {node} stopped in {took:.1f} s")
        await asyncio.to_thread(node_up, cluster, node)
        await _back_in_sync(chaos, fault, node)


CLUSTER_SCENARIOS: dict[str, FaultAction] = {
    "leader-kill": leader_kill,
    "controlled-shutdown": controlled_shutdown,
    **network_faults("leader"),
}
# The test suite's short round (tests/integration/test_chaos.py) is every single-broker scenario but those
# whose fault a test of its own already injects, in a fraction of the time, against the same code; the
# suite stays under 20 minutes on a 2-core machine. Every scenario's short round is `bin/chaos --seconds 5
# --rate 8` (bench/results/chaos-short.md), the long one `bin/chaos --soak`.
# scenario: the tests of its own that inject its fault, as "file::test" under tests/integration/
TESTED_APART: dict[str, tuple[str, ...]] = {
    "broker-kill": (
        "test_intake.py::test_503_while_the_broker_is_stopped_and_recovery_without_restarting_intake",
        "test_chaos_cluster.py::"
        "test_leader_kills_and_controlled_shutdowns_of_three_brokers_lose_double_and_strand_nothing",
    ),
    "postgres-kill": (
        "test_projection_outages.py::"
        "test_kill_9_of_postgresql_mid_batch_is_survived_with_true_lag_and_nothing_lost_or_doubled",
    ),
    "postgres-read-only": (
        "test_projection_outages.py::"
        "test_a_database_that_refuses_writes_is_retried_unready_and_nothing_is_dropped",
    ),
    "postgres-half-open": (
        "test_projection_outages.py::test_half_open_database_connections_are_found_out_and_replaced",
    ),
    "rebalance": (
        "test_projection_runtime.py::test_two_consumers_killed_during_rebalances_lose_and_repeat_nothing",
    ),
    "rebuild": ("test_projection_runtime.py::test_a_rebuild_switches_over_while_records_keep_arriving",),
}
SUITE_ROUND = tuple(name for name in SCENARIOS if name not in TESTED_APART)
# The cluster's short round (tests/integration/test_chaos_cluster.py): Kafka's replication under the
# two kinds of broker loss; its network faults are the soak's.
CLUSTER_SHORT_ROUND = ("leader-kill", "controlled-shutdown")


async def run_scenario(
    name: str,
    stack: Stack,
    services: Services,
    proxies: Proxies,
    seconds: float,
    rate: float,
    leader_kills: int,
) -> Outcome:
    advisor = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
    tally = Tally()
    fault = Fault()
    partitions = await topic_partitions(stack.admin, [TOPIC])
    consumer = create_consumer(stack.admin)
    await consumer.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.ports.intake}") as client:
            chaos = Chaos(stack, services, proxies, client, LoadClient(client, advisor, tally), leader_kills)
            fault_over = asyncio.Event()
            load = asyncio.create_task(chaos.load.steady(rate, seconds, fault_over))
            await asyncio.sleep(seconds / 3)
            await (CLUSTER_SCENARIOS if stack.cluster is not None else SCENARIOS)[name](chaos, fault)
            fault_ended = time.monotonic()
            fault_over.set()
            _say(f"{name}: {fault.injected} fault(s) injected, recovering")
            recovering = asyncio.create_task(
                recovered_after(
                    stack,
                    fault_ended,
                    chaos.load,
                    consumer,
                    partitions,
                    fault_ended + SETTLE_SECONDS,
                    store=True,
                )
            )
            await load
            recovery = await recovering
            now = time.monotonic()
            caught_up = await recovered_after(
                stack, now, chaos.load, consumer, partitions, now + SETTLE_SECONDS, store=False
            )
    finally:
        await consumer.stop()
    outcome = await check(stack, tally, advisor, name, fault, recovery, caught_up is not None)
    _say(f"{name}: {outcome.acknowledged} acknowledged, {'pass' if outcome.passed() else 'FAIL'}")
    return outcome


async def wait_until_ready(ports: Ports, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if await all_ready(http, ports):
                return
            await asyncio.sleep(0.5)
    raise RuntimeError("the chaos stack's services are not ready; see .local/chaos*/services")


def report(outcomes: list[Outcome], seconds: float, rate: float, command: str, rounds: int = 1) -> str:
    lines = [
        f"# Acknowledged-write audit ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`{command}`: {rounds} round(s) of {seconds:.0f} s of load at ~{rate:.0f} records/s per scenario "
        "through intake into the ledger, the assessment and the dashboard; the fault a third of the way in, "
        "the load going on until a third of that after the fault's end. Kafka's own bar: every acknowledged "
        "message consumed, none twice. Target: 0 lost, 0 doubled, 0 dead-lettered, 0 stuck, 0 other 5xx, "
        f"recovery within {RECOVERY_TARGET_SECONDS:.0f} s of the fault's end.",
        "",
        "| scenario | faults | acknowledged | lost | doubled | dead-lettered | stuck | 429/503 answered | "
        "other 5xx | given up | stored without a 202 | never sent | recovery (s) | checks | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for o in outcomes:
        recovery = f"{o.recovery_seconds:.1f}" if o.recovery_seconds is not None else "not within 90"
        checks = "; ".join(o.failed_checks) or "ok"
        lines.append(
            f"| {o.scenario} | {o.faults} | {o.acknowledged} | {o.lost} | {o.doubled} | {o.dead_lettered} | "
            f"{o.stuck} | {o.unavailable} | {o.other_5xx} | {o.given_up} | {o.stored_without_202} | "
            f"{o.never_sent} | {recovery} | {checks} | {'pass' if o.passed() else 'FAIL'} |"
        )
        details = [*o.notes, *(f"missing from {name}: {n}" for name, n in o.missing_by_projection)]
        if details:
            notes.append(f"- {o.scenario}: {'; '.join(details)}")
    recoveries = [o.recovery_seconds for o in outcomes if o.recovery_seconds is not None]
    total = (
        f"In all: {len(outcomes)} scenario runs, {sum(o.faults for o in outcomes)} faults, "
        f"{sum(o.acknowledged for o in outcomes)} records acknowledged, "
        f"{sum(o.lost for o in outcomes)} lost, {sum(o.doubled for o in outcomes)} doubled, "
        f"{sum(o.stuck for o in outcomes)} stuck, {sum(o.other_5xx for o in outcomes)} other 5xx, "
        f"{sum(o.never_sent for o in outcomes)} never sent; "
        f"recovery at most {max(recoveries, default=0.0):.1f} s; "
        f"{sum(o.passed() for o in outcomes)} of {len(outcomes)} passed."
    )
    return "\n".join([*lines, "", total, "", *notes]) + "\n"


async def audit(
    stack: Stack, scenarios: list[str], rounds: int, seconds: float, rate: float, leader_kills: int = 3
) -> list[Outcome]:
    proxies = Proxies.of(stack)
    for proxy in proxies.all:
        await proxy.start()
    services = Services(stack)
    try:
        services.start()
        await wait_until_ready(stack.ports)
        _say("intake, the ledger, the assessment and the dashboard are ready")
        return [
            await run_scenario(name, stack, services, proxies, seconds, rate, leader_kills)
            for _ in range(rounds)
            for name in scenarios
        ]
    finally:
        await asyncio.to_thread(services.stop)
        for proxy in proxies.all:
            await proxy.stop()


def single_broker_audit(
    profile: Profile, ports: Ports, scenarios: list[str], rounds: int, seconds: float, rate: float, keep: bool
) -> list[Outcome]:
    up(profile, fresh=True)
    try:
        return asyncio.run(audit(Stack(ports, single=profile), scenarios, rounds, seconds, rate))
    finally:
        down(profile)
        if not keep:
            shutil.rmtree(profile.home, ignore_errors=True)


def cluster_audit(
    cluster: ClusterProfile,
    ports: Ports,
    scenarios: list[str],
    rounds: int,
    seconds: float,
    rate: float,
    keep: bool,
    leader_kills: int = 3,
) -> list[Outcome]:
    cluster_down(cluster, wipe=True)
    cluster_up(cluster)
    try:
        stack = Stack(ports, cluster=cluster)
        return asyncio.run(audit(stack, scenarios, rounds, seconds, rate, leader_kills))
    finally:
        cluster_down(cluster, wipe=not keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per scenario")
    parser.add_argument("--rate", type=float, default=20.0, help="new records a second")
    parser.add_argument("--rounds", type=int, default=None, help="every scenario this many times")
    parser.add_argument(
        "--scenarios",
        default=None,
        help=f"single broker: {', '.join(SCENARIOS)}; cluster: {', '.join(CLUSTER_SCENARIOS)} "
        "(default: every single-broker one, and the cluster's with --cluster)",
    )
    parser.add_argument(
        "--cluster", action="store_true", help="also every scenario of the three-broker cluster"
    )
    parser.add_argument(
        "--short-cluster",
        action="store_true",
        help="the cluster's short round only: two leader kills (each broker back at once) and a controlled "
        "shutdown of each broker, on the short round's ports (tests/integration/test_chaos_cluster.py)",
    )
    parser.add_argument("--report", type=Path, default=None, help="write the table (Markdown) here too")
    parser.add_argument("--keep", action="store_true", help="leave the chaos stack's data for a look")
    parser.add_argument(
        "--soak",
        action="store_true",
        help=f"the long run on ports of its own: {SOAK[0]} rounds (or --rounds) of {SOAK[1]:.0f} s at "
        f"{SOAK[2]:.0f} records/s, every scenario, the cluster's too; report to bench/results/chaos-soak.md",
    )
    args = parser.parse_args(argv)
    single, single_ports, cluster, cluster_ports = CHAOS, CHAOS_PORTS, SHORT_CLUSTER, SHORT_CLUSTER_PORTS
    leader_kills = 3
    if args.soak:
        single, single_ports, cluster, cluster_ports = SOAK_CHAOS, SOAK_CHAOS_PORTS, CLUSTER, CLUSTER_PORTS
        args.rounds = args.rounds or SOAK[0]
        args.seconds, args.rate = SOAK[1:]
        args.cluster = True
        args.report = args.report or ROOT / "bench" / "results" / "chaos-soak.md"
    rounds = args.rounds or 1
    if args.short_cluster:
        asked = list(CLUSTER_SHORT_ROUND)
        leader_kills = 2
    elif args.scenarios is not None:
        asked = [name for name in args.scenarios.split(",") if name]
    else:
        asked = [*SCENARIOS, *(CLUSTER_SCENARIOS if args.cluster else ())]
    if args.cluster and args.scenarios is not None:
        asked += [name for name in CLUSTER_SCENARIOS if name not in asked]
    unknown = set(asked) - set(SCENARIOS) - set(CLUSTER_SCENARIOS)
    if unknown:
        parser.error(
            f"unknown scenarios {sorted(unknown)}; known: {', '.join([*SCENARIOS, *CLUSTER_SCENARIOS])}"
        )
    on_single = [name for name in asked if name in SCENARIOS]
    on_cluster = [name for name in asked if name in CLUSTER_SCENARIOS]
    started = time.monotonic()
    outcomes = (
        single_broker_audit(single, single_ports, on_single, rounds, args.seconds, args.rate, args.keep)
        if on_single
        else []
    )
    if on_cluster:
        outcomes += cluster_audit(
            cluster, cluster_ports, on_cluster, rounds, args.seconds, args.rate, args.keep, leader_kills
        )
    command = "python -m devstack.chaos " + " ".join(argv if argv is not None else sys.argv[1:])
    table = report(outcomes, args.seconds, args.rate, command.strip(), rounds)
    table += f"\nRun in {time.monotonic() - started:.0f} s.\n"
    print(table)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(table)
    return 0 if all(outcome.passed() for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
