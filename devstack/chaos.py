"""The acknowledged-write audit (issue 14): load through intake, faults injected, and a check made apart
from the services of what happened to every record intake acknowledged.

A stack of its own (devstack profile `chaos`: Kafka 22092, PostgreSQL 22432, fresh), intake and the
ledger as processes under bin/supervise (as bin/run-local runs them). Per scenario a client sends
consultations with ids of its own, retrying a 503 with the same id after Retry-After as the contract
asks, and notes every id answered 202 with its partition and offset. One fault is injected mid-load.
Afterwards the checker reads the topic and the ledger's table itself and counts, per scenario:
acknowledged; lost (acknowledged but not at its offset in Kafka, or in Kafka but not in the ledger once
the ledger caught up); doubled (an id more than once in the ledger's entries; their key forbids it, so a
second application would surface as a dead-lettered record instead, counted apart: acknowledged ids on
`village-services.dlq`); stuck (not in the ledger when the settle time ran out); other 5xx; and the
recovery time (from the fault's end until intake takes records again and the ledger's offsets in
PostgreSQL reach the broker's end offsets as they were one second after the fault's end, i.e. the true
lag of that moment is worked off while the load goes on). After the load, the checker waits (at most
90 s) for the true lag to reach 0. A record
stored in Kafka more than once (a retry after a 503 whose write had in fact succeeded) is expected and
not counted: the ledger must apply it once, which is what "doubled" checks.

    python -m devstack.chaos [--seconds 20] [--rate 20] [--scenarios consumer-kill,broker-kill,postgres-kill]
                             [--rounds 1] [--report bench/results/chaos.md]

This first form covers one projection (the ledger) and three faults; the other projections, the
three-broker cluster, network faults and the rest of issue 14's scenarios are not here yet.
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

from contracts.topics import dead_letter_topic
from devstack.broker_security import ADMIN
from devstack.stack import ROOT, Profile, down, kafka_kill, kafka_up, postgres_kill, postgres_up, up
from plumbing.kafka import create_consumer, topic_partitions

CHAOS = Profile("chaos", kafka_port=22092, controller_port=22093, postgres_port=22432)
INTAKE_PORT = 22800
LEDGER_PORT = 22801
TOPIC = "village-services"
VILLAGE = "370402105201"
SETTLE_SECONDS = 90.0


@dataclass
class Tally:
    """What the client saw: every id answered 202 with where Kafka put it, and what else came back."""

    acknowledged: dict[str, tuple[int, int]] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)
    unavailable: int = 0
    other_5xx: int = 0
    connection_errors: int = 0


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

    def passed(self) -> bool:
        return (
            self.lost == 0
            and self.doubled == 0
            and self.dead_lettered == 0
            and self.stuck == 0
            and self.other_5xx == 0
            and self.recovery_seconds is not None
            and self.recovery_seconds <= 15.0
        )


class Services:
    """Intake and the ledger, each under bin/supervise, so a killed one comes back as it would locally."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._supervisors: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        env = {**os.environ, "VC_LOG_LEVEL": "WARNING", "VC_STALL_AFTER_SECONDS": "30"}
        for name, port in (("intake", INTAKE_PORT), ("ledger", LEDGER_PORT)):
            with (self._log_dir / f"{name}.log").open("ab") as log:
                self._supervisors[name] = subprocess.Popen(
                    [str(ROOT / "bin" / "supervise"), sys.executable, "-m", f"services.{name}"],
                    # each service as its own Kafka user and PostgreSQL role, as bin/run-local runs them
                    env={**env, **CHAOS.environment(name), "VC_HTTP_PORT": str(port)},
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def kill_9(self, name: str) -> None:
        """SIGKILL the service itself (the supervisor's child), not its supervisor."""
        supervisor = self._supervisors[name].pid
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)

    def stop(self) -> None:
        for process in self._supervisors.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._supervisors.values():
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


async def send_load(
    client: httpx.AsyncClient, advisor: str, rate: float, seconds: float, tally: Tally
) -> None:
    """`rate` new records a second for `seconds`; each retried with its id until 202 (at most 60 s)."""
    headers = {"Authorization": f"Bearer {advisor_token(advisor)}"}
    in_flight: set[asyncio.Task[None]] = set()

    async def one(record_id: str) -> None:
        body = {
            "id": record_id,
            "advisor_id": advisor,
            "village_code": VILLAGE,
            "occurred_at": datetime.now(UTC).isoformat(),
            "channel": "phone",
            "person_times": 1,
            "topic": "land",
        }
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            try:
                answer = await client.post("/v1/consultations", json=body, headers=headers, timeout=15)
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

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        record_id = str(uuid.uuid4())
        tally.sent.add(record_id)
        task = asyncio.create_task(one(record_id))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        await asyncio.sleep(random.expovariate(rate))
    if in_flight:
        await asyncio.gather(*in_flight)


