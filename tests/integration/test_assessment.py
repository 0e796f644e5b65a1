"""Assessment fed through intake against the real broker and database: what counts, under which rules."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from openpyxl import load_workbook

from contracts.events import DEFAULT_ZONE
from contracts.examples import example_fields
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.rebuild import rebuild
from services.assessment.app import create_app as create_assessment
from services.assessment.projection import assessment_projection
from services.assessment.settings import AssessmentSettings
from services.intake.app import create_app as create_intake
from services.intake.rules import KIND_BY_NAME
from services.intake.settings import IntakeSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import send_all
from tests.support.places import fresh_county
from tests.support.samples import sample_event
from tests.support.waiting import eventually

SECRET = "assessment-integration-secret-long-enough"
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
    county: str

    @property
    def village(self) -> str:
        return f"{self.county}101201"

    @property
    def as_county(self) -> dict[str, str]:
        return bearer(f"county-{self.county}", Role.county_bureau, self.county)

    async def post(self, kind: str, **fields: Any) -> dict[str, Any]:
        body = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
        body = {"id": str(uuid.uuid4()), **body, **fields}
        answer = await self.intake.post(KIND_BY_NAME[kind].path, json=body, headers=self.as_county)
        assert answer.status_code == 202, answer.text
        return body

    async def compliance(self, advisor: str, **params: Any) -> dict[str, Any]:
        answer = await self.assessment.get(
            f"/v1/compliance/{advisor}/{self.village}", params=params, headers=self.as_county
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


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
            close_chunk_pairs=3,  # the shared stack has many pairs: every pass here runs chunk by chunk
        ),
        ManualClock(NOW),
    )
    async with (
        intake_app.router.lifespan_context(intake_app),
        assessment_app.router.lifespan_context(assessment_app),
    ):
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=intake_app), base_url="http://intake"
            ) as intake,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=assessment_app), base_url="http://assessment"
            ) as assessment,
        ):
            yield Stack(intake, assessment, fresh_county())


async def test_minutes_count_for_the_assigned_advisor_under_the_policy_in_force(stack: Stack) -> None:
    advisor, stranger = f"adv-{stack.county}", f"other-{stack.county}"
    await stack.post(
        "assignment",
        advisor_id=advisor,
        village_code=stack.village,
        term_start="2026-01-01",
        term_end="2026-12-31",
    )
    await stack.post(
        "policy",
        region_code=stack.county,
        effective_from="2026-03-01",
        rules={"norms": {"offsite_credit_rate": 0.5, "offsite_credit_cap_minutes": 120}},
    )
    visit_fields = {"advisor_id": advisor, "village_code": stack.village, "activities": ["consultation"]}
    await stack.post(
        "visit",
        **visit_fields,
        occurred_at="2026-03-10T08:00:00+08:00",
        started_at="2026-03-10T08:00:00+08:00",
        ended_at="2026-03-10T15:30:00+08:00",
    )
    calls = [
        await stack.post(
            "consultation",
            advisor_id=advisor,
            village_code=stack.village,
            occurred_at=f"2026-03-1{day}T10:00:00+08:00",
            channel="phone",
            duration_minutes=30,
            requester=None,
        )
        for day in (1, 2)
    ]
    await stack.post(
        "lecture", advisor_id=advisor, village_code=stack.village, occurred_at="2026-02-20T19:00:00+08:00"
    )
    # Work by someone not assigned to the village does not count for anyone.
    await stack.post(
        "visit",
        **{**visit_fields, "advisor_id": stranger},
        occurred_at="2026-03-11T08:00:00+08:00",
        started_at="2026-03-11T08:00:00+08:00",
        ended_at="2026-03-11T18:00:00+08:00",
    )

    async def march() -> dict[str, Any]:
        return await stack.compliance(advisor)

    found = await eventually(
        march, lambda s: s["month"]["credited_offsite_minutes"] == 30, what="the phone calls"
    )
    assert found["policy"]["region_code"] == stack.county
    assert found["month"] == {
        "month": "2026-03",
        "on_site_minutes": 450,
        "offsite_minutes": 60,
        "credited_offsite_minutes": 30,
        "required_minutes": 480,
        "status": "met",
    }
    assert found["lectures"]["held_in_period"] == 1
    assert found["lectures"]["alert"] is None

    february = await stack.compliance(advisor, as_of="2026-02-25T12:00:00+08:00")
    assert february["policy"]["region_code"] == "37", "before the county's date, the province's default rules"
    assert february["month"]["credited_offsite_minutes"] == 0

    await stack.post(
        "void", advisor_id=advisor, village_code=stack.village, target_event_id=calls[0]["id"], reason="错"
    )
    after_void = await eventually(march, lambda s: s["month"]["offsite_minutes"] == 30, what="the void")
    assert after_void["month"]["status"] == "on_track"  # 465 of 480 on the 25th is ahead of the month's pace

    region = await stack.assessment.get(
        f"/v1/regions/{stack.county}/compliance", params={"month": "2026-03"}, headers=stack.as_county
    )
    assert region.status_code == 200
    rows = region.json()["villages"]
    assert [(row["advisor_id"], row["status"]) for row in rows] == [(advisor, "on_track")]
    assert region.json()["counts"]["on_track"] == 1

    stranger_view = await stack.compliance(stranger)
    assert stranger_view["month"]["on_site_minutes"] == 0

    policy = (
        await stack.assessment.get(
            f"/v1/regions/{stack.village}/policy", params={"on": "2026-02-01"}, headers=stack.as_county
        )
    ).json()
    assert policy["in_force"]["region_code"] == "37"
    assert [item["region_code"] for item in policy["history"]][-1] == stack.county


async def test_access_follows_the_region(stack: Stack) -> None:
    elsewhere = bearer("county-x", Role.county_bureau, "379999" if stack.county != "379999" else "379998")
    answer = await stack.assessment.get(f"/v1/compliance/a/{stack.village}", headers=elsewhere)
    assert answer.status_code == 403
    assert (await stack.assessment.get(f"/v1/compliance/a/{stack.village}")).status_code == 401


async def test_months_close_after_grace_a_late_record_re_closes_and_a_replay_sends_nothing_new(
    infrastructure: Infrastructure, stack: Stack
) -> None:
    advisor = f"adv-{stack.county}-close"
    await stack.post(
        "assignment",
        advisor_id=advisor,
        village_code=stack.village,
        term_start="2026-01-01",
        term_end="2026-12-31",
    )
    visit_fields = {"advisor_id": advisor, "village_code": stack.village, "activities": ["consultation"]}
    await stack.post(
        "visit",
        **visit_fields,
        occurred_at="2026-02-10T08:00:00+08:00",
        started_at="2026-02-10T08:00:00+08:00",
        ended_at="2026-02-10T16:00:00+08:00",
    )
    await stack.post(
        "visit",
        **visit_fields,
        occurred_at="2026-03-10T08:00:00+08:00",
        started_at="2026-03-10T08:00:00+08:00",
        ended_at="2026-03-10T13:00:00+08:00",
    )
    app = stack.assessment._transport.app  # type: ignore[attr-defined]
    clock: ManualClock = app.state.closer._clock
    closer = app.state.closer

    async def march_visit_counted() -> dict[str, Any]:
        return await stack.compliance(advisor, as_of="2026-03-31T20:00:00+08:00")

    await eventually(march_visit_counted, lambda s: s["month"]["on_site_minutes"] == 300, what="the visits")
    clock.set(datetime(2026, 4, 12, 9, 0, tzinfo=DEFAULT_ZONE))

    async def ours(events: list[Any]) -> list[Any]:
        return [event for event in events if getattr(event.data, "advisor_id", None) == advisor]

    async def run_until_published() -> list[Any]:
        return await ours(await closer.run_once())

    published = await eventually(run_until_published, lambda found: len(found) > 0, what="the first closing")
    closes = {event.data.month: event.data for event in published if event.type == "compliance.month_closed"}
    assert {month: (c.on_site_minutes, c.met, c.revision) for month, c in closes.items()} == {
        "2026-01": (0, False, 1),
        "2026-02": (480, True, 1),
        "2026-03": (300, False, 1),
    }
    alerts = sorted(
        (event.data.kind, event.data.detail) for event in published if event.type == "compliance.alert_raised"
    )
    # January and March missed their hours, the first quarter had no lecture, nothing since 10 March.
    assert [kind for kind, _ in alerts] == ["hours_missed", "hours_missed", "lecture_missed", "no_activity"]

    async def alerts_listed() -> list[Any]:
        answer = await stack.assessment.get(
            f"/v1/regions/{stack.county}/alerts", params={"since": "2026-01-01"}, headers=stack.as_county
        )
        return [item for item in answer.json()["alerts"] if item["advisor_id"] == advisor]

    await eventually(
        alerts_listed, lambda found: len(found) == 4, what="the alerts come back through the projection"
    )

    # A late record for March re-closes it as revision 2, saying what changed; nothing else is sent again.
    await stack.post(
        "visit",
        **visit_fields,
        occurred_at="2026-03-20T08:00:00+08:00",
        started_at="2026-03-20T08:00:00+08:00",
        ended_at="2026-03-20T12:00:00+08:00",
    )
    await eventually(
        march_visit_counted, lambda s: s["month"]["on_site_minutes"] == 540, what="the late visit"
    )
    again = await eventually(run_until_published, lambda found: len(found) > 0, what="the re-closing")
    assert [(event.data.month, event.data.revision, event.data.changes) for event in again] == [
        ("2026-03", 2, "on_site_minutes: 300 -> 540; met: False -> True")
    ]

    async def settled() -> list[Any]:
        return await ours(await closer.run_once())

    # Once its outputs are back, another pass finds nothing to say; so does one after a replay from 0.
    await asyncio.sleep(0)
    for _ in range(2):
        assert await eventually(settled, lambda found: found == [], what="a quiet pass") == []
    settings = app.state.host.settings
    await rebuild(assessment_projection(), settings, ManualClock(clock.now()), drop_retired=True)
    assert await eventually(settled, lambda found: found == [], what="a quiet pass after the replay") == []


async def test_the_year_is_graded_with_its_subsidy_and_a_county_gets_the_table_it_pays_from(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    diligent, offender = f"good-{stack.county}", f"bad-{stack.county}"
    second_village = f"{stack.county}101202"
    await stack.post(
        "assignment",
        advisor_id=diligent,
        village_code=stack.village,
        term_start="2026-01-01",
        term_end="2026-12-31",
    )
    await stack.post(
        "assignment",
        advisor_id=offender,
        village_code=second_village,
        term_start="2026-01-01",
        term_end="2026-12-31",
    )
    await stack.post(
        "violation", advisor_id=offender, village_code=second_village, date="2026-03-02", description="虚报"
    )
    events = []
    for advisor, village in ((diligent, stack.village), (offender, second_village)):
        for month in range(1, 13):
            start = datetime(2026, month, 10, 8, 0, tzinfo=DEFAULT_ZONE)
            events.append(
                sample_event(
                    "visit.logged",
                    advisor_id=advisor,
                    village_code=village,
                    recorded_by=advisor,
                    occurred_at=start.isoformat(),
                    started_at=start.isoformat(),
                    ended_at=(start + timedelta(hours=8)).isoformat(),
                )
            )
        for month in (2, 5, 8, 11):
            events.append(
                sample_event(
                    "lecture.held",
                    advisor_id=advisor,
                    village_code=village,
                    recorded_by=advisor,
                    occurred_at=datetime(2026, month, 15, 19, 0, tzinfo=DEFAULT_ZONE).isoformat(),
                    large_event=month == 5,
                )
            )
        events.append(
            sample_event(
                "feedback.submitted", advisor_id=advisor, village_code=village, recorded_by="town", score=5
            )
        )
    timely = [
        replace(event, time=event.data.occurred_at, recorded_at=event.data.occurred_at + timedelta(hours=1))
        for event in events
    ]  # type: ignore[attr-defined]
    await send_all(producer, timely)

    async def whole_year_known() -> bool:
        for advisor, village in ((diligent, stack.village), (offender, second_village)):
            answer = await stack.assessment.get(
                f"/v1/compliance/{advisor}/{village}",
                params={"as_of": "2026-12-31T20:00:00+08:00"},
                headers=stack.as_county,
            )
            seen = answer.json()
            if seen["month"]["on_site_minutes"] != 480 or seen["lectures"]["held_this_year"] != 4:
                return False
            if "feedback" not in seen["year_to_date"]["components"]:
                return False
        return True

    await eventually(whole_year_known, lambda known: known, what="the year's records")
    app = stack.assessment._transport.app  # type: ignore[attr-defined]
    closer = app.state.closer
    closer._clock.set(datetime(2027, 1, 12, 9, 0, tzinfo=DEFAULT_ZONE))

    async def graded() -> list[Any]:
        published = await closer.run_once()
        return [
            event
            for event in published
            if event.type == "assessment.graded"
            and event.data.village_code in (stack.village, second_village)
        ]

    found: list[Any] = []

    async def all_graded() -> list[Any]:
        found.extend(await graded())
        return found

    await eventually(all_graded, lambda items: len(items) >= 2, seconds=90, what="the grades")
    assert len(found) == 2
    by_advisor = {event.data.advisor_id: event.data for event in found}
    assert (by_advisor[diligent].grade, by_advisor[diligent].score, by_advisor[diligent].subsidy_yuan) == (
        "excellent",
        100.0,
        Decimal("3000.00"),
    )
    assert (by_advisor[offender].grade, by_advisor[offender].subsidy_yuan) == ("violation", Decimal("0.00"))
    assert by_advisor[diligent].policy.region_code == "37"

    async def table() -> list[dict[str, Any]]:
        answer = await stack.assessment.get(
            f"/v1/regions/{stack.county}/grades", params={"year": 2026}, headers=stack.as_county
        )
        return list(answer.json()["grades"])

    rows = await eventually(
        table, lambda items: len(items) == 2, what="the grades come back through the projection"
    )
    assert {(row["advisor_id"], row["grade"], row["subsidy_yuan"]) for row in rows} == {
        (diligent, "excellent", "3000.00"),
        (offender, "violation", "0.00"),
    }
    as_csv = await stack.assessment.get(
        f"/v1/regions/{stack.county}/grades", params={"year": 2026, "format": "csv"}, headers=stack.as_county
    )
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][:5] == ["村(社区)代码", "法律顾问", "年度", "得分", "等级"]
    assert lines[-1][0] == "合计"
    assert lines[-1][6] == "3000.00"
    as_xlsx = await stack.assessment.get(
        f"/v1/regions/{stack.county}/grades", params={"year": 2026, "format": "xlsx"}, headers=stack.as_county
    )
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert {row[4] for row in values[1:-1]} == {"优秀", "违法违纪"}

    # Replaying the topics from offset 0 rebuilds what was published, and the next pass sends no grade again.
    await rebuild(
        assessment_projection(), app.state.host.settings, ManualClock(closer._clock.now()), drop_retired=True
    )
    assert await eventually(graded, lambda items: items == [], what="a quiet pass after the replay") == []


async def test_a_visit_crossing_midnight_into_the_month_counts_there_in_every_read(stack: Stack) -> None:
    """2025-06-30 23:00 → 2025-07-01 01:30: July has 90 minutes for the region's month as for the
    advisor's own compliance (one computation of an (advisor, village, month) for every reader)."""
    advisor = f"adv-{stack.county}-midnight"
    await stack.post(
        "assignment",
        advisor_id=advisor,
        village_code=stack.village,
        term_start="2025-01-01",
        term_end="2026-12-31",
    )
    await stack.post(
        "visit",
        advisor_id=advisor,
        village_code=stack.village,
        activities=["consultation"],
        occurred_at="2025-06-30T23:00:00+08:00",
        started_at="2025-06-30T23:00:00+08:00",
        ended_at="2025-07-01T01:30:00+08:00",
    )
    july = await eventually(
        lambda: stack.compliance(advisor, as_of="2025-07-31T20:00:00+08:00"),
        lambda found: found["month"]["on_site_minutes"] == 90,
        what="the visit",
    )
    assert july["month"]["month"] == "2025-07"

    async def region_july() -> list[dict[str, Any]]:
        answer = await stack.assessment.get(
            f"/v1/regions/{stack.county}/compliance", params={"month": "2025-07"}, headers=stack.as_county
        )
        assert answer.status_code == 200, answer.text
        return [row for row in answer.json()["villages"] if row["advisor_id"] == advisor]

    rows = await region_july()
    assert [(row["on_site"], row["status"]) for row in rows] == [(90, "missed")]


