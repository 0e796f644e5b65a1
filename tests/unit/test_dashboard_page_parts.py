"""The parts of the dashboard's page that need no infrastructure: the public notice (公示), active advisors,
local mode (reading without a token), and the demo data `bin/run-local` sends through intake."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import ValidationError

from devstack import demo
from plumbing.auth import Principal, Role, bearer_principal
from plumbing.http import install_common
from services.dashboard.public import notice, notice_html, page_url
from services.dashboard.rules import activity_totals, counts_as_activity, periods
from services.dashboard.settings import DashboardSettings
from services.intake.rules import KIND_BY_NAME, Limits, prepare_event
from tests.support.samples import sample_payload

VILLAGE = {"code": "370402001013", "name": "铁西居委会", "level": "village"}
PATH = [
    {"name": "山东省"},
    {"name": "枣庄市"},
    {"name": "市中区"},
    {"name": "中心街街道"},
    {"name": "铁西居委会"},
]
URL = "https://fw.example.gov.cn/public/villages/370402001013"


def card(**changes: object) -> dict[str, object]:
    return {
        "advisor_id": "lawyer-0001",
        "name": "李律师",
        "kind": "lawyer",
        "organisation": "山东某律师事务所",
        "phone": "0632-1234567",
        "term_start": date(2026, 1, 1),
        "term_end": date(2026, 12, 31),
        **changes,
    }


def test_the_public_notice_shows_the_advisor_and_counts_only() -> None:
    figures = {
        "mediations": 4,
        "consultation_person_times": 9,
        "on_site_minutes": 600,
        "feedback_score_sum": 20,
    }
    shown = notice(VILLAGE, PATH, [card()], 2026, figures, URL)
    assert shown["place"] == "山东省枣庄市市中区中心街街道铁西居委会"
    assert shown["advisors"] == [
        {
            "advisor_id": "lawyer-0001",
            "name": "李律师",
            "kind": "律师",
            "organisation": "山东某律师事务所",
            "phone": "0632-1234567",
            "term_start": "2026-01-01",
            "term_end": "2026-12-31",
        }
    ]
    counts = {line["item"]: line["count"] for line in shown["counts"]}
    assert counts["调解矛盾纠纷"] == 4
    assert counts["法律咨询"] == 9
    assert counts["驻村服务时长(小时)"] == 10.0
    assert shown["service_hours"] == 10.0
    assert shown["url"] == URL
    assert "feedback_score_sum" not in str(shown)


def test_the_notice_prints_on_a4_with_the_pages_address_as_a_qr_code() -> None:
    page = notice_html(notice(VILLAGE, PATH, [card()], 2026, {"on_site_minutes": 90}, URL))
    assert "@page { size: A4;" in page
    assert "@media print" in page
    assert '<section id="qr"><svg' in page
    assert URL in page
    assert "驻村服务累计 1.5 小时" in page


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://fw.example.gov.cn", URL),
        ("https://fw.example.gov.cn/", URL),
        ("http://127.0.0.1:8003/", "http://127.0.0.1:8003/public/villages/370402001013"),
    ],
)
def test_the_pages_address_is_under_the_public_base_url(base: str, expected: str) -> None:
    assert page_url(base, "370402001013") == expected


def test_a_public_base_url_is_an_http_address() -> None:
    with pytest.raises(ValidationError, match="public_base_url"):
        DashboardSettings(public_base_url="fw.example.gov.cn")


def test_the_notice_page_escapes_what_it_shows_and_points_to_12348_without_an_advisor() -> None:
    page = notice_html(notice(VILLAGE, PATH, [card(name="<script>x</script>", phone=None)], 2026, {}, URL))
    assert "<script>x" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "请拨打 12348" in page
    empty = notice_html(notice(VILLAGE, PATH, [], 2026, {}, URL))
    assert "暂未配备法律顾问" in empty


def test_an_advisor_is_active_where_they_recorded_a_service_but_not_for_feedback_or_voids() -> None:
    assert counts_as_activity(sample_payload("consultation.recorded"))
    assert counts_as_activity(sample_payload("visit.logged"))
    assert not counts_as_activity(sample_payload("feedback.submitted"))
    assert not counts_as_activity(sample_payload("record.voided"))
    assert not counts_as_activity(sample_payload("advisor.registered"))


def test_activity_counts_records_in_a_village_and_active_regions_one_level_down_above_it() -> None:
    when = periods(datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
    totals = activity_totals(
        [
            ("370402001013", when, "a1", 1),
            ("370402001013", when, "a1", 1),
            ("370402001014", when, "a1", 1),
            ("370402002100", when, "a1", 1),
            ("370402001013", when, "a2", 1),
        ]
    )
    assert totals[("370402001013", "2026", "a1")] == 2  # the village: records
    assert totals[("370402001", "2026-Q1", "a1")] == 2  # the township: two villages where a1 is active
    assert totals[("370402002", "2026-03", "a1")] == 1
    assert totals[("370402", "2026", "a1")] == 2  # the county: two townships, not four records
    assert totals[("3704", "2026", "a1")] == 1
    assert totals[("37", "2026", "a1")] == 1
    assert totals[("0", "2026", "a1")] == 1
    assert ("370402002", "2026", "a2") not in totals
    assert totals[("0", "2026", "a2")] == 1
    assert activity_totals([("370402001013", when, "a1", 1), ("370402001013", when, "a1", -1)]) == {}
    # A void whose record was counted before these changes leaves -1: not active, so nothing above it.
    assert activity_totals([("370402001013", when, "a1", -1)]) == {
        ("370402001013", period, "a1"): -1 for period in when
    }


def local_app(open_region: str | None) -> httpx.AsyncClient:
    app = FastAPI()
    install_common(app, "test", lambda: _ready(), lambda: {})
    settings = DashboardSettings(open_region=open_region)
    reader = bearer_principal(settings, settings.open_region)

    @app.get("/who")
    async def who(caller: Principal = Depends(reader)) -> dict[str, str]:
        return {"role": str(caller.role), "region": caller.region_code}

    @app.post("/who")
    async def write(caller: Principal = Depends(reader)) -> dict[str, str]:
        return {"role": str(caller.role)}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _ready() -> dict[str, bool]:
    return {}


async def test_local_mode_reads_the_open_region_without_a_token_and_writes_nothing() -> None:
    async with local_app("37") as client:
        assert (await client.get("/who")).json() == {"role": str(Role.province_department), "region": "37"}
        assert (await client.post("/who")).status_code == 401
        assert (await client.get("/who", headers={"Authorization": "Bearer nonsense"})).status_code == 401
    async with local_app(None) as closed:
        assert (await closed.get("/who")).status_code == 401


def test_local_mode_is_refused_outside_development_and_must_be_a_region_code() -> None:
    with pytest.raises(ValidationError, match="local development only"):
        DashboardSettings(
            open_region="37",
            environment="production",
            jwt_algorithm="RS256",
            jwt_jwks_url="https://idp.example/jwks",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="dashboard",
            kafka_sasl_password="x",
        )
    with pytest.raises(ValidationError, match="open_region"):
        DashboardSettings(open_region="3704021")


def test_the_demo_history_is_the_same_again_and_fits_the_contracts_and_the_trickle_fits_intake() -> None:
    today = date(2026, 11, 23)
    pairs = demo.assignments(demo.villages())
    assert len(pairs) == demo.ADVISORS * demo.VILLAGES_EACH
    assert len({pair.village_code[:6] for pair in pairs}) == 6, "every county of Zaozhuang has demo advisors"
    assert len({pair.village_code[:9] for pair in pairs}) == 66, "and every township"
    history = [*demo.registry(pairs, [2024, 2025, 2026]), *demo.work_since(pairs, date(2024, 1, 1), today)]
    assert history == [
        *demo.registry(pairs, [2024, 2025, 2026]),
        *demo.work_since(pairs, date(2024, 1, 1), today),
    ], "ids and content are derived, so a restart sends duplicates that consumers drop"
    events = [demo.as_event(item) for item in history]
    assert len({event.id for event in events}) == len(events)
    assert {event.type for event in events} >= {
        "advisor.registered",
        "advisor.assigned",
        "visit.logged",
        "consultation.recorded",
        "mediation.recorded",
        "lecture.held",
        "document.reviewed",
        "feedback.submitted",
    }
    q1 = [e for e in events if e.type == "mediation.recorded" and e.time.year == 2024 and e.time.month <= 3]
    assert q1, "2024 Q1 has mediations to ask about"

    prefecture = Principal(subject="demo-3704", role=Role.prefecture_bureau, region_code="3704")
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    limits = Limits(max_age=timedelta(days=400), clock_skew=timedelta(minutes=5))
    draw = random.Random(7)
    for kind in ("consultation", "visit", "mediation", "document", "lecture", "feedback"):
        trickled = demo.record(kind, pairs[0], now, draw, str(uuid.uuid4()))
        prepare_event(KIND_BY_NAME[kind], trickled["record"], prefecture, now, limits, "/demo")


def test_the_rating_form_is_on_screen_only_and_only_with_intakes_address_and_an_advisor() -> None:
    ratings = "https://vc.example.gov.cn/v1/public/ratings"
    shown = notice(VILLAGE, PATH, [card(name="<b>李</b>")], 2026, {}, URL)
    page = notice_html(shown, ratings)
    assert f'data-endpoint="{ratings}"' in page
    assert '<section id="rate" class="screen-only" hidden>' in page  # shown by its script, never printed
    assert "<option value='lawyer-0001'>&lt;b&gt;李&lt;/b&gt;</option>" in page
    assert page.count("name='score'") == 5
    assert 'maxlength="300"' in page
    assert 'id="rate"' not in notice_html(shown)
    assert 'id="rate"' not in notice_html(notice(VILLAGE, PATH, [], 2026, {}, URL), ratings)


def team(**changes: object) -> dict[str, object]:
    return {
        "team_id": "team-1",
        "name": "<i>第一</i>团队",
        "organisation": "某律师事务所",
        "term_start": date(2026, 1, 1),
        "term_end": date(2026, 12, 31),
        "members": [
            {"advisor_id": "lawyer-0003", "name": "赵律师", "leader": False, "phone": "0632-333"},
            {"advisor_id": "lawyer-0002", "name": "王律师", "leader": True, "phone": "0632-222"},
            {"advisor_id": "lawyer-0004", "name": None, "leader": False, "phone": None},  # no card yet
        ],
        **changes,
    }


def test_a_team_on_the_notice_names_its_members_leader_first_with_the_leaders_contact() -> None:
    """Issue 18: a village served by a team (律师团队) shows the team on its notice, the members with the
    leader first and marked, the leader's published contact as the team's; each member can be rated."""
    shown = notice(VILLAGE, PATH, [], 2026, {}, URL, [team()])
    (on_notice,) = shown["teams"]
    assert [(m["advisor_id"], m["leader"]) for m in on_notice["members"]] == [
        ("lawyer-0002", True),
        ("lawyer-0003", False),
    ]
    assert on_notice["term_start"] == "2026-01-01"
    page = notice_html(shown, "https://vc.example.gov.cn/v1/public/ratings")
    assert "&lt;i&gt;第一&lt;/i&gt;团队" in page
    assert "成员：王律师（队长）、赵律师" in page
    assert "<span class='phone'>0632-222</span>" in page
    assert "暂未配备法律顾问" not in page
    assert "<option value='lawyer-0002'>王律师（&lt;i&gt;第一&lt;/i&gt;团队）</option>" in page
    assert "<option value='lawyer-0003'>" in page
    leaderless = notice_html(
        notice(VILLAGE, PATH, [card()], 2026, {}, URL, [team(members=[{**team()["members"][0]}])]),  # type: ignore[index]
        "https://vc.example.gov.cn/v1/public/ratings",
    )
    assert "请拨打 12348" in leaderless
    assert leaderless.count("<option value='lawyer-0001'>") == 1
