"""The ledger fed through intake, against the real broker and database."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from openpyxl import load_workbook

from contracts.envelope import Event
from contracts.events import AdvisorRegistered
from contracts.examples import example_fields
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock, SystemClock
from plumbing.rebuild import rebuild
from services.assessment.projection import assessment_projection
from services.assessment.settings import AssessmentSettings
from services.dashboard.projection import dashboard_projection
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.rules import KIND_BY_NAME
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.projection import ledger_projection
from services.ledger.settings import LedgerSettings
from tests.support.infrastructure import KAFKA_VARIABLES, Infrastructure
from tests.support.kafka_io import read_topic, send_all
from tests.support.places import fresh_county
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SECRET = "ledger-integration-secret-long-enough-for-hs256"


@dataclass
class Place:
    """A county of its own for each test, so tests never share a village."""

    county: str

    @property
    def township(self) -> str:
        return self.county + "101"

    def village(self, number: int = 0) -> str:
        return f"{self.township}{201 + number:03d}"


def headers(subject: str, role: Role, region: str) -> dict[str, str]:
    settings = IntakeSettings(jwt_secret=SECRET)
    signed = mint_token(settings, subject=subject, role=role, region_code=region, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {signed}"}


@dataclass
class Stack:
    intake: httpx.AsyncClient
    ledger: httpx.AsyncClient
    place: Place
    settings: LedgerSettings

    @property
    def county_headers(self) -> dict[str, str]:
        return headers(f"county-{self.place.county}", Role.county_bureau, self.place.county)

    def advisor_headers(self, advisor: str) -> dict[str, str]:
        return headers(advisor, Role.advisor, self.place.county)

    async def post(self, kind: str, as_headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
        body = {"id": str(uuid.uuid4()), **body, **fields}
        answer = await self.intake.post(KIND_BY_NAME[kind].path, json=body, headers=as_headers)
        assert answer.status_code == 202, answer.text
        return body

    async def erase(self, event_id: str, village: str, as_headers: dict[str, str] | None = None) -> Any:
        answer = await self.intake.post(
            "/v1/erasures",
            json={"target_event_id": event_id, "village_code": village, "reason": "data_subject_request"},
            headers=as_headers or self.county_headers,
        )
        assert answer.status_code == 202, answer.text
        return answer.json()

    async def ledger_of(self, village: str, **params: Any) -> dict[str, Any]:
        answer = await self.ledger.get(
            f"/v1/villages/{village}/ledger", params=params, headers=self.county_headers
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def wait_for_entries(self, village: str, count: int) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]]:
            return list((await self.ledger_of(village, limit=500))["entries"])

        return await eventually(probe, lambda found: len(found) >= count, seconds=60, what=f"{count} entries")

    async def assign(self, advisor: str, village: str) -> None:
        await self.post("advisor", self.county_headers, advisor_id=advisor, name=f"顾问{advisor[-4:]}")
        await self.post(
            "assignment",
            self.county_headers,
            advisor_id=advisor,
            village_code=village,
            term_start="2026-01-01",
            term_end="2026-12-31",
        )

        # The assignment travels on `registry`, the records on `village-services`: the ledger applies the
        # two topics independently, so wait until the file shows the term before judging "unassigned".
        async def file_text() -> str:
            answer = await self.ledger.get(f"/v1/villages/{village}", headers=self.county_headers)
            return answer.text if answer.status_code == 200 else ""

        await eventually(file_text, lambda text: advisor in text, seconds=60, what="the assignment")


def projection_settings(infrastructure: Infrastructure, service: str) -> dict[str, Any]:
    return {
        **infrastructure.kafka_settings(service),
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "poll_timeout_ms": 100,
    }


def ledger_settings(infrastructure: Infrastructure, **changes: Any) -> LedgerSettings:
    values: dict[str, Any] = {
        **infrastructure.kafka_settings("ledger"),
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "batch_max_records": 500,
        "poll_timeout_ms": 100,
        **changes,
    }
    return LedgerSettings(**values)


@pytest.fixture
async def stack(infrastructure: Infrastructure, topics: None) -> AsyncIterator[Stack]:
    intake_app = create_intake(
        IntakeSettings(
            **infrastructure.kafka_settings("intake"),
            database_url=infrastructure.database_url,
            jwt_secret=SECRET,
        ),
        ManualClock(NOW),
    )
    settings = ledger_settings(infrastructure)
    ledger_app = create_ledger(settings, ManualClock(NOW))
    place = Place(fresh_county())
    async with intake_app.router.lifespan_context(intake_app), ledger_app.router.lifespan_context(ledger_app):
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=intake_app), base_url="http://intake"
            ) as intake,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=ledger_app), base_url="http://ledger"
            ) as ledger,
        ):
            yield Stack(intake, ledger, place, settings)


SERVICE_KINDS = ["consultation", "mediation", "lecture", "legal_aid", "visit", "document", "risk_report"]


async def test_records_of_every_kind_appear_in_order_with_sequence_numbers_and_origin(stack: Stack) -> None:
    village = stack.place.village()
    advisor = f"adv-{stack.place.county}-1"
    await stack.assign(advisor, village)
    sent = [
        await stack.post(kind, stack.advisor_headers(advisor), advisor_id=advisor, village_code=village)
        for kind in SERVICE_KINDS
    ]
    # A naive time is read as Asia/Shanghai and comes back from PostgreSQL in UTC: the chain must hold.
    sent.append(
        await stack.post(
            "document",
            stack.advisor_headers(advisor),
            advisor_id=advisor,
            village_code=village,
            occurred_at="2026-03-14T09:30:00",
        )
    )
    sent.append(await stack.post("feedback", stack.county_headers, advisor_id=advisor, village_code=village))

    entries = await stack.wait_for_entries(village, len(sent))
    assert [entry["event_id"] for entry in entries] == [body["id"] for body in sent]
    assert [entry["sequence"] for entry in entries] == list(range(1, len(sent) + 1))
    for entry in entries:
        assert entry["recorded_at"] == NOW.isoformat()
        assert entry["origin"]["topic"] == "village-services"
        assert entry["unassigned"] is False
    assert entries[0]["recorded_by"] == advisor
    assert entries[-1]["recorded_by"] == f"county-{stack.place.county}"
    consultation = entries[0]
    assert consultation["personal"]["requester"]["name"] == "张三"
    assert "requester" not in consultation["fields"]

    file = (await stack.ledger.get(f"/v1/villages/{village}", headers=stack.county_headers)).json()
    assert file["entries"] == len(sent)
    assert [item["advisor_id"] for item in file["advisors"]] == [advisor]

    check = (
        await stack.ledger.get(f"/v1/villages/{village}/verification", headers=stack.county_headers)
    ).json()
    assert check == {"intact": True, "villages_checked": 1, "first_broken": None}


async def test_a_record_by_an_advisor_not_assigned_that_day_is_kept_and_flagged(stack: Stack) -> None:
    village = stack.place.village(1)
    await stack.assign(f"adv-{stack.place.county}-on", village)
    stranger = f"adv-{stack.place.county}-off"
    body = await stack.post("consultation", stack.county_headers, advisor_id=stranger, village_code=village)
    await stack.post(
        "lecture", stack.county_headers, advisor_id=f"adv-{stack.place.county}-on", village_code=village
    )
    entries = await stack.wait_for_entries(village, 2)
    flags = {entry["event_id"]: entry["unassigned"] for entry in entries}
    assert flags[body["id"]] is True
    assert list(flags.values()).count(True) == 1


async def test_voids_mark_their_target_and_odd_voids_are_kept_and_flagged(stack: Stack) -> None:
    village = stack.place.village(2)
    advisor = f"adv-{stack.place.county}-v"
    as_advisor = stack.advisor_headers(advisor)
    target = await stack.post("mediation", as_advisor, advisor_id=advisor, village_code=village)
    kept = await stack.post("mediation", as_advisor, advisor_id=advisor, village_code=village)
    first_void = await stack.post(
        "void",
        as_advisor,
        advisor_id=advisor,
        village_code=village,
        target_event_id=target["id"],
        reason="录入错误",
    )
    second_void = await stack.post(
        "void",
        as_advisor,
        advisor_id=advisor,
        village_code=village,
        target_event_id=target["id"],
        reason="重复更正",
    )
    unknown_void = await stack.post(
        "void",
        as_advisor,
        advisor_id=advisor,
        village_code=village,
        target_event_id=str(uuid.uuid4()),
        reason="无",
    )
    entries = {entry["event_id"]: entry for entry in await stack.wait_for_entries(village, 5)}
    assert entries[target["id"]]["voided"] is True
    assert entries[target["id"]]["voided_by"]["event_id"] == first_void["id"]
    assert entries[kept["id"]]["voided"] is False
    assert entries[first_void["id"]]["void"]["status"] == "applied"
    assert entries[second_void["id"]]["void"]["status"] == "already_voided"
    assert entries[unknown_void["id"]]["void"]["status"] == "unknown_target"
    assert len(entries) == 5, "a void is an entry of its own: nothing was removed"

    detail = (await stack.ledger.get(f"/v1/entries/{target['id']}", headers=stack.county_headers)).json()
    assert [item["status"] for item in detail["corrections"]] == ["applied", "already_voided"]
    assert detail["corrections"][0]["reason"] == "录入错误"

    only_voided = await stack.ledger_of(village, voided="true")
    assert [entry["event_id"] for entry in only_voided["entries"]] == [target["id"]]
    valid = await stack.ledger_of(village, voided="false", kind="mediation.recorded")
    assert [entry["event_id"] for entry in valid["entries"]] == [kept["id"]]


async def test_the_same_id_with_other_content_is_kept_out_and_listed_as_a_conflict(stack: Stack) -> None:
    village = stack.place.village(3)
    advisor = f"adv-{stack.place.county}-c"
    first = await stack.post(
        "lecture", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village
    )
    await stack.post("lecture", stack.advisor_headers(advisor), **{**first, "attendees": 999})
    await stack.post(
        "lecture", stack.advisor_headers(advisor), **first
    )  # a plain retry: a duplicate, not a conflict
    marker = await stack.post(
        "document", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village
    )
    entries = await stack.wait_for_entries(village, 2)
    assert [entry["event_id"] for entry in entries] == [first["id"], marker["id"]]
    assert entries[0]["fields"]["attendees"] == first["attendees"]
    conflicts = (await stack.ledger.get("/v1/conflicts", headers=stack.county_headers)).json()["conflicts"]
    assert [item["event_id"] for item in conflicts if item["village_code"] == village] == [first["id"]]


async def test_a_retry_re_sent_by_the_township_office_is_a_duplicate_not_a_conflict(stack: Stack) -> None:
    """The same id and content, sent again by another person allowed to send it (a township office
    re-sending an advisor's offline batch): judged on what the client sent, not on who sent it."""
    village = stack.place.village(5)
    advisor = f"adv-{stack.place.county}-r"
    township = headers(f"township-{stack.place.township}", Role.township_office, stack.place.township)
    first = await stack.post(
        "consultation", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village
    )
    await stack.post("consultation", township, **first)
    marker = await stack.post(
        "document", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village
    )
    entries = await stack.wait_for_entries(village, 2)
    assert [entry["event_id"] for entry in entries] == [first["id"], marker["id"]]
    conflicts = (await stack.ledger.get("/v1/conflicts", headers=stack.county_headers)).json()["conflicts"]
    assert [item["event_id"] for item in conflicts if item["village_code"] == village] == []


async def test_pages_never_skip_or_repeat_while_records_keep_arriving(stack: Stack) -> None:
    village = stack.place.village(4)
    advisor = f"adv-{stack.place.county}-p"
    as_advisor = stack.advisor_headers(advisor)
    before = [
        await stack.post("consultation", as_advisor, advisor_id=advisor, village_code=village)
        for _ in range(30)
    ]
    await stack.wait_for_entries(village, 30)

    async def keep_writing() -> list[dict[str, Any]]:
        return [
            await stack.post("consultation", as_advisor, advisor_id=advisor, village_code=village)
            for _ in range(30)
        ]

    writer = asyncio.create_task(keep_writing())
    for order in ("oldest_first", "newest_first"):
        seen: list[int] = []
        cursor = None
        first_page = True
        while first_page or cursor:
            params: dict[str, Any] = {"limit": 7, "order": order}
            if cursor:
                params["cursor"] = cursor
            page = await stack.ledger_of(village, **params)
            seen.extend(entry["sequence"] for entry in page["entries"])
            cursor = page["next_cursor"]
            first_page = False
            await asyncio.sleep(0)
        assert len(seen) == len(set(seen)), "a page repeated an entry"
        assert seen == sorted(seen, reverse=order == "newest_first")
        if order == "oldest_first":
            assert seen[:30] == list(range(1, 31)), "a page skipped an entry"
        else:
            assert set(range(1, 31)) <= set(seen)
    after = await writer
    entries = await stack.wait_for_entries(village, 60)
    assert [entry["event_id"] for entry in entries] == [body["id"] for body in before + after]


async def test_exports_open_in_real_readers_with_rows_and_totals(stack: Stack) -> None:
    village = stack.place.village(5)
    advisor = f"adv-{stack.place.county}-x"
    await stack.assign(advisor, village)
    as_advisor = stack.advisor_headers(advisor)
    for person_times in (1, 2, 3):
        await stack.post(
            "consultation", as_advisor, advisor_id=advisor, village_code=village, person_times=person_times
        )
    voided = await stack.post(
        "consultation", as_advisor, advisor_id=advisor, village_code=village, person_times=50
    )
    await stack.post("visit", as_advisor, advisor_id=advisor, village_code=village)
    await stack.post(
        "void",
        as_advisor,
        advisor_id=advisor,
        village_code=village,
        target_event_id=voided["id"],
        reason="错",
    )
    await stack.post("consultation", as_advisor, advisor_id=advisor, village_code=stack.place.village(6))
    await stack.wait_for_entries(village, 6)
    await stack.wait_for_entries(stack.place.village(6), 1)

    answer = await stack.ledger.get(
        f"/v1/villages/{village}/export", params={"format": "csv"}, headers=stack.county_headers
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[1][:3] == ["序号", "发生时间", "类别"]
    body_rows = [row for row in rows[2:] if row and row[0].isdigit()]
    assert [row[0] for row in body_rows] == ["1", "2", "3", "4", "5", "6"]
    assert [row[9] for row in body_rows].count("已作废") == 1
    totals = {row[0]: row for row in rows if row and row[0] in ("法律咨询", "驻村服务", "已作废记录")}
    assert totals["法律咨询"][1] == "法律咨询 3 件，6 人次"
    assert totals["驻村服务"][1] == "驻村服务 1 次，共 4.0 小时"
    assert totals["已作废记录"][2] == "1"

    answer = await stack.ledger.get(
        f"/v1/villages/{village}/export", params={"format": "xlsx"}, headers=stack.county_headers
    )
    workbook = load_workbook(io.BytesIO(answer.content), read_only=True)
    sheet = workbook[village]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[1][0] == "序号"
    assert [row[0] for row in values[2:8]] == [1, 2, 3, 4, 5, 6]
    assert any(len(row) > 2 and row[0] == "法律咨询" and row[2] == 3 for row in values)

    answer = await stack.ledger.get(f"/v1/regions/{stack.place.county}/export", headers=stack.county_headers)
    workbook = load_workbook(io.BytesIO(answer.content), read_only=True)
    assert {village, stack.place.village(6)} <= set(workbook.sheetnames)

    answer = await stack.ledger.get(f"/v1/advisors/{advisor}/export", headers=stack.county_headers)
    workbook = load_workbook(io.BytesIO(answer.content), read_only=True)
    assert sorted(workbook.sheetnames) == sorted([village, stack.place.village(6)])


async def test_access_follows_the_region_and_personal_fields_are_masked_by_role(stack: Stack) -> None:
    village = stack.place.village(7)
    advisor = f"adv-{stack.place.county}-m"
    await stack.assign(advisor, village)
    body = await stack.post(
        "consultation", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village
    )
    await stack.wait_for_entries(village, 1)
    url = f"/v1/villages/{village}/ledger"
    elsewhere = headers(
        "county-other", Role.county_bureau, "379999" if stack.place.county != "379999" else "379998"
    )
    assert (await stack.ledger.get(url, headers=elsewhere)).status_code == 403
    assert (await stack.ledger.get(url)).status_code == 401
    prefecture = headers("city", Role.prefecture_bureau, stack.place.county[:4])
    masked = (await stack.ledger.get(url, headers=prefecture)).json()["entries"][0]
    assert masked["personal"] == {"requester": "***", "summary": "***"}
    township = headers("town", Role.township_office, stack.place.township)
    shown = (await stack.ledger.get(url, headers=township)).json()["entries"][0]
    assert shown["personal"]["summary"] == body["summary"]
    own = (await stack.ledger.get(url, headers=stack.advisor_headers(advisor))).json()["entries"][0]
    assert own["personal"]["requester"]["phone"] == body["requester"]["phone"]
    other_advisor = await stack.ledger.get(url, headers=stack.advisor_headers("someone-else"))
    assert other_advisor.status_code == 403, "an advisor reads only the files of villages they serve"

    erased = await stack.erase(body["id"], village)
    assert erased["target_event_id"] == body["id"]
    after = (await stack.ledger.get(url, headers=township)).json()["entries"][0]
    assert after["personal"] is None
    assert after["personal_erased"] is True
    check = (
        await stack.ledger.get(f"/v1/villages/{village}/verification", headers=stack.county_headers)
    ).json()
    assert check["intact"] is True, "erasing personal data must not break the chain"


async def test_tampering_in_the_database_is_caught_at_the_first_broken_link(
    stack: Stack, admin_pool: asyncpg.Pool
) -> None:
    village = stack.place.village(8)
    advisor = f"adv-{stack.place.county}-t"
    for _ in range(4):
        await stack.post("lecture", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village)
    await stack.wait_for_entries(village, 4)
    await admin_pool.execute(
        """UPDATE ledger.entries SET fields = jsonb_set(fields, '{attendees}', '500')
           WHERE village_code = $1 AND sequence = 3""",
        village,
    )
    check = (
        await stack.ledger.get(f"/v1/regions/{stack.place.county}/verification", headers=stack.county_headers)
    ).json()
    assert check["intact"] is False
    assert check["first_broken"]["village_code"] == village
    assert check["first_broken"]["sequence"] == 3

    command = subprocess.run(
        [sys.executable, "-m", "services.ledger", "verify", village],
        env={**os.environ, "DATABASE_URL": stack.settings.database_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert command.returncode == 1
    assert f"village {village}, entry 3" in command.stdout


LEDGER_TABLES = {
    "entries": "SELECT * FROM {schema}.entries WHERE village_code LIKE $1 ORDER BY village_code, sequence",
    "entry_personal": """SELECT p.* FROM {schema}.entry_personal p JOIN {schema}.entries e USING (event_id)
                         WHERE e.village_code LIKE $1 ORDER BY p.event_id""",
    "voids": """SELECT v.* FROM {schema}.voids v JOIN {schema}.entries e ON e.event_id = v.void_event_id
                WHERE e.village_code LIKE $1 ORDER BY v.void_event_id""",
    "village_files": "SELECT * FROM {schema}.village_files WHERE village_code LIKE $1 ORDER BY village_code",
    "assignments": "SELECT * FROM {schema}.assignments WHERE village_code LIKE $1 ORDER BY 1, 2, 3",
}


async def snapshot(pool: asyncpg.Pool, prefix: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [tuple(row) for row in await pool.fetch(query.format(schema="ledger"), prefix + "%")]
        for table, query in LEDGER_TABLES.items()
    }


async def test_a_rebuild_from_offset_zero_gives_an_identical_ledger(
    infrastructure: Infrastructure, stack: Stack, admin_pool: asyncpg.Pool
) -> None:
    advisor = f"adv-{stack.place.county}-r"
    as_advisor = stack.advisor_headers(advisor)
    await stack.assign(advisor, stack.place.village(9))
    target = None
    for number in range(12):
        village = stack.place.village(9 + number % 3)
        body = await stack.post("consultation", as_advisor, advisor_id=advisor, village_code=village)
        target = target or body
    await stack.post(
        "void",
        as_advisor,
        advisor_id=advisor,
        village_code=stack.place.village(9),
        target_event_id=target["id"],
        reason="错",
    )
    await stack.wait_for_entries(stack.place.village(9), 5)
    await stack.wait_for_entries(stack.place.village(11), 4)
    before = await snapshot(admin_pool, stack.place.county)
    assert len(before["entries"]) == 13

    report = await rebuild(
        ledger_projection(stack.settings.personal_digest_key.encode()),
        stack.settings,
        SystemClock(),
        drop_retired=True,
    )
    assert report.events_applied >= 13
    after = await snapshot(admin_pool, stack.place.county)
    assert after == before

    # The same with the partitions split between two processes (`rebuild --workers 2`): the hash chains,
    # kept per village, come out identical, and every event is applied once.
    kafka_env = infrastructure.kafka_environment("ledger")
    settings_env = [
        *(f"{name}={kafka_env[name]}" for name in KAFKA_VARIABLES if name in kafka_env),
        f"DATABASE_URL={stack.settings.database_url}",
        f"VC_PERSONAL_DIGEST_KEY={stack.settings.personal_digest_key}",
        "VC_LOG_LEVEL=WARNING",
    ]
    started: list[tuple[int, int]] = []

    def part_command(part: int, parts: int) -> list[str]:
        started.append((part, parts))
        where = ["--part", str(part), "--of", str(parts)]
        return ["env", *settings_env, sys.executable, "-m", "services.ledger", "rebuild-part", *where]

    parallel = await rebuild(
        ledger_projection(stack.settings.personal_digest_key.encode()),
        stack.settings,
        SystemClock(),
        drop_retired=True,
        workers=2,
        part_command=part_command,
    )
    assert started == [(0, 2), (1, 2)]
    assert parallel.events_applied == await admin_pool.fetchval(
        "SELECT count(*) FROM ledger.processed_events"
    )
    assert await snapshot(admin_pool, stack.place.county) == before


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_crash_in_the_middle_of_a_batch_loses_and_duplicates_nothing(
    infrastructure: Infrastructure, stack: Stack, admin_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    village = stack.place.village(12)
    advisor = f"adv-{stack.place.county}-k"
    # The in-process ledger of the fixture stops, so that the process below owns every partition.
    await stack.ledger._transport.app.state.host.stop()  # type: ignore[attr-defined]
    batch = {
        "records": [
            {
                "kind": "consultation",
                "record": {
                    **{
                        k: v for k, v in example_fields("consultation.recorded").items() if k != "recorded_by"
                    },
                    "id": str(uuid.uuid4()),
                    "advisor_id": advisor,
                    "village_code": village,
                },
            }
            for _ in range(300)
        ]
    }
    answer = await stack.intake.post("/v1/batch", json=batch, headers=stack.advisor_headers(advisor))
    assert answer.json()["accepted"] == 300
    env = {
        **infrastructure.kafka_environment("ledger"),
        "VC_JWT_SECRET": SECRET,
        "VC_BATCH_MAX_RECORDS": "50",
        "VC_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "ledger.log"
    with log.open("wb") as out:
        crashing = subprocess.Popen(
            [sys.executable, "-m", "tests.support.failpoints", "ledger"],
            env={**env, "VC_FAILPOINTS": "mid_batch=3", "VC_HTTP_PORT": str(free_port())},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    async def exited() -> int | None:
        return crashing.poll()

    assert await eventually(exited, lambda code: code is not None, seconds=120, what="the crash") == 86, (
        log.read_text()[-3000:]
    )
    with log.open("ab") as out:
        survivor = subprocess.Popen(
            [sys.executable, "-m", "services.ledger"],
            env={**env, "VC_HTTP_PORT": str(free_port())},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def count() -> int:
            return int(
                await admin_pool.fetchval(
                    "SELECT count(*) FROM ledger.entries WHERE village_code = $1", village
                )
            )

        await eventually(count, lambda n: n >= 300, seconds=120, what="the survivor's catch-up")
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=60)
    rows = await admin_pool.fetch(
        "SELECT event_id, sequence FROM ledger.entries WHERE village_code = $1 ORDER BY sequence", village
    )
    assert [row["sequence"] for row in rows] == list(range(1, 301))
    assert {str(row["event_id"]) for row in rows} == {item["record"]["id"] for item in batch["records"]}
    head = await admin_pool.fetchval(
        "SELECT last_sequence FROM ledger.village_files WHERE village_code = $1", village
    )
    assert head == 300


async def test_an_erased_value_is_nowhere_after_every_projection_is_rebuilt(
    stack: Stack, admin_pool: asyncpg.Pool, infrastructure: Infrastructure, capsys: pytest.CaptureFixture[str]
) -> None:
    """PIPL Art. 47 (issue 12, finding 1): the erasure lasts through a replay of everything, and the value
    is found nowhere — not in the API, the exports, any PostgreSQL schema, any Kafka topic or the logs."""
    village = stack.place.village(20)
    advisor = f"adv-{stack.place.county}-e"
    as_advisor = stack.advisor_headers(advisor)
    marker = uuid.uuid4().hex[:12]
    name, phone, summary = f"王{marker}", f"139{int(marker, 16) % 10**8:08d}", f"宅基地纠纷{marker}"
    body = await stack.post(
        "consultation",
        as_advisor,
        advisor_id=advisor,
        village_code=village,
        summary=summary,
        requester={"name": name, "phone": phone},
    )
    kept = await stack.post("consultation", as_advisor, advisor_id=advisor, village_code=village)
    await stack.wait_for_entries(village, 2)
    township = headers("town", Role.township_office, stack.place.township)
    url = f"/v1/villages/{village}/ledger"
    before = (await stack.ledger.get(url, headers=township)).json()["entries"]
    assert before[0]["personal"] == {"summary": summary, "requester": {"name": name, "phone": phone}}
    on_the_topic = b"".join(
        record.value or b"" for record in await read_topic(infrastructure.kafka, "village-services")
    )
    assert marker.encode() not in on_the_topic, "personal fields travel sealed, never in plain text"
    assert body["id"].encode() in on_the_topic

    await stack.erase(body["id"], village)
    again = await stack.intake.post("/v1/consultations", json=body, headers=as_advisor)
    assert again.status_code == 410, "a retry of an erased record may not bring it back"
    assert again.json()["error"]["fields"][0]["rule"] == "personal_data_erased"

    async def erasure_applied() -> int:
        return int(
            await admin_pool.fetchval(
                "SELECT count(*) FROM ledger.erasures WHERE target_event_id = $1", uuid.UUID(body["id"])
            )
        )

    await eventually(erasure_applied, lambda count: count == 1, seconds=60, what="the erasure event applied")
    ledger_settings_now = stack.settings
    for projection, settings in (
        (ledger_projection(ledger_settings_now.personal_digest_key.encode()), ledger_settings_now),
        (assessment_projection(), AssessmentSettings(**projection_settings(infrastructure, "assessment"))),
        (dashboard_projection(), DashboardSettings(**projection_settings(infrastructure, "dashboard"))),
    ):
        await rebuild(projection, settings, SystemClock(), drop_retired=True)

    after = {
        entry["event_id"]: entry
        for entry in (await stack.ledger.get(url, headers=township)).json()["entries"]
    }
    assert after[body["id"]]["personal"] is None
    assert after[body["id"]]["personal_erased"] is True
    assert after[kept["id"]]["personal"]["summary"] == kept["summary"], "only the erased record lost its data"
    assert (
        await stack.ledger.get(f"/v1/villages/{village}/verification", headers=stack.county_headers)
    ).json()["intact"]
    for export in (f"/v1/villages/{village}/export?format=csv", f"/v1/villages/{village}/export?format=xlsx"):
        exported = await stack.ledger.get(export, headers=stack.county_headers)
        assert exported.status_code == 200
        assert marker.encode() not in exported.content
        if export.endswith("xlsx"):
            workbook = load_workbook(io.BytesIO(exported.content), read_only=True)
            cells = [
                str(cell) for sheet in workbook for row in sheet.iter_rows(values_only=True) for cell in row
            ]
            assert not [cell for cell in cells if marker in cell]

    schemas = [
        row["nspname"]
        for row in await admin_pool.fetch(
            """SELECT nspname FROM pg_namespace
               WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'information_schema'"""
        )
    ]
    for schema in schemas:
        tables = await admin_pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        for table in tables:
            found = await admin_pool.fetchval(
                f'SELECT count(*) FROM "{schema}"."{table["tablename"]}" t WHERE t::text LIKE $1',
                f"%{marker}%",
            )
            assert found == 0, f"{schema}.{table['tablename']} still holds the erased value"
    every_topic = [
        record.value or b""
        for topic in ("village-services", "registry", "assessment", "village-services.dlq")
        for record in await read_topic(infrastructure.kafka, topic)
    ]
    assert not [value for value in every_topic if marker.encode() in value]
    assert marker not in capsys.readouterr().out


async def test_an_advisor_cannot_void_another_advisors_record_but_the_township_office_can(
    stack: Stack, admin_pool: asyncpg.Pool
) -> None:
    """Issue 12, finding 4: a void naming its sender but targeting another advisor's record changes
    nothing — in the ledger here, and by the same rule (contracts.events.void_permitted) in the assessment
    and the dashboard (tests/unit/test_personal_sealing.py holds the table of cases)."""
    village = stack.place.village(21)
    victim, intruder = f"adv-{stack.place.county}-v", f"adv-{stack.place.county}-x"
    target = await stack.post(
        "lecture", stack.advisor_headers(victim), advisor_id=victim, village_code=village
    )
    forged = await stack.post(
        "void",
        stack.advisor_headers(intruder),
        advisor_id=intruder,
        village_code=village,
        target_event_id=target["id"],
        reason="not mine",
    )
    entries = await stack.wait_for_entries(village, 2)
    by_id = {entry["event_id"]: entry for entry in entries}
    assert by_id[forged["id"]]["void"]["status"] == "not_permitted"
    assert by_id[target["id"]]["voided"] is False

    office = headers(f"office-{stack.place.township}", Role.township_office, stack.place.township)
    fixed = await stack.post(
        "void", office, advisor_id=victim, village_code=village, target_event_id=target["id"], reason="重复"
    )
    entries = await stack.wait_for_entries(village, 3)
    by_id = {entry["event_id"]: entry for entry in entries}
    assert by_id[fixed["id"]]["void"]["status"] == "applied"
    assert by_id[target["id"]]["voided"] is True
    assert by_id[target["id"]]["voided_by"]["by"] == f"office-{stack.place.township}"


async def test_a_county_cannot_overwrite_an_advisor_another_county_registered(
    stack: Stack, admin_pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    """Issue 12, finding 3: the registering region owns the advisor; another county is refused at the
    door (even in a dry run), and a forged registration on the topic changes nothing downstream."""
    advisor = f"adv-{stack.place.county}-o"
    await stack.post("advisor", stack.county_headers, advisor_id=advisor, name="李律师")
    other_county = "379998" if stack.place.county != "379998" else "379997"
    intruder = headers(f"county-{other_county}", Role.county_bureau, other_county)
    forged = {
        **{k: v for k, v in example_fields("advisor.registered").items() if k != "recorded_by"},
        "id": str(uuid.uuid4()),
        "advisor_id": advisor,
        "name": "冒名顶替",
    }
    for path in ("/v1/registry/advisors?dry_run=true", "/v1/registry/advisors"):
        refused = await stack.intake.post(path, json=forged, headers=intruder)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["fields"][0]["rule"] == "owned_by_another_region"
    batch = await stack.intake.post(
        "/v1/batch", json={"records": [{"kind": "advisor", "record": forged}]}, headers=intruder
    )
    assert batch.json()["results"][0]["error"]["fields"][0]["rule"] == "owned_by_another_region"
    beijing = headers("county-110101", Role.county_bureau, "110101")
    dry_run = await stack.intake.post("/v1/registry/advisors?dry_run=true", json=forged, headers=beijing)
    assert dry_run.status_code == 403

    # Forged straight onto the topic (as if the broker let anyone write): the consumers refuse it too.
    payload = AdvisorRegistered.model_validate(
        {**{k: v for k, v in forged.items() if k != "id"}, "region_code": other_county}
    )
    await send_all(producer, [Event(uuid.uuid4(), "/forged", datetime.now(UTC), payload)])
    marker_village = stack.place.village(22)
    await stack.post(
        "assignment",
        stack.county_headers,
        advisor_id=advisor,
        village_code=marker_village,
        term_start="2026-01-01",
        term_end="2026-12-31",
    )

    async def ledger_advisor() -> Any:
        return await admin_pool.fetchrow(
            """SELECT a.name, a.owner_region,
                      EXISTS (SELECT 1 FROM ledger.assignments s WHERE s.advisor_id = a.advisor_id
                              AND s.village_code = $2) AS marker
               FROM ledger.advisors a WHERE a.advisor_id = $1""",
            advisor,
            marker_village,
        )

    row = await eventually(
        ledger_advisor, lambda row: row is not None and row["marker"], seconds=60, what="marker"
    )
    assert (row["name"], row["owner_region"]) == ("李律师", stack.place.county)

    # The owner, or a region above it, may still change the advisor.
    prefecture = headers("city", Role.prefecture_bureau, stack.place.county[:4])
    await stack.post("advisor", prefecture, advisor_id=advisor, name="李律师（更名）")
    row = await eventually(
        ledger_advisor, lambda row: row["name"] == "李律师（更名）", seconds=60, what="rename"
    )
    assert row["owner_region"] == stack.place.county[:4]


async def test_reads_of_personal_data_and_exports_are_in_the_append_only_access_log(
    stack: Stack, admin_pool: asyncpg.Pool
) -> None:
    village = stack.place.village(23)
    advisor = f"adv-{stack.place.county}-l"
    await stack.post("consultation", stack.advisor_headers(advisor), advisor_id=advisor, village_code=village)
    await stack.wait_for_entries(village, 1)
    township = headers(f"office-{stack.place.township}", Role.township_office, stack.place.township)
    url = f"/v1/villages/{village}/ledger"
    read = await stack.ledger.get(url, params={"purpose": "case_handling"}, headers=township)
    assert read.status_code == 200
    prefecture = headers("city", Role.prefecture_bureau, stack.place.county[:4])
    masked = await stack.ledger.get(url, headers=prefecture)  # sees no personal field: nothing to log
    assert masked.json()["entries"][0]["personal"]["summary"] == "***"
    exported = await stack.ledger.get(
        f"/v1/villages/{village}/export",
        params={"format": "csv"},
        headers={**stack.county_headers, "X-Access-Purpose": "supervision"},
    )
    assert exported.status_code == 200
    bad = await stack.ledger.get(url, params={"purpose": "curiosity"}, headers=township)
    assert bad.status_code == 422

    log = await stack.ledger.get("/v1/audit/access", params={"region": village}, headers=stack.county_headers)
    assert log.status_code == 200, log.text
    rows = [(row["action"], row["subject"], row["purpose"], row["records"]) for row in log.json()["accesses"]]
    assert rows[:2] == [
        ("export", f"county-{stack.place.county}", "supervision", 1),
        ("read_personal", f"office-{stack.place.township}", "case_handling", 1),
    ]
    # before them, the county's own reads while the test waited for the entry (no purpose given)
    assert set(rows[2:]) == {("read_personal", f"county-{stack.place.county}", "unspecified", 1)}
    assert (await stack.ledger.get("/v1/audit/access", headers=township)).status_code == 403
    assert (
        await stack.ledger.get("/v1/audit/access", headers=stack.advisor_headers(advisor))
    ).status_code == 403
    elsewhere = headers(
        "county-x", Role.county_bureau, "379999" if stack.place.county != "379999" else "379998"
    )
    refused = await stack.ledger.get("/v1/audit/access", params={"region": village}, headers=elsewhere)
    assert refused.status_code == 403

    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await admin_pool.execute("DELETE FROM audit.access_log WHERE region_code = $1", village)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await admin_pool.execute(
            "UPDATE audit.access_log SET purpose = 'audit' WHERE region_code = $1", village
        )
