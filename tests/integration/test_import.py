"""The import of history against the real broker and database: a ledger exported from one system and
imported into an empty one gives the same ledger.

"An empty system" on the one shared broker: a second ledger (its own schema and consumer group) whose
stored offsets are set to the ends of the topics before anything is sent to it, so it has seen nothing.
Like a province adopting the system, its registry is set up first (the same advisor and assignment,
sent again with the same ids), then the exported file is imported. The first ledger sees the imported
copies as duplicates (same id, same fingerprint): importing records that are here already is harmless.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from fastapi import FastAPI

from contracts import ledger_layout as layout
from contracts.examples import example_fields
from contracts.topics import REGISTRY, VILLAGE_SERVICES
from devstack.broker_security import ADMIN
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.kafka import KafkaConnection, create_consumer, topic_partitions
from plumbing.postgres import create_pool
from plumbing.projection import prepare_schema
from services.intake.app import create_app as create_intake
from services.intake.rules import KIND_BY_NAME
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from tests.support.infrastructure import KAFKA_VARIABLES, Infrastructure
from tests.support.places import fresh_county
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SECRET = "import-integration-secret-long-enough-for-hs256"
CSV_TYPE = {"content-type": "text/csv"}


def bearer(subject: str, role: Role, region: str) -> dict[str, str]:
    settings = IntakeSettings(jwt_secret=SECRET)
    token = mint_token(settings, subject=subject, role=role, region_code=region, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


async def end_offsets(kafka: KafkaConnection) -> dict[TopicPartition, int]:
    consumer = create_consumer(kafka, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = await topic_partitions(kafka, [VILLAGE_SERVICES, REGISTRY])
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


@dataclass
class County:
    code: str
    intake: httpx.AsyncClient

    @property
    def township(self) -> str:
        return self.code + "101"

    def village(self, number: int) -> str:
        return f"{self.township}{201 + number:03d}"

    @property
    def advisor(self) -> str:
        return f"adv-{self.code}-1"

    @property
    def as_county(self) -> dict[str, str]:
        return bearer(f"county-{self.code}", Role.county_bureau, self.code)

    async def post(self, kind: str, as_headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
        body = {"id": str(uuid.uuid4()), **body, **fields}
        await self.send(kind, as_headers, body)
        return body

    async def send(self, kind: str, as_headers: dict[str, str], body: dict[str, Any]) -> None:
        answer = await self.intake.post(KIND_BY_NAME[kind].path, json=body, headers=as_headers)
        assert answer.status_code == 202, answer.text


def ledger_app(infrastructure: Infrastructure, user: str, schema: str | None) -> FastAPI:
    settings = LedgerSettings(
        **infrastructure.kafka_settings(user),
        database_url=infrastructure.database_url,
        jwt_secret=SECRET,
        batch_max_records=500,
        poll_timeout_ms=100,
    )
    app = create_ledger(settings, ManualClock(NOW))
    if schema is not None:  # another ledger: its own tables and consumer group (the super user may use any)
        host = app.state.host
        host.projection = replace(host.projection, name=schema, schema=schema)
    return app


async def start_empty(infrastructure: Infrastructure, app: FastAPI) -> None:
    """Its stored offsets at the topics' ends: it will apply only what is sent from now on."""
    projection = app.state.host.projection
    pool = await create_pool(infrastructure.database_url, projection.schema, 2)
    try:
        await prepare_schema(pool, projection)
        ends = await end_offsets(infrastructure.kafka)
        await pool.executemany(
            """INSERT INTO projection_offsets (consumer_group, topic, partition, next_offset)
               VALUES ($1, $2, $3, $4)""",
            [(projection.name, tp.topic, tp.partition, offset) for tp, offset in ends.items()],
        )
    finally:
        await pool.close()


