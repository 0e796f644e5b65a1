"""The year-end approval through HTTP against the real broker and database (issue 13): the county adjusts
and submits, the prefecture returns or accepts, every other role (and every other region) is refused, a
grade computed after the lock is a proposed revision paid only once accepted, the payout sheet read back
from its .xlsx, and a replay rebuilds the same approval."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from openpyxl import load_workbook

from contracts.envelope import Event
from contracts.events import (
    DEFAULT_ZONE,
    AssessmentGraded,
    Grade,
    PolicyReference,
    RegionLevel,
    RegionRegistered,
)
from contracts.examples import example_fields
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.rebuild import rebuild
from services.assessment.app import create_app as create_assessment
from services.assessment.projection import assessment_projection
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.rules import KIND_BY_NAME
from services.intake.settings import IntakeSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import send_all
from tests.support.places import fresh_county
from tests.support.waiting import eventually

SECRET = "approval-integration-secret-long-enough"
NOW = datetime(2027, 1, 20, 10, 0, tzinfo=DEFAULT_ZONE)
YEAR = 2026


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
    app: Any
    county: str
    infrastructure: Infrastructure

    @property
    def prefecture(self) -> str:
        return self.county[:4]

    def village(self, number: int) -> str:
        return f"{self.county}1012{number:02d}"

    def as_(self, role: Role, region: str | None = None) -> dict[str, str]:
        region = region or {
            Role.prefecture_bureau: self.prefecture,
            Role.province_department: self.county[:2],
            Role.township_office: self.county + "101",
        }.get(role, self.county)
        return bearer(f"{role}-{region}", role, region)

    async def post_record(self, kind: str, **fields: Any) -> None:
        body = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
        body = {"id": str(uuid.uuid4()), **body, **fields}
        answer = await self.intake.post(
            KIND_BY_NAME[kind].path, json=body, headers=self.as_(Role.county_bureau)
        )
        assert answer.status_code == 202, answer.text

    async def act(
        self, what: str, headers: dict[str, str], county: str | None = None, **body: Any
    ) -> httpx.Response:
        return await self.assessment.post(
            f"/v1/regions/{county or self.county}/approvals/{YEAR}/{what}", json=body, headers=headers
        )

    async def approval(self) -> dict[str, Any]:
        answer = await self.assessment.get(
            f"/v1/regions/{self.county}/approvals",
            params={"year": YEAR},
            headers=self.as_(Role.county_bureau),
        )
        assert answer.status_code == 200, answer.text
        counties = answer.json()["counties"]
        assert len(counties) <= 1
        return dict(counties[0]) if counties else {"graded": 0, "proposed_revisions": 0}


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
    assessment_app = create_assessment(
        AssessmentSettings(
            **infrastructure.kafka_settings("assessment"),
            database_url=infrastructure.database_url,
            jwt_secret=SECRET,
            poll_timeout_ms=100,
        ),
        ManualClock(NOW),
    )
    async with (
        intake_app.router.lifespan_context(intake_app),
        assessment_app.router.lifespan_context(assessment_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=intake_app), base_url="http://intake") as intake,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=assessment_app), base_url="http://assessment"
        ) as assessment,
    ):
        yield Stack(intake, assessment, assessment_app, fresh_county(), infrastructure)


def graded(advisor: str, village: str, revision: int, grade: Grade, ratio: float, yuan: str) -> Event:
    """A grade as the closer publishes it (the closer's own tests show how it is computed)."""
    data = AssessmentGraded(
        advisor_id=advisor,
        village_code=village,
        year=YEAR,
        score=80.0,
        grade=grade,
        subsidy_ratio=ratio,
        subsidy_yuan=Decimal(yuan),
        components={},
        policy=PolicyReference(region_code="37", effective_from=date(2017, 1, 1), event_id=uuid.uuid4()),
        revision=revision,
    )
    return Event(id=uuid.uuid4(), source="/villagecounsel/assessment", time=NOW, data=data, recorded_at=NOW)


async def test_the_county_submits_the_prefecture_decides_and_only_accepted_grades_are_paid(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    li, wang = f"li-{stack.county}", f"wang-{stack.county}"
    for advisor, village, name in ((li, stack.village(1), "李明"), (wang, stack.village(2), "王芳")):
        await stack.post_record("advisor", advisor_id=advisor, name=name, organisation="枣庄某律师事务所")
        await stack.post_record(
            "assignment",
            advisor_id=advisor,
            village_code=village,
            term_start="2026-01-01",
            term_end="2026-12-31",
            annual_subsidy_yuan="3000.00",
        )
    township = stack.village(1)[:9]
    places = [
        RegionRegistered(
            code=stack.county, name="审批县", level=RegionLevel.county, parent_code=stack.prefecture
        ),
        RegionRegistered(code=township, name="审批镇", level=RegionLevel.township, parent_code=stack.county),
        *[
            RegionRegistered(
                code=stack.village(n), name=f"审批村{n}", level=RegionLevel.village, parent_code=township
            )
            for n in (1, 2)
        ],
    ]
    await send_all(
        producer,
        [
            Event(id=uuid.uuid4(), source="/villagecounsel/tests", time=NOW, data=place, recorded_at=NOW)
            for place in places
        ],
    )
    await send_all(
        producer,
        [
            graded(li, stack.village(1), 1, Grade.excellent, 1.0, "3000.00"),
            graded(wang, stack.village(2), 1, Grade.qualified, 0.7, "2100.00"),
        ],
    )
    county, prefecture = stack.as_(Role.county_bureau), stack.as_(Role.prefecture_bureau)
    found = await eventually(stack.approval, lambda item: item["graded"] == 2, what="the grades")
    assert (found["status"], found["total_yuan"]) == ("not_started", "5100.00")

    # Nobody but the prefecture decides, nobody but the county adjusts or submits, and only in their region.
    elsewhere = f"{stack.county[:2]}{(int(stack.county[2:4]) + 1) % 100:02d}01"
    for role in (
        Role.advisor,
        Role.township_office,
        Role.prefecture_bureau,
        Role.province_department,
        Role.integration,
    ):
        answer = await stack.act("submission", stack.as_(role))
        assert answer.status_code == 403, (role, answer.text)
    assert (
        await stack.act("submission", bearer("county-x", Role.county_bureau, elsewhere))
    ).status_code == 403
    assert (await stack.act("submission", county, county=elsewhere)).status_code == 403
    for role in (
        Role.advisor,
        Role.township_office,
        Role.county_bureau,
        Role.province_department,
        Role.integration,
    ):
        answer = await stack.act("acceptance", stack.as_(role), submission=1)
        assert answer.status_code == 403, (role, answer.text)
    other_prefecture = bearer("prefecture-x", Role.prefecture_bureau, elsewhere[:4])
    assert (await stack.act("acceptance", other_prefecture, submission=1)).status_code == 403
    assert (
        await stack.act(
            "adjustments",
            prefecture,
            advisor_id=wang,
            village_code=stack.village(2),
            grade="good",
            reason="x",
        )
    ).status_code == 403

    # Bad input names the field; a decision with nothing submitted is refused with the rule.
    answer = await stack.act(
        "adjustments", county, advisor_id=wang, village_code=stack.village(2), grade="good", reason=""
    )
    assert answer.status_code == 422
    assert "reason" in answer.text
    answer = await stack.act(
        "adjustments", county, advisor_id=wang, village_code=stack.village(2), grade="superb", reason="x"
    )
    assert answer.status_code == 422
    assert "grade" in answer.text
    answer = await stack.act("acceptance", prefecture, submission=1)
    assert answer.status_code == 409
    assert "no submission waiting" in answer.json()["error"]["message"]

    # The county raises Wang's grade with a reason, then submits.
    answer = await stack.act(
        "adjustments",
        county,
        advisor_id=wang,
        village_code=stack.village(2),
        grade="good",
        reason="十月驻村记录补录，经核实",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["approval"]["adjusted"] == 1
    assert answer.json()["approval"]["total_yuan"] == "6000.00"
    answer = await stack.act("submission", county)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["approval"]["status"], answer.json()["approval"]["submission"]) == ("submitted", 1)
    assert (await stack.act("submission", county)).status_code == 409
    answer = await stack.act(
        "adjustments", county, advisor_id=li, village_code=stack.village(1), grade="good", reason="x"
    )
    assert answer.status_code == 409

    # Returned with a reason; re-submitted; a decision on a stale submission is refused; accepted.
    answer = await stack.act("return", prefecture, submission=1, reason="请补充王芳律师的驻村记录证明")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["approval"]["status"], answer.json()["approval"]["reason"]) == (
        "returned",
        "请补充王芳律师的驻村记录证明",
    )
    assert (await stack.act("submission", county)).json()["approval"]["submission"] == 2
    assert (await stack.act("acceptance", prefecture, submission=1)).status_code == 409
    answer = await stack.act("acceptance", prefecture, submission=2)
    assert answer.status_code == 200, answer.text
    accepted = answer.json()["approval"]
    assert (accepted["status"], accepted["locked_submission"], accepted["accepted_by"]) == (
        "accepted",
        2,
        f"prefecture_bureau-{stack.prefecture}",
    )
    assert (await stack.act("submission", county)).status_code == 409  # nothing changed since

    # The payout sheet, read back from the .xlsx: exact amounts, who approved, a total row.
    sheet_answer = await stack.assessment.get(
        f"/v1/regions/{stack.county}/payouts", params={"year": YEAR, "format": "xlsx"}, headers=county
    )
    assert sheet_answer.status_code == 200, sheet_answer.text
    sheet = load_workbook(io.BytesIO(sheet_answer.content)).active
    assert sheet is not None
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][:10] == [
        "法律顾问编号",
        "姓名",
        "执业机构",
        "服务村(社区)",
        "村(社区)代码",
        "年内服务月数",
        "年度补贴标准(元)",
        "考核等级",
        "补贴比例",
        "应付金额(元)",
    ]
    body = {row[0]: row for row in rows[1:-1]}
    assert (body[li][1], body[li][2], body[li][3], body[li][5], body[li][7], body[li][9]) == (
        "李明",
        "枣庄某律师事务所",
        "审批村1",
        12,
        "优秀",
        3000,
    )
    assert (body[wang][7], body[wang][8], body[wang][9], body[wang][10]) == (
        "良好",
        "100%",
        3000,
        "已通过(锁定)",
    )
    assert body[wang][11] == f"prefecture_bureau-{stack.prefecture}"
    assert (rows[-1][0], Decimal(str(rows[-1][9]))) == ("合计", Decimal("6000.00"))

    # A late record re-grades Li after the lock: a proposed revision, paid at the locked amount till accepted.
    await send_all(producer, [graded(li, stack.village(1), 2, Grade.qualified, 0.7, "2100.00")])
    found = await eventually(
        stack.approval, lambda item: item["proposed_revisions"] == 1, what="the revision"
    )
    assert (found["status"], found["locked_total_yuan"], found["total_yuan"]) == (
        "accepted",
        "6000.00",
        "5100.00",
    )
    as_csv = await stack.assessment.get(
        f"/v1/regions/{stack.county}/payouts", params={"year": YEAR, "format": "csv"}, headers=county
    )
    lines = {row[0]: row for row in csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig")))}
    assert lines[li][9] == "3000.00"
    assert "待审批修订：合格，2100.00 元（第 2 版）" in lines[li][13]
    assert lines["合计"][9] == "6000.00"
    assert (await stack.act("submission", county)).json()["approval"]["submission"] == 3
    assert (await stack.act("acceptance", prefecture, submission=3)).status_code == 200
    as_json = await stack.assessment.get(
        f"/v1/regions/{stack.prefecture}/payouts", params={"year": YEAR}, headers=prefecture
    )
    paid = {
        line["advisor_id"]: line["payable_yuan"]
        for line in as_json.json()["lines"]
        if line["village_code"].startswith(stack.county)
    }
    assert paid == {li: "2100.00", wang: "3000.00"}

    # Who may read the sheet: the county and above, in their region.
    for role in (Role.advisor, Role.township_office, Role.integration):
        answer = await stack.assessment.get(
            f"/v1/regions/{stack.county}/payouts", params={"year": YEAR}, headers=stack.as_(role)
        )
        assert answer.status_code == 403, role
    answer = await stack.assessment.get(
        f"/v1/regions/{stack.county}/payouts", params={"year": YEAR}, headers=other_prefecture
    )
    assert answer.status_code == 403

    # A replay of the topics rebuilds the same approval.
    before = await stack.approval()
    await rebuild(assessment_projection(), stack.app.state.host.settings, ManualClock(NOW), drop_retired=True)
    after = await stack.approval()
    assert after == before
    assert [step["step"] for step in after["steps"]] == [
        "submit",
        "return",
        "submit",
        "accept",
        "submit",
        "accept",
    ]

    # The dashboard shows where the county stands, learned from the same events.
    dashboard = create_dashboard(
        DashboardSettings(
            **stack.infrastructure.kafka_settings("dashboard"),
            database_url=stack.infrastructure.database_url,
            jwt_secret=SECRET,
            poll_timeout_ms=100,
        ),
        ManualClock(NOW),
    )
    async with (
        dashboard.router.lifespan_context(dashboard),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dashboard), base_url="http://dashboard"
        ) as client,
    ):

        async def shown() -> list[dict[str, Any]]:
            answer = await client.get(
                f"/v1/regions/{stack.prefecture}/approvals", params={"year": YEAR}, headers=prefecture
            )
            assert answer.status_code == 200, answer.text
            return [item for item in answer.json()["counties"] if item["county_code"] == stack.county]

        [county_row] = await eventually(
            shown, lambda items: bool(items) and items[0]["submission"] == 3, seconds=60, what="the dashboard"
        )
        assert (county_row["name"], county_row["status"]) == ("审批县", "accepted")