async def test_old_years_are_closed_and_graded_on_the_whole_year(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    """History older than the last two years and 400 days (a province adopting the system): every month
    of the term is closed and every year graded, each on all of its records."""
    advisor, idle = f"hist-{stack.county}", f"idle-{stack.county}"
    await stack.post(
        "assignment",
        advisor_id=advisor,
        village_code=stack.village,
        term_start="2023-01-01",
        term_end="2024-12-31",
    )
    # An advisor who recorded nothing in 2023: every month closes missed, and no alert is raised for
    # history closed years later (an alert is a call to act).
    await stack.post(
        "assignment",
        advisor_id=idle,
        village_code=f"{stack.county}101202",
        term_start="2023-01-01",
        term_end="2023-12-31",
    )
    events = []
    for year in (2023, 2024):
        for month in range(1, 13):
            start = datetime(year, month, 10, 8, 0, tzinfo=DEFAULT_ZONE)
            events.append(
                sample_event(
                    "visit.logged",
                    advisor_id=advisor,
                    village_code=stack.village,
                    recorded_by=advisor,
                    occurred_at=start.isoformat(),
                    started_at=start.isoformat(),
                    ended_at=(start + timedelta(hours=8, minutes=30)).isoformat(),
                )
            )
        for month in (2, 5, 8, 11):
            events.append(
                sample_event(
                    "lecture.held",
                    advisor_id=advisor,
                    village_code=stack.village,
                    recorded_by=advisor,
                    occurred_at=datetime(year, month, 15, 19, 0, tzinfo=DEFAULT_ZONE).isoformat(),
                    large_event=month == 5,
                )
            )
        events.append(
            sample_event(
                "feedback.submitted",
                advisor_id=advisor,
                village_code=stack.village,
                recorded_by="town",
                occurred_at=datetime(year, 6, 1, 10, 0, tzinfo=DEFAULT_ZONE).isoformat(),
                score=5,
            )
        )
    await send_all(
        producer,
        [
            replace(
                event, time=event.data.occurred_at, recorded_at=event.data.occurred_at + timedelta(hours=1)
            )  # type: ignore[attr-defined]
            for event in events
        ],
    )

    async def december_2024() -> dict[str, Any]:
        return await stack.compliance(advisor, as_of="2024-12-31T20:00:00+08:00")

    snapshot_2024 = await eventually(
        december_2024, lambda found: found["lectures"]["held_this_year"] == 4, what="the history"
    )
    closer = stack.assessment._transport.app.state.closer  # type: ignore[attr-defined]
    found: list[Any] = []

    async def ours() -> list[Any]:
        found.extend(
            event
            for event in await closer.run_once()
            if getattr(event.data, "advisor_id", None) in (advisor, idle)
        )
        return found

    def complete(items: list[Any]) -> bool:
        return len([event for event in items if event.type == "assessment.graded"]) >= 3

    await eventually(ours, complete, seconds=90, what="the old years graded")
    idle_closes = {
        event.data.month: event.data.met
        for event in found
        if event.type == "compliance.month_closed" and event.data.advisor_id == idle
    }
    assert idle_closes == {f"2023-{month:02d}": False for month in range(1, 13)}
    assert [event.data.kind for event in found if event.type == "compliance.alert_raised"] == []
    found = [event for event in found if event.data.advisor_id == advisor]
    closes = {event.data.month: event.data.met for event in found if event.type == "compliance.month_closed"}
    assert closes == {f"{year}-{month:02d}": True for year in (2023, 2024) for month in range(1, 13)}
    grades = {event.data.year: event.data for event in found if event.type == "assessment.graded"}
    assert {year: (grade.grade, grade.subsidy_yuan) for year, grade in grades.items()} == {
        2023: ("excellent", Decimal("3000.00")),
        2024: ("excellent", Decimal("3000.00")),
    }
    assert grades[2024].score == snapshot_2024["year_to_date"]["score"]
    assert snapshot_2024["year_to_date"]["provisional_grade"] == "excellent"