async def entries(ledger: httpx.AsyncClient, village: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = await ledger.get(f"/v1/villages/{village}/ledger", params={"limit": 500}, headers=headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["entries"]
    return found


async def wait_for(ledger: httpx.AsyncClient, village: str, headers: dict[str, str], count: int) -> bytes:
    """The ledger's answer (its bytes) once it shows `count` entries."""

    async def probe() -> list[dict[str, Any]]:
        return await entries(ledger, village, headers)

    await eventually(probe, lambda found: len(found) >= count, seconds=90, what=f"{count} entries")
    answer = await ledger.get(f"/v1/villages/{village}/ledger", params={"limit": 500}, headers=headers)
    return answer.content


def offset_free(answer: bytes) -> bytes:
    """The answer with each entry's Kafka offset left out: where a record sits differs between systems."""
    document = orjson.loads(answer)
    for entry in document["entries"]:
        del entry["origin"]["offset"]
    return orjson.dumps(document)


def hash_free(answer: bytes, imported: bool) -> bytes:
    """Offset-free, without the entries' hashes, and (for imported entries) without the `imported` marker
    those hashes cover: what a native entry and its imported copy must have alike. Each chain is checked
    whole by the verification endpoint."""
    document = orjson.loads(offset_free(answer))
    for entry in document["entries"]:
        if imported:
            assert entry["fields"].pop("imported") is True
        assert "imported" not in entry["fields"]
        entry["entry_hash"] = None
    return orjson.dumps(document)


@pytest.fixture
async def intake(infrastructure: Infrastructure, topics: None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_intake(
        IntakeSettings(
            **infrastructure.kafka_settings("intake"),
            database_url=infrastructure.database_url,
            jwt_secret=SECRET,
        ),
        ManualClock(NOW),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client,
    ):
        yield client


async def registry(county: County) -> list[tuple[str, dict[str, Any]]]:
    advisor = {k: v for k, v in example_fields("advisor.registered").items() if k != "recorded_by"}
    advisor.update(id=str(uuid.uuid4()), advisor_id=county.advisor, name="顾问甲", region_code=county.code)
    assignment = {k: v for k, v in example_fields("advisor.assigned").items() if k != "recorded_by"}
    assignment.update(
        id=str(uuid.uuid4()),
        advisor_id=county.advisor,
        village_code=county.village(0),
        term_start="2026-01-01",
        term_end="2026-12-31",
    )
    return [("advisor", advisor), ("assignment", assignment)]


async def history(county: County) -> dict[str, int]:
    """Records of every kind, a void, personal data, another recorder, a village outside the term."""
    village, other = county.village(0), county.village(1)
    as_advisor = bearer(county.advisor, Role.advisor, county.code)
    # Beijing time, as clients send it (the export writes it so; the fingerprint covers how it is written)
    mine = {"advisor_id": county.advisor, "village_code": village, "occurred_at": "2026-03-14T17:30:00+08:00"}
    for kind in ("consultation", "lecture", "legal_aid", "document", "risk_report"):
        await county.post(kind, as_advisor, **mine)
    await county.post(
        "visit",
        as_advisor,
        **{**mine, "occurred_at": "2026-03-13T09:00:00"},  # naive: read as Beijing time
        started_at="2026-03-13T09:00:00+08:00",
        ended_at="2026-03-13T13:10:00+08:00",
    )
    mediation = await county.post("mediation", as_advisor, **mine)
    await county.post("void", as_advisor, **mine, target_event_id=mediation["id"], reason="记错了")
    await county.post("feedback", county.as_county, **mine)
    as_township = bearer(f"township-{county.township}", Role.township_office, county.township)
    await county.post("document", as_township, **{**mine, "occurred_at": "2026-02-03T23:59:59.123456+08:00"})
    await county.post("lecture", as_advisor, **{**mine, "village_code": other})
    return {village: 10, other: 1}


async def test_an_exported_ledger_imported_into_an_empty_system_is_the_same_ledger(
    infrastructure: Infrastructure, intake: httpx.AsyncClient, admin_pool: asyncpg.Pool, tag: str
) -> None:
    county = County(fresh_county(), intake)
    registered = await registry(county)
    for kind, body in registered:
        await county.send(kind, county.as_county, body)
    counts = await history(county)
    total = sum(counts.values())
    first = ledger_app(infrastructure, "ledger", None)
    second = ledger_app(infrastructure, ADMIN, f"ledger_{tag}_b")
    third = ledger_app(infrastructure, ADMIN, f"ledger_{tag}_c")
    async with (
        first.router.lifespan_context(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://ledger") as ledger,
    ):
        # The assignment is a separate topic from the records: the answers are read once the ledger holds
        # it, so that `unassigned` says what the terms say (the lecture in the other village is outside).
        async def file_of_village() -> dict[str, Any]:
            answer = await ledger.get(f"/v1/villages/{county.village(0)}", headers=county.as_county)
            found: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
            return found

        await eventually(
            file_of_village,
            lambda found: county.advisor in {item["advisor_id"] for item in found.get("advisors", [])},
            what="the assignment in the ledger",
        )
        native = {v: await wait_for(ledger, v, county.as_county, n) for v, n in counts.items()}
        exported = await ledger.get(
            f"/v1/regions/{county.code}/export", params={"format": "xlsx"}, headers=county.as_county
        )
        assert exported.status_code == 200, exported.text

        # -- checks first: a dry run and a file with errors publish nothing ---------------------------
        before = await end_offsets(infrastructure.kafka)
        dry = await intake.post(
            "/v1/imports", content=exported.content, params={"dry_run": "true"}, headers=county.as_county
        )
        assert dry.status_code == 200, dry.text
        assert dry.json()["import"] | {"by_type": None} == {
            "status": "valid",
            "dry_run": True,
            "rows": total,
            "by_type": None,
            "published": 0,
        }
        assert dry.json()["import"]["by_type"]["document.reviewed"] == 2
        for role, region in ((Role.township_office, county.township), (Role.county_bureau, "110101")):
            refused = await intake.post(
                "/v1/imports", content=exported.content, headers=bearer("x", role, region)
            )
            assert refused.status_code == 403, refused.text
            rules = {(f["field"], f["rule"]) for f in refused.json()["error"]["fields"]}
            assert rules == (
                {("role", "county_level_or_above")}
                if role is Role.township_office
                else {(layout.VILLAGE_CODE, "within_region")}
            )
        csv_export = await ledger.get(
            f"/v1/regions/{county.code}/export", params={"format": "csv"}, headers=county.as_county
        )
        rows = list(csv.reader(io.StringIO(csv_export.content.decode("utf-8-sig"))))
        rows[3][layout.HEADERS.index(layout.EVENT_TYPE)] = "consultation.recordd"  # the file's 4th row
        spoilt = io.StringIO()
        csv.writer(spoilt).writerows(rows)
        bad = await intake.post(
            "/v1/imports", content=spoilt.getvalue().encode(), headers={**county.as_county, **CSV_TYPE}
        )
        assert bad.status_code == 422, bad.text
        assert [(f["row"], f["field"], f["rule"]) for f in bad.json()["error"]["fields"]] == [
            (4, layout.EVENT_TYPE, "service_record_type")
        ]
        assert bad.json()["import"]["published"] == 0
        assert await end_offsets(infrastructure.kafka) == before, "a check published something"

        # -- the empty system: registry set up again, then the file ------------------------------------
        await start_empty(infrastructure, second)
        async with (
            second.router.lifespan_context(second),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=second), base_url="http://ledger-b"
            ) as ledger_b,
        ):
            for kind, body in registered:
                await county.send(kind, county.as_county, body)
            imported = await intake.post("/v1/imports", content=exported.content, headers=county.as_county)
            assert imported.status_code == 200, imported.text
            assert imported.json()["import"]["status"] == "imported"
            assert imported.json()["import"]["published"] == total
            copies = {}
            for village, count in counts.items():
                # The registry and the records are separate topics: an entry's `unassigned` is read against
                # the assignment the empty ledger may apply a moment after the records. The answer settles.
                async def copy_of(village: str = village, count: int = count) -> bytes:
                    return await wait_for(ledger_b, village, county.as_county, count)

                copies[village] = await eventually(
                    copy_of,
                    lambda got, village=village: (
                        hash_free(got, imported=True)  # type: ignore[misc]
                        == hash_free(native[village], imported=False)
                    ),
                    seconds=60,
                    what=f"the imported ledger of {village} equal to the native one",
                )
            for village in counts:
                # Native records imported: the same answer, but for the marker (and the hash over it).
                assert hash_free(copies[village], imported=True) == hash_free(native[village], imported=False)
                assert offset_free(copies[village]) != offset_free(native[village])  # the marker shows
                verified = await ledger_b.get(
                    f"/v1/villages/{village}/verification", headers=county.as_county
                )
                assert verified.json()["intact"] is True, verified.text
            # The first ledger took the imported copies for what they are: duplicates, not conflicts.
            conflicts = await ledger.get("/v1/conflicts", headers=county.as_county)
            ids = {
                entry["event_id"] for answer in native.values() for entry in orjson.loads(answer)["entries"]
            }
            assert ids.isdisjoint({item["event_id"] for item in conflicts.json()["conflicts"]}), (
                conflicts.text
            )
            assert {v: len(await entries(ledger, v, county.as_county)) for v in counts} == counts
            again = await ledger_b.get(
                f"/v1/regions/{county.code}/export", params={"format": "csv"}, headers=county.as_county
            )

        # -- a ledger of imported records, exported and imported again (the command line): byte for byte
        await start_empty(infrastructure, third)
        async with (
            third.router.lifespan_context(third),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=third), base_url="http://ledger-c"
            ) as ledger_c,
        ):
            for kind, body in registered:
                await county.send(kind, county.as_county, body)
            output = await run_cli(infrastructure, again.content, county)
            assert f"imported: {total} rows, {total} published" in output, output
            assert f"published {total}/{total} rows (100.0 %)" in output, output
            for village, count in counts.items():

                async def copy_c(village: str = village, count: int = count) -> bytes:
                    return await wait_for(ledger_c, village, county.as_county, count)

                answer = await eventually(
                    copy_c,
                    lambda got, village=village: offset_free(got) == offset_free(copies[village]),  # type: ignore[misc]
                    seconds=60,
                    what=f"the third ledger of {village} equal to the second",
                )
                assert offset_free(answer) == offset_free(copies[village])  # byte for byte


async def run_cli(infrastructure: Infrastructure, data: bytes, county: County) -> str:
    """`python -m services.intake import FILE` as an operator runs it: intake's settings, a token."""
    folder = ROOT / ".local" / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"import-{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    token = county.as_county["Authorization"].removeprefix("Bearer ")
    environment = {
        **infrastructure.kafka_environment("intake"),
        "VC_JWT_SECRET": SECRET,
        "VC_IMPORT_TOKEN": token,
    }
    assert set(KAFKA_VARIABLES) & set(environment)
    try:
        checked = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.intake", "import", str(path), "--dry-run"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "valid: 11 rows, 0 published" in checked.stdout
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.intake", "import", str(path)],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout
    finally:
        path.unlink(missing_ok=True)
