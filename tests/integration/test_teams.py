"""Teams through the real stack (issue 18): a team of two registered and assigned through intake, each
member's on-site visits served as the team, the village's norm met together under per_team and not under
per_person, the grades and the dashboard naming the team and its members, and a rebuild giving the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.events import DEFAULT_ZONE
from contracts.examples import example_fields
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.rebuild import rebuild
from services.assessment.app import create_app as create_assessment
from services.assessment.projection import assessment_projection
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.projection import dashboard_projection
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.rules import KIND_BY_NAME
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.settings import LedgerSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import send_all
from tests.support.places import fresh_county
from tests.support.samples import sample_event
from tests.support.waiting import eventually

SECRET = "teams-integration-secret-long-enough"
NOW = datetime(2026, 3, 25, 12, 0, tzinfo=DEFAULT_ZONE)


def bearer(subject: str, role: Role, region: str) -> dict[str, str]:
    token = mint_token(
        IntakeSettings(jwt_secret=SECRET),
        subject=subject,
        role=role,
        region_code=region,
        now=datetime.now(UTC),
    )
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Stack:
    intake: httpx.AsyncClient
    assessment: httpx.AsyncClient
    dashboard: httpx.AsyncClient
    ledger: httpx.AsyncClient
    county: str

    @property
    def as_county(self) -> dict[str, str]:
        return bearer(f"county-{self.county}", Role.county_bureau, self.county)

    async def post(self, kind: str, headers: dict[str, str] | None = None, **fields: Any) -> None:
        body = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
        body = {"id": str(uuid.uuid4()), **body, **fields}
        answer = await self.intake.post(KIND_BY_NAME[kind].path, json=body, headers=headers or self.as_county)
        assert answer.status_code == 202, answer.text

    async def get(self, client: httpx.AsyncClient, path: str) -> dict[str, Any]:
        answer = await client.get(path, headers=self.as_county)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
async def stack(infrastructure: Infrastructure, topics: None) -> AsyncIterator[Stack]:
    common: dict[str, Any] = {"database_url": infrastructure.database_url, "jwt_secret": SECRET}
    intake_app = create_intake(
        IntakeSettings(**infrastructure.kafka_settings("intake"), **common), ManualClock(NOW)
    )
    assessment_app = create_assessment(
        AssessmentSettings(**infrastructure.kafka_settings("assessment"), **common, poll_timeout_ms=100),
        ManualClock(NOW),
    )
    dashboard_app = create_dashboard(
        DashboardSettings(
            **infrastructure.kafka_settings("dashboard"),
            **common,
            poll_timeout_ms=100,
            ledger_url="http://127.0.0.1:9",
        ),
        ManualClock(NOW),
    )
    ledger_app = create_ledger(
        LedgerSettings(**infrastructure.kafka_settings("ledger"), **common, poll_timeout_ms=100),
        ManualClock(NOW),
    )
    apps = {
        "intake": intake_app,
        "assessment": assessment_app,
        "dashboard": dashboard_app,
        "ledger": ledger_app,
    }
    async with (
        intake_app.router.lifespan_context(intake_app),
        assessment_app.router.lifespan_context(assessment_app),
        dashboard_app.router.lifespan_context(dashboard_app),
        ledger_app.router.lifespan_context(ledger_app),
    ):
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            for name, app in apps.items()
        }
        try:
            stack = Stack(
                clients["intake"],
                clients["assessment"],
                clients["dashboard"],
                clients["ledger"],
                fresh_county(),
            )
            stack.assessment.app = assessment_app  # type: ignore[attr-defined]
            stack.dashboard.app = dashboard_app  # type: ignore[attr-defined]
            yield stack
        finally:
            for client in clients.values():
                await client.aclose()


def standing(team: dict[str, Any]) -> tuple[Any, ...]:
    month = team["month"]
    members = {member["advisor_id"]: member["on_site_minutes"] for member in team["members"]}
    return (month["hours_basis"], month["on_site_minutes"], month["met"], members)


async def test_a_team_meets_the_norm_together_per_team_and_not_per_person(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    first, second = f"team-a-{stack.county}", f"team-b-{stack.county}"
    team = f"team-{stack.county}"
    pooled_village = f"{stack.county}101201"  # the county's policy: per team
    strict_village = f"{stack.county}102201"  # its township's policy: per person
    # The village as the region importer registers it (its public notice answers for registered villages).
    village = sample_event(
        "region.registered",
        code=pooled_village,
        name="东王庄村",
        level="village",
        parent_code=pooled_village[:9],
    )
    await send_all(producer, [village])

    for advisor, name in ((first, "王律师"), (second, "赵律师")):
        await stack.post("advisor", advisor_id=advisor, name=name, organisation="某律师事务所")
    await stack.post(
        "team",
        team_id=team,
        name="第一法律顾问团队",
        organisation="某律师事务所",
        members=[first, second],
        leader_id=first,
        effective_from="2026-01-01",
    )
    # The team belongs to the county that registered it: another county may not change it (403 naming the
    # field and the rule), the prefecture above it may.
    renamed = {
        "id": str(uuid.uuid4()),
        "team_id": team,
        "name": "冒名团队",
        "organisation": "另一律师事务所",
        "members": [first],
    }
    other = fresh_county()
    answer = await stack.intake.post(
        KIND_BY_NAME["team"].path, json=renamed, headers=bearer(f"county-{other}", Role.county_bureau, other)
    )
    assert answer.status_code == 403, answer.text
    (error,) = answer.json()["error"]["fields"]
    assert (error["field"], error["rule"]) == ("team_id", "owned_by_another_region")
    above = bearer(f"prefecture-{stack.county[:4]}", Role.prefecture_bureau, stack.county[:4])
    answer = await stack.intake.post(
        KIND_BY_NAME["team"].path, json=renamed, params={"dry_run": "true"}, headers=above
    )
    assert answer.status_code == 200, answer.text

    for village in (pooled_village, strict_village):
        await stack.post(
            "team_assignment",
            team_id=team,
            village_code=village,
            term_start="2026-01-01",
            term_end="2026-12-31",
        )
    await stack.post(
        "policy", region_code=stack.county, effective_from="2026-01-01", rules={"hours_basis": "per_team"}
    )
    await stack.post(
        "policy",
        region_code=f"{stack.county}102",
        effective_from="2026-01-01",
        rules={"hours_basis": "per_person"},
    )
    # Each member records their own five hours in each village, served as the team.
    for advisor, day in ((first, "2026-03-10"), (second, "2026-03-17")):
        for village in (pooled_village, strict_village):
            await stack.post(
                "visit",
                headers=bearer(advisor, Role.advisor, stack.county),
                advisor_id=advisor,
                village_code=village,
                team_id=team,
                occurred_at=f"{day}T08:00:00+08:00",
                started_at=f"{day}T08:00:00+08:00",
                ended_at=f"{day}T13:00:00+08:00",
                activities=["consultation"],
            )

    expected = {
        pooled_village: ("per_team", 600, True, {first: 300, second: 300}),
        strict_village: ("per_person", 600, False, {first: 300, second: 300}),
    }

    async def teams_graded() -> dict[str, Any]:
        found = await stack.get(stack.assessment, f"/v1/regions/{stack.county}/teams")
        return {item["village_code"]: item for item in found["teams"]}

    def settled(found: dict[str, Any]) -> bool:
        return {village: standing(item) for village, item in found.items()} == expected

    graded = await eventually(teams_graded, settled, what="the team's month in both villages")
    pooled, strict = graded[pooled_village], graded[strict_village]
    assert (pooled["name"], pooled["leader_id"]) == ("第一法律顾问团队", first)
    assert {member["name"] for member in pooled["members"]} == {"王律师", "赵律师"}
    assert pooled["month"]["status"] == "met"
    assert strict["month"]["status"] != "met"
    assert pooled["year_to_date"]["score"] > strict["year_to_date"]["score"]
    assert {pooled["year_to_date"]["provisional_grade"], strict["year_to_date"]["provisional_grade"]} <= {
        "excellent",
        "good",
        "qualified",
        "unqualified",
    }

    async def dashboard_teams() -> list[dict[str, Any]]:
        found = await stack.get(stack.dashboard, f"/v1/regions/{stack.county}/teams")
        return list(found["teams"])

    def shown(found: list[dict[str, Any]]) -> bool:
        return [item["village_code"] for item in found] == [pooled_village, strict_village] and all(
            [member["name"] for member in item["members"]] == ["王律师", "赵律师"] for item in found
        )

    served = await eventually(dashboard_teams, shown, what="the team and its members on the dashboard")
    assert served[0]["team_id"] == team
    assert [member["leader"] for member in served[0]["members"]] == [True, False]

    # The village's public notice (公示, no login) names the team and its members, the leader first, and a
    # resident may rate each member.
    async def notice() -> httpx.Response:
        return await stack.dashboard.get(f"/v1/public/villages/{pooled_village}")

    answer = await eventually(notice, lambda found: found.status_code == 200, what="the village's notice")
    (on_notice,) = answer.json()["teams"]
    assert (on_notice["team_id"], on_notice["name"]) == (team, "第一法律顾问团队")
    assert [(member["advisor_id"], member["leader"]) for member in on_notice["members"]] == [
        (first, True),
        (second, False),
    ]
    page = (await stack.dashboard.get(f"/public/villages/{pooled_village}")).text
    assert "第一法律顾问团队" in page
    assert "王律师（队长）" in page

    # The ledger: a member's team record is within a term (no 非聘期内 remark), and the member may read the
    # village's file with the team.
    async def ledger_entries() -> list[dict[str, Any]]:
        answer = await stack.ledger.get(
            f"/v1/villages/{pooled_village}/ledger", headers=bearer(second, Role.advisor, stack.county)
        )
        if answer.status_code == 403:  # the team's term is still on its way through the ledger's projection
            return []
        assert answer.status_code == 200, answer.text
        return list(answer.json()["entries"])

    entries = await eventually(
        ledger_entries, lambda found: len(found) == 2, what="the team's ledger entries"
    )
    assert [entry["unassigned"] for entry in entries] == [False, False]

    # A replay of every topic into fresh tables gives the same answers.
    for app, projection in (
        (stack.assessment.app, assessment_projection()),  # type: ignore[attr-defined]
        (stack.dashboard.app, dashboard_projection()),  # type: ignore[attr-defined]
    ):
        await rebuild(projection, app.state.host.settings, ManualClock(NOW), drop_retired=True)
    assert settled(await teams_graded())
    assert await teams_graded() == graded
    assert await dashboard_teams() == served