async def offsets(
    pool: asyncpg.Pool | None, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> tuple[dict[int, int], dict[int, int]] | None:
    """The broker's end offsets and the ledger's offsets in PostgreSQL by partition; None when either
    does not answer."""
    if pool is None:
        return None
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(partitions), timeout=3)
        rows = await asyncio.wait_for(
            pool.fetch(
                "SELECT partition, next_offset FROM ledger.projection_offsets "
                "WHERE consumer_group = 'ledger' AND topic = $1",
                TOPIC,
            ),
            timeout=3,
        )
    except (OSError, TimeoutError, KafkaError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    return {tp.partition: end for tp, end in ends.items()}, {
        row["partition"]: row["next_offset"] for row in rows
    }


async def recovered_after(
    fault_ended: float,
    client: httpx.AsyncClient,
    advisor: str,
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    deadline: float,
) -> float | None:
    """Seconds from the fault's end until intake takes records and the ledger has applied everything
    the topic held one second after the fault's end (so a consumer killed while it was keeping up is
    not "recovered" before it is back and applying)."""
    headers = {"Authorization": f"Bearer {advisor_token(advisor)}"}
    pool: asyncpg.Pool | None = None
    target: dict[int, int] | None = None
    try:
        while time.monotonic() < deadline:
            if pool is None:
                with contextlib.suppress(
                    OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError
                ):
                    pool = await asyncio.wait_for(
                        asyncpg.create_pool(CHAOS.database_url, min_size=0, max_size=1), timeout=3
                    )
            ready = False
            with contextlib.suppress(httpx.TransportError):
                answer = await client.post(
                    "/v1/consultations?dry_run=true",
                    json={
                        "id": str(uuid.uuid4()),
                        "advisor_id": advisor,
                        "village_code": VILLAGE,
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "channel": "phone",
                        "person_times": 1,
                        "topic": "land",
                    },
                    headers=headers,
                    timeout=5,
                )
                ready = (
                    await client.get("/readyz", timeout=5)
                ).status_code == 200 and answer.status_code == 200
            found = await offsets(pool, consumer, partitions)
            if found is not None and target is None and time.monotonic() >= fault_ended + 1:
                target = found[0]
            if ready and found is not None and target is not None:
                stored = found[1]
                if all(stored.get(partition, 0) >= end for partition, end in target.items()):
                    return time.monotonic() - fault_ended
            await asyncio.sleep(0.5)
        return None
    finally:
        if pool is not None:
            pool.terminate()


async def read_topic(topic: str) -> dict[tuple[int, int], str]:
    """(partition, offset) → ce_id of every record of the topic, read to its end."""
    consumer = create_consumer(
        CHAOS.kafka_as(ADMIN), enable_auto_commit=False, isolation_level="read_committed"
    )
    partitions = await topic_partitions(CHAOS.kafka_as(ADMIN), [topic])
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


async def check(
    tally: Tally, advisor: str, scenario: str, faults: int, recovery: float | None, caught_up: bool
) -> Outcome:
    in_kafka = await read_topic(TOPIC)
    dead_letters = set((await read_topic(dead_letter_topic(TOPIC))).values())
    ids_in_kafka = set(in_kafka.values())
    connection = await asyncpg.connect(CHAOS.database_url)
    try:
        rows = await connection.fetch(
            "SELECT event_id::text AS id, count(*) AS n FROM ledger.entries WHERE advisor_id = $1 GROUP BY 1",
            advisor,
        )
    finally:
        await connection.close()
    in_ledger = {row["id"]: row["n"] for row in rows}
    misplaced = {i for i, where in tally.acknowledged.items() if in_kafka.get(where) != i}
    not_in_ledger = {i for i in tally.acknowledged if i not in in_ledger}
    return Outcome(
        scenario=scenario,
        faults=faults,
        acknowledged=len(tally.acknowledged),
        lost=len(misplaced | (not_in_ledger & ids_in_kafka if caught_up else set())),
        doubled=sum(1 for n in in_ledger.values() if n > 1),
        dead_lettered=len(dead_letters & set(tally.acknowledged)),
        stuck=0 if caught_up else len(not_in_ledger),
        unavailable=tally.unavailable,
        other_5xx=tally.other_5xx,
        given_up=len(tally.given_up),
        stored_without_202=len((tally.sent - set(tally.acknowledged)) & set(in_ledger)),
        recovery_seconds=recovery,
    )


FaultAction = Callable[[Services], Awaitable[None]]


async def consumer_kill(services: Services) -> None:
    services.kill_9("ledger")  # bin/supervise starts it again after 2 s


async def broker_kill(_services: Services) -> None:
    kafka_kill(CHAOS)
    await asyncio.sleep(5)  # the outage
    await asyncio.to_thread(kafka_up, CHAOS)


async def postgres_kill_restart(_services: Services) -> None:
    await asyncio.to_thread(postgres_kill, CHAOS)
    await asyncio.sleep(5)
    await asyncio.to_thread(postgres_up, CHAOS)


SCENARIOS: dict[str, FaultAction] = {
    "consumer-kill": consumer_kill,
    "broker-kill": broker_kill,
    "postgres-kill": postgres_kill_restart,
}


async def run_scenario(name: str, services: Services, seconds: float, rate: float) -> Outcome:
    advisor = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
    tally = Tally()
    partitions = await topic_partitions(CHAOS.kafka_as(ADMIN), [TOPIC])
    consumer = create_consumer(CHAOS.kafka_as(ADMIN))
    await consumer.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{INTAKE_PORT}") as client:
            load = asyncio.create_task(send_load(client, advisor, rate, seconds, tally))
            await asyncio.sleep(seconds / 3)
            await SCENARIOS[name](services)
            fault_ended = time.monotonic()
            recovering = asyncio.create_task(
                recovered_after(
                    fault_ended,
                    client,
                    advisor,
                    consumer,
                    partitions,
                    fault_ended + SETTLE_SECONDS,
                )
            )
            await load
            recovery = await recovering
            caught_up = await recovered_after(
                time.monotonic(), client, advisor, consumer, partitions, time.monotonic() + SETTLE_SECONDS
            )
    finally:
        await consumer.stop()
    return await check(tally, advisor, name, 1, recovery, caught_up is not None)


def wait_until_ready(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the service on port {port} is not ready; see {CHAOS.home / 'services'}")


def report(outcomes: list[Outcome], seconds: float, rate: float) -> str:
    lines = [
        f"# Acknowledged-write audit ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python -m devstack.chaos`: {seconds:.0f} s of load at ~{rate:.0f} records/s per scenario through "
        "intake into the ledger; one fault per scenario a third of the way in. Kafka's own bar: every "
        "acknowledged message consumed, none twice. Target: 0 lost, 0 doubled, 0 stuck, 0 other 5xx, "
        "recovery within 15 s of the fault's end.",
        "",
        "| scenario | faults | acknowledged | lost | doubled | dead-lettered | stuck | 503/429 answered | "
        "other 5xx | given up | stored without a 202 | recovery (s) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        recovery = f"{o.recovery_seconds:.1f}" if o.recovery_seconds is not None else "not within 90"
        lines.append(
            f"| {o.scenario} | {o.faults} | {o.acknowledged} | {o.lost} | {o.doubled} | {o.dead_lettered} | "
            f"{o.stuck} | "
            f"{o.unavailable} | {o.other_5xx} | {o.given_up} | {o.stored_without_202} | {recovery} | "
            f"{'pass' if o.passed() else 'FAIL'} |"
        )
    return "\n".join(lines) + "\n"


async def audit(
    services: Services, scenarios: list[str], rounds: int, seconds: float, rate: float
) -> list[Outcome]:
    return [await run_scenario(name, services, seconds, rate) for _ in range(rounds) for name in scenarios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per scenario")
    parser.add_argument("--rate", type=float, default=20.0, help="new records a second")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--report", type=Path, default=None, help="write the table (Markdown) here too")
    parser.add_argument("--keep", action="store_true", help="leave the chaos stack's data for a look")
    args = parser.parse_args(argv)
    scenarios = [name for name in args.scenarios.split(",") if name]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    up(CHAOS, fresh=True)
    log_dir = CHAOS.home / "services"
    log_dir.mkdir(parents=True, exist_ok=True)
    services = Services(log_dir)
    try:
        services.start()
        wait_until_ready(INTAKE_PORT)
        wait_until_ready(LEDGER_PORT)
        outcomes = asyncio.run(audit(services, scenarios, args.rounds, args.seconds, args.rate))
    finally:
        services.stop()
        down(CHAOS)
        if not args.keep:
            shutil.rmtree(CHAOS.home, ignore_errors=True)
    table = report(outcomes, args.seconds, args.rate)
    print(table)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(table)
    return 0 if all(outcome.passed() for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
