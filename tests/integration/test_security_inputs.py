"""Issue 12 against the real broker and database: one read rule for advisors walked over every GET route of
the ledger, the assessment and the dashboard; ids outside the caller's reach answer 404 like missing ones;
exports stop at `export_max_rows`; and a forged record with a NUL goes to the DLQ of every consumer."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from contracts import ledger_layout as layout
from contracts.envelope import to_kafka_record
from contracts.examples import example_fields
from contracts.topics import VILLAGE_SERVICES, dead_letter_topic
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.tables import csv_line
from services.assessment.app import create_app as create_assessment
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.imports import COMMON_FIELDS
from services.intake.rules import KIND_BY_NAME
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from tests.support.access_matrix import PUBLIC, ROLES, ROUTES, Cell, cells, render
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import read_topic
from tests.support.places import fresh_county
from tests.support.routes import api_routes
from tests.support.samples import sample_event
from tests.support.waiting import eventually

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SECRET = "security-integration-secret-long-enough-for-hs256"
EXPORT_MAX_ROWS = 3

# GET routes that show no advisor's work: operations, the API documents, the page and its files, the public
# notice, who-am-I, region names and the policy in force. Every other GET route is walked below.
NOT_ABOUT_ANYONES_WORK = PUBLIC | {
    "/v1/me",
    "/v1/regions",
    "/v1/regions/{code}/path",
    "/v1/regions/{region_code}/policy",
}
QUERY = {"period": "2026", "month": "2026-03", "year": "2026", "name": "枣庄"}


def bearer(subject: str, role: Role, region: str) -> dict[str, str]:
    settings = IntakeSettings(jwt_secret=SECRET)
    token = mint_token(settings, subject=subject, role=role, region_code=region, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Stack:
    intake: httpx.AsyncClient
    services: dict[str, tuple[FastAPI, httpx.AsyncClient]]
    county: str
    advisor: str
    other: str
    entries: dict[str, str]  # advisor -> one of their entry ids

    @property
    def own_village(self) -> str:
        return f"{self.county}101201"

    @property
    def other_village(self) -> str:
        return f"{self.county}101202"

    @property
    def as_county(self) -> dict[str, str]:
        return bearer(f"county-{self.county}", Role.county_bureau, self.county)

    @property
    def as_advisor(self) -> dict[str, str]:
        return bearer(self.advisor, Role.advisor, self.county)

    def path_values(self, own: bool) -> dict[str, str]:
        advisor = self.advisor if own else self.other
        village = self.own_village if own else self.other_village
        return {
            "advisor_id": advisor,
            "village_code": village,
            "region_code": self.county,
            "year": "2026",
            "event_id": self.entries[advisor],
        }


async def post(intake: httpx.AsyncClient, kind: str, as_headers: dict[str, str], **fields: Any) -> str:
    body = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
    body = {"id": str(uuid.uuid4()), **body, **fields}
    answer = await intake.post(KIND_BY_NAME[kind].path, json=body, headers=as_headers)
    assert answer.status_code == 202, answer.text
    return str(body["id"])


@pytest.fixture
async def stack(infrastructure: Infrastructure, topics: None) -> AsyncIterator[Stack]:
    common: dict[str, Any] = {
        "database_url": infrastructure.database_url,
        "jwt_secret": SECRET,
        "poll_timeout_ms": 100,
    }
    clock = ManualClock(NOW)
    intake_app = create_intake(
        IntakeSettings(
            **infrastructure.kafka_settings("intake"),
            database_url=infrastructure.database_url,
            jwt_secret=SECRET,
        ),
        clock,
    )
    apps = {
        "ledger": create_ledger(
            LedgerSettings(
                **common, **infrastructure.kafka_settings("ledger"), export_max_rows=EXPORT_MAX_ROWS
            ),
            clock,
        ),
        "assessment": create_assessment(
            AssessmentSettings(**common, **infrastructure.kafka_settings("assessment")), clock
        ),
        "dashboard": create_dashboard(
            DashboardSettings(
                **common, **infrastructure.kafka_settings("dashboard"), ledger_url="http://127.0.0.1:9"
            ),
            clock,
        ),
    }
    county = fresh_county()
    async with (
        intake_app.router.lifespan_context(intake_app),
        apps["ledger"].router.lifespan_context(apps["ledger"]),
        apps["assessment"].router.lifespan_context(apps["assessment"]),
        apps["dashboard"].router.lifespan_context(apps["dashboard"]),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=intake_app), base_url="http://intake") as intake,
    ):
        clients = {
            name: (app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"))
            for name, app in apps.items()
        }
        try:
            found = Stack(intake, clients, county, f"adv-{county}-a", f"adv-{county}-b", {})
            as_county = found.as_county
            for advisor, village in ((found.advisor, found.own_village), (found.other, found.other_village)):
                await post(intake, "advisor", as_county, advisor_id=advisor, name=f"顾问{advisor[-1]}")
                await post(
                    intake,
                    "assignment",
                    as_county,
                    advisor_id=advisor,
                    village_code=village,
                    term_start="2026-01-01",
                    term_end="2026-12-31",
                )
                as_advisor = bearer(advisor, Role.advisor, county)
                for _ in range(2):
                    found.entries[advisor] = await post(
                        intake, "consultation", as_advisor, advisor_id=advisor, village_code=village
                    )
            ledger = clients["ledger"][1]

            async def entries_of(village: str) -> int:
                answer = await ledger.get(f"/v1/villages/{village}/ledger", headers=as_county)
                return len(answer.json()["entries"]) if answer.status_code == 200 else 0

            for village in (found.own_village, found.other_village):
                await eventually(
                    lambda village=village: entries_of(village),  # type: ignore[misc]
                    lambda count: count >= 2,
                    what=f"two entries of {village}",
                )

            # The assignments travel on the registry's topic, apart from the records: wait until the ledger
            # knows the advisor's village as theirs too (else their first read could come before it).
            async def own_village_read() -> int:
                answer = await ledger.get(f"/v1/villages/{found.own_village}", headers=found.as_advisor)
                return answer.status_code

            await eventually(own_village_read, lambda status: status == 200, what="the advisor's own village")
            yield found
        finally:
            for _, client in clients.values():
                await client.aclose()


def get_routes(app: FastAPI) -> list[str]:
    return sorted(route.path for route in api_routes(app) if "GET" in route.methods)


def fill(path: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "code":
            return values["village_code"] if path.startswith("/v1/villages/") else values["region_code"]
        return values[name]

    return re.sub(r"\{(\w+)\}", value, path)


async def test_an_advisor_reads_only_their_own_work_and_their_villages_on_every_get_route(
    stack: Stack,
) -> None:
    walked = []
    for name, (app, client) in stack.services.items():
        for route in get_routes(app):
            if route in NOT_ABOUT_ANYONES_WORK:
                continue
            path = fill(route, stack.path_values(own=False))
            answer = await client.get(path, params=QUERY, headers=stack.as_advisor)
            walked.append((name, route, answer.status_code))
            assert answer.status_code in (403, 404), (name, route, answer.status_code, answer.text)
            if answer.status_code == 404:
                assert route == "/v1/entries/{event_id}", (name, route, answer.text)
    assert len(walked) >= 19, walked  # 9 ledger, 5 assessment, 5 dashboard routes today
    own_routes = {
        "ledger": [
            "/v1/villages/{village_code}",
            "/v1/villages/{village_code}/ledger",
            "/v1/villages/{village_code}/verification",
            "/v1/villages/{village_code}/export",
            "/v1/entries/{event_id}",
            "/v1/advisors/{advisor_id}/worklog",
            "/v1/advisors/{advisor_id}/export",
        ],
        "assessment": ["/v1/compliance/{advisor_id}/{village_code}", "/v1/advisors/{advisor_id}/compliance"],
    }
    for name, routes in own_routes.items():
        client = stack.services[name][1]
        for route in routes:
            answer = await client.get(fill(route, stack.path_values(own=True)), headers=stack.as_advisor)
            assert answer.status_code == 200, (name, route, answer.text)


async def test_an_entry_out_of_reach_answers_exactly_like_a_missing_one(stack: Stack) -> None:
    ledger = stack.services["ledger"][1]
    elsewhere = bearer("county-x", Role.county_bureau, "379999" if stack.county != "379999" else "379998")
    out_of_reach = await ledger.get(f"/v1/entries/{stack.entries[stack.advisor]}", headers=elsewhere)
    missing = await ledger.get(f"/v1/entries/{uuid.uuid4()}", headers=elsewhere)
    assert out_of_reach.status_code == missing.status_code == 404
    assert out_of_reach.json()["error"]["code"] == missing.json()["error"]["code"]
    other_advisors = await ledger.get(f"/v1/entries/{stack.entries[stack.other]}", headers=stack.as_advisor)
    assert other_advisors.status_code == 404


async def test_an_export_beyond_export_max_rows_is_a_413_naming_the_limit(stack: Stack) -> None:
    ledger = stack.services["ledger"][1]
    region = await ledger.get(
        f"/v1/regions/{stack.county}/export", params={"format": "csv"}, headers=stack.as_county
    )
    assert region.status_code == 413, region.text
    assert {(f["field"], f["rule"]) for f in region.json()["error"]["fields"]} == {
        ("rows", "export_max_rows")
    }
    village = await ledger.get(
        f"/v1/villages/{stack.own_village}/export", params={"format": "csv"}, headers=stack.as_county
    )
    assert village.status_code == 200
    assert "filename*=UTF-8''" in village.headers["content-disposition"]


async def test_a_forged_record_with_a_nul_goes_to_the_dlq_of_every_consumer(
    stack: Stack, infrastructure: Infrastructure, producer: AIOKafkaProducer
) -> None:
    """Written straight to the topic, past intake: no consumer counts it, each dead-letters it."""
    forged = to_kafka_record(
        sample_event("consultation.recorded", advisor_id=stack.advisor, village_code=stack.own_village)
    )
    value = orjson.loads(forged.value)
    value["summary"] = "forged\x00"
    event_id = dict(forged.headers)["ce_id"]
    await producer.send_and_wait(
        VILLAGE_SERVICES, orjson.dumps(value), key=forged.key, headers=forged.headers
    )

    async def consumers_that_dead_lettered() -> set[str]:
        found = set()
        for item in await read_topic(infrastructure.kafka, dead_letter_topic(VILLAGE_SERVICES)):
            headers = dict(item.headers)
            if headers.get("ce_id") == event_id and "dlq_consumer" in headers:
                found.add(headers["dlq_consumer"].decode())
        return found

    await eventually(
        consumers_that_dead_lettered,
        lambda found: found >= {"ledger", "assessment", "dashboard"},
        what="the forged record in every consumer's DLQ",
    )


OUTSIDE_REGION = {
    "township_office": "110101001",
    "county_bureau": "110101",
    "prefecture_bureau": "1101",
    "province_department": "11",
    "integration": "110101",
    "ministry": "0",  # nothing is outside the country: the same answers as inside
}


def inside_region(county: str, role: str) -> str:
    regions = {"township_office": county + "101", "prefecture_bureau": county[:4]}
    return {**regions, "province_department": county[:2], "ministry": "0"}.get(role, county)


def record_body(kind_path: str, stack: Stack, advisor: str) -> dict[str, Any]:
    kind = next(kind for kind in KIND_BY_NAME.values() if kind.path == kind_path)
    body = {k: v for k, v in example_fields(kind.event_type).items() if k != "recorded_by"}
    body["id"] = str(uuid.uuid4())
    if "advisor_id" in body:
        body["advisor_id"] = advisor
    if "village_code" in body:
        body["village_code"] = stack.own_village
    if kind.event_type == "advisor.registered":
        body["advisor_id"] = f"adv-{stack.county}-{uuid.uuid4().hex[:6]}"
        body["region_code"] = stack.county
    if kind.event_type == "team.registered":
        body["team_id"] = f"team-{stack.county}-{uuid.uuid4().hex[:6]}"  # a team of the caller's own county
        body["members"] = [advisor]
        body["leader_id"] = advisor
        body["region_code"] = stack.county
    if kind.event_type == "region.classified":
        body["code"] = stack.own_village
    if kind.event_type == "policy.published":
        body["region_code"] = stack.county
    return body


def ledger_file(stack: Stack) -> bytes:
    """One lecture of the caller's village in the ledger's export layout (what POST /v1/imports reads)."""
    fields = {k: v for k, v in example_fields("lecture.held").items() if k not in COMMON_FIELDS}
    cells = {
        layout.EVENT_ID: str(uuid.uuid4()),
        layout.VILLAGE_CODE: stack.own_village,
        layout.EVENT_TYPE: "lecture.held",
        layout.ADVISOR: stack.advisor,
        layout.RECORDED_BY: stack.advisor,
        layout.OCCURRED_EXACT: "2019-05-04T10:00:00+08:00",
        layout.RECORD_JSON: orjson.dumps(fields).decode(),
    }
    return (csv_line(layout.HEADERS) + csv_line([cells.get(name, "") for name in layout.HEADERS])).encode()


def matches(cell: Cell, status: int, body: bytes, village: str, entry: bool) -> bool:
    if cell is Cell.refused:
        return status == 403
    if cell is Cell.not_found:
        return status == 404
    if cell is Cell.filtered:
        return status == 200 and village.encode() not in body
    # allowed: not refused (a region the dashboard has no figures for may still be a 404)
    return status == 200 if entry else status not in (401, 403)


@dataclass(frozen=True)
class Attempt:
    """One cell: who calls (token and region), about whose work, and what the matrix expects."""

    where: str
    headers: dict[str, str]
    region: str
    own: bool
    expected: Cell


def attempts(stack: Stack, role: str, rule_name: str) -> list[Attempt]:
    inside, outside = cells(rule_name, role)
    if role == "advisor":
        token = bearer(stack.advisor, Role.advisor, stack.county)
        return [
            Attempt("own work", token, stack.county, True, Cell.allowed if inside is Cell.own else inside),
            Attempt("another's work", token, stack.county, False, outside),
        ]
    region, elsewhere = inside_region(stack.county, role), OUTSIDE_REGION[role]
    return [
        Attempt("inside", bearer(f"{role}-in", Role(role), region), region, True, inside),
        Attempt("outside", bearer(f"{role}-out", Role(role), elsewhere), elsewhere, True, outside),
    ]


async def test_every_cell_of_the_access_matrix(stack: Stack) -> None:
    """Issue 12: one test checks every cell of role x endpoint x region against every service; the table
    is the one docs/security.md shows (tests/support/access_matrix.py)."""
    apps: dict[str, tuple[FastAPI, httpx.AsyncClient]] = {
        **stack.services,
        "intake": (stack.intake._transport.app, stack.intake),  # type: ignore[attr-defined]
    }
    listed = {
        (name, method, route.path)
        for name, (app, _) in apps.items()
        for route in api_routes(app)
        for method in route.methods
        if method != "HEAD"
    }
    unclassified = sorted(item for item in listed - set(ROUTES) if item[2] not in PUBLIC)
    assert unclassified == [], "every route needs a row in tests/support/access_matrix.py"

    async def call(service: str, method: str, path: str, role: str, attempt: Attempt) -> tuple[int, bytes]:
        client = apps[service][1]
        # a region in the path is always ours: the township's for a township office, else the county's
        region = inside_region(stack.county, role) if role == "township_office" else stack.county
        url = fill(path, {**stack.path_values(attempt.own), "region_code": region})
        if method == "GET":
            answer = await client.get(url, params={**QUERY, "format": "csv"}, headers=attempt.headers)
            return answer.status_code, answer.content
        body: dict[str, Any]
        if path == "/v1/erasures":
            body = {
                "target_event_id": str(uuid.uuid4()),
                "village_code": stack.own_village,
                "reason": "other",
            }
            answer = await client.post(url, json=body, headers=attempt.headers)
            return answer.status_code, answer.content
        if path == "/v1/imports":
            answer = await client.post(
                url, content=ledger_file(stack), headers=attempt.headers, params={"dry_run": "true"}
            )
            return answer.status_code, answer.content
        if "/approvals/" in path:
            body = {
                "adjustments": {
                    "advisor_id": stack.advisor,
                    "village_code": stack.own_village,
                    "grade": "good",
                    "reason": "核实",
                },
                "submission": {},
                "acceptance": {"submission": 1},
                "return": {"submission": 1, "reason": "核实"},
            }[path.rsplit("/", 1)[1]]
            answer = await client.post(url, json=body, headers=attempt.headers, params={"dry_run": "true"})
            return answer.status_code, answer.content
        if path == "/v1/batch":
            body = {
                "records": [{"kind": "lecture", "record": record_body("/v1/lectures", stack, stack.advisor)}]
            }
        else:
            body = record_body(path, stack, stack.advisor if attempt.own else stack.other)
        answer = await client.post(url, json=body, headers=attempt.headers, params={"dry_run": "true"})
        return answer.status_code, answer.content

    mismatches = []
    for (service, method, path), rule_name in ROUTES.items():
        for role in ROLES:
            for attempt in attempts(stack, role, rule_name):
                status, body = await call(service, method, path, role, attempt)
                if not matches(attempt.expected, status, body, stack.own_village, rule_name == "entry"):
                    mismatches.append(
                        (service, method, path, role, attempt.where, str(attempt.expected), status)
                    )
    assert mismatches == [], "\n".join(map(str, mismatches))


def test_the_security_document_shows_the_access_matrix_as_the_test_checks_it() -> None:
    document = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert render() in document, "regenerate with `python -m tests.support.access_matrix`"
