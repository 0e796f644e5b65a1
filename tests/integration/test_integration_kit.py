"""Issue 19: the example integrating systems (examples/go, examples/js) against the real, closed broker.

A known set of records goes to `village-services` (a duplicate, a void, a forged record among them); the
dashboard counts them; then each example reads the topic as its own Kafka user (`integration-grid`),
validates against the published schemas, drops the duplicate by ce_id, applies the void, skips the forged
record, and prints a per-village tally that must equal the dashboard's figures."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ClusterAuthorizationFailedError

from contracts.envelope import Event, to_kafka_record
from contracts.events import RegionLevel, RegionRegistered
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.kafka import create_producer
from plumbing.settings import TokenSettings
from services.dashboard.app import create_app
from services.dashboard.regions import publish_events, region_event
from services.dashboard.settings import DashboardSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import send_all
from tests.support.samples import sample_event
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-kit-secret-long-enough-for-hs256"
NOW = datetime(2026, 11, 23, tzinfo=UTC)
USER = "integration-grid"  # the examples' own Kafka user (contracts/access.py): reads village-services only
TALLIED = ("consultations", "consultation_person_times", "mediations", "risk_reports")


def province() -> dict[str, str]:
    token = mint_token(
        TokenSettings(jwt_secret=SECRET),
        subject="province-37",
        role=Role.province_department,
        region_code="37",
        now=datetime.now(UTC),
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def dashboard(infrastructure: Infrastructure, topics: None) -> AsyncIterator[httpx.AsyncClient]:
    settings = DashboardSettings(
        **infrastructure.kafka_settings("dashboard"),
        database_url=infrastructure.database_url,
        jwt_secret=SECRET,
        poll_timeout_ms=100,
        ledger_url="http://127.0.0.1:9",
    )
    app = create_app(settings, ManualClock(NOW))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dashboard"
        ) as client:
            yield client


def service(event_type: str, village: str, **fields: Any) -> Event:
    return sample_event(
        event_type,
        event_id=uuid.uuid4(),
        village_code=village,
        occurred_at="2025-05-10T10:00:00+08:00",
        **fields,
    )


async def run_example(
    command: list[str], cwd: Path, environment: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()
    summary: dict[str, Any] = json.loads(err.decode().strip().splitlines()[-1])
    return out.decode(), summary


def tallies(printed: str) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for line in printed.splitlines():
        row = json.loads(line)
        found[row.pop("village")] = row
    return found


async def test_the_go_and_javascript_examples_tally_what_the_dashboard_counts(
    dashboard: httpx.AsyncClient, producer: AIOKafkaProducer, infrastructure: Infrastructure
) -> None:
    township = f"370402{random.randrange(600, 999):03d}"
    v1, v2, v3 = (f"{township}{number}" for number in random.sample(range(400, 600), 3))
    villages = [
        RegionRegistered(
            code=code, name=f"对接村{code[-3:]}", level=RegionLevel.village, parent_code=township
        )
        for code in (v1, v2, v3)
    ]
    await publish_events(infrastructure.kafka, iter([region_event(region, NOW) for region in villages]), 1)

    twice = service("consultation.recorded", v1, person_times=3)
    taken_back = service("consultation.recorded", v2, person_times=4)
    records = [
        service("consultation.recorded", v1, person_times=2),
        twice,
        twice,  # a producer's retry: the same ce_id, counted once
        service("risk.reported", v1, severity="high"),
        service("mediation.recorded", v1),
        service("consultation.recorded", v2, person_times=1),
        service("risk.reported", v2, severity="medium"),
        taken_back,
        service("record.voided", v2, target_event_id=str(taken_back.id)),
        service("risk.reported", v3, severity="low"),
    ]
    await send_all(producer, records)
    # A forged record (a count written as a string): the dashboard sends it to its .dlq, the examples'
    # schema validation refuses it. Written as the tests' injector, as a careless producer would.
    forged = to_kafka_record(service("consultation.recorded", v3, person_times=5))
    value = orjson.loads(forged.value)
    value["person_times"] = "5"
    await producer.send_and_wait(forged.topic, orjson.dumps(value), key=forged.key, headers=forged.headers)

    expected = {
        v1: {"consultations": 2, "consultation_person_times": 5, "mediations": 1, "risk_reports": 1},
        v2: {"consultations": 1, "consultation_person_times": 1, "risk_reports": 1},
        v3: {"risk_reports": 1},
    }
    severities = {v1: "high", v2: "medium", v3: "low"}

    async def figures(code: str) -> dict[str, Any]:
        answer = await dashboard.get(
            f"/v1/regions/{code}/figures", params={"period": "2025"}, headers=province()
        )
        if answer.status_code == 404:  # the village is still on its way through the projection
            return {}
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()["figures"]
        return shown

    def reached(wanted: dict[str, int]) -> Any:
        return lambda found: all(found.get(metric, 0) == wanted.get(metric, 0) for metric in TALLIED)

    counted = {
        code: await eventually(
            functools.partial(figures, code), reached(wanted), what=f"the dashboard's figures of {code}"
        )
        for code, wanted in expected.items()
    }

    environment = {
        **infrastructure.kafka_environment(USER),
        "VC_SCHEMA_DIR": str(ROOT / "contracts" / "schemas"),
    }
    assert environment.get("VC_KAFKA_SASL_USERNAME", USER) == USER
    go_binary = ROOT / ".local" / "bin" / "tally-go"
    assert go_binary.is_file(), "bin/setup builds the Go example"
    assert (ROOT / "examples" / "js" / "node_modules" / "kafkajs").is_dir(), "bin/setup installs it"
    runs = await asyncio.gather(
        run_example([str(go_binary), v1, v2, v3], ROOT / "examples" / "go", environment),
        run_example(["node", "tally.mjs", v1, v2, v3], ROOT / "examples" / "js", environment),
    )
    for language, (printed, summary) in zip(("go", "js"), runs, strict=True):
        tally = tallies(printed)
        assert set(tally) == {v1, v2, v3}, language
        for code, wanted in expected.items():
            severity = f"risk_reports_{severities[code]}"
            for metric in (*TALLIED, severity):
                assert tally[code].get(metric, 0) == counted[code].get(metric, 0), (language, code, metric)
            assert {m: tally[code].get(m, 0) for m in TALLIED} == {m: wanted.get(m, 0) for m in TALLIED}
        assert summary["duplicates"] >= 1, (language, summary)
        assert summary["voids_applied"] >= 1, (language, summary)
        assert summary["invalid"] >= 1, (language, summary)
        assert summary["read"] >= len(records) + 1, (language, summary)


async def test_the_examples_user_reads_and_cannot_write(infrastructure: Infrastructure) -> None:
    """`integration-grid` is read-only: its idempotent producer gets not even a producer id."""
    producer = create_producer(infrastructure.kafka_as(USER), "integration-kit-test", request_timeout_ms=5000)
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            await producer.start()
    finally:
        await producer.stop()
