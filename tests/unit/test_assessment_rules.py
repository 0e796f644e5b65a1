"""The assessment rules, with the worked examples of the seeds and the assessment issue."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.events import (
    DEFAULT_ZONE,
    Grade,
    LecturePeriod,
    PolicyRules,
    ScoreComponent,
    VillageKind,
    VillageNorms,
)
from contracts.service_time import on_site_minutes_by_month
from services.assessment.rules import (
    Lecture,
    LectureAlert,
    MonthStatus,
    OffsiteService,
    Period,
    PublishedPolicy,
    Visit,
    YearFacts,
    annual_score,
    component_scores,
    grade_for,
    lecture_alert,
    lecture_periods,
    month_minutes,
    month_status,
    months_touched,
    norms_for,
    policy_in_force,
    subsidy_yuan,
    term_share,
)

ZAOZHUANG = PolicyRules()
GUANGZHOU_STYLE = PolicyRules(norms=VillageNorms(offsite_credit_rate=0.5, offsite_credit_cap_minutes=120))


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=DEFAULT_ZONE)


def visit(day: str, start: str, end_day: str, end: str) -> Visit:
    return Visit(at(day, start), at(end_day, end))


def test_seven_and_a_half_hours_on_site_is_missed() -> None:
    minutes = month_minutes(
        2026, 3, [visit("2026-03-10", "08:00", "2026-03-10", "15:30")], [], ZAOZHUANG.norms
    )
    assert (minutes.on_site, minutes.required, minutes.met) == (450, 480, False)
    assert month_status(minutes, at("2026-04-01", "00:00"), 2026, 3, 20) is MonthStatus.missed


def test_with_half_credit_two_half_hour_phone_consultations_make_it_met() -> None:
    phone = [OffsiteService(at("2026-03-05", "10:00"), 30), OffsiteService(at("2026-03-18", "16:00"), 30)]
    visits = [visit("2026-03-10", "08:00", "2026-03-10", "15:30")]
    minutes = month_minutes(2026, 3, visits, phone, GUANGZHOU_STYLE.norms)
    assert (minutes.on_site, minutes.offsite, minutes.credited_offsite) == (450, 60, 30)
    assert minutes.met
    assert month_status(minutes, at("2026-03-25", "12:00"), 2026, 3, 20) is MonthStatus.met


def test_off_site_credit_stops_at_the_cap_and_is_zero_by_default() -> None:
    lots = [OffsiteService(at("2026-03-05", "10:00"), 600)]
    assert month_minutes(2026, 3, [], lots, GUANGZHOU_STYLE.norms).credited_offsite == 120
    assert month_minutes(2026, 3, [], lots, ZAOZHUANG.norms).credited_offsite == 0


def test_a_visit_across_midnight_at_a_month_end_is_split_between_the_months() -> None:
    crossing = visit("2026-03-31", "21:00", "2026-04-01", "01:30")
    assert months_touched(crossing.started_at, crossing.ended_at) == [(2026, 3), (2026, 4)]
    assert month_minutes(2026, 3, [crossing], [], ZAOZHUANG.norms).on_site == 180
    assert month_minutes(2026, 4, [crossing], [], ZAOZHUANG.norms).on_site == 90


def test_month_boundaries_are_asia_shanghai_not_utc() -> None:
    # 2026-03-31 17:00 UTC is 2026-04-01 01:00 in Shanghai: April's minutes.
    late = Visit(
        datetime.fromisoformat("2026-03-31T17:00:00+00:00"),
        datetime.fromisoformat("2026-03-31T18:00:00+00:00"),
    )
    assert month_minutes(2026, 3, [late], [], ZAOZHUANG.norms).on_site == 0
    assert month_minutes(2026, 4, [late], [], ZAOZHUANG.norms).on_site == 60


@pytest.mark.parametrize(
    ("on_site", "now", "status"),
    [
        (480, at("2026-03-05", "09:00"), MonthStatus.met),
        (0, at("2026-03-10", "09:00"), MonthStatus.on_track),
        (100, at("2026-03-25", "09:00"), MonthStatus.at_risk),
        (400, at("2026-03-25", "09:00"), MonthStatus.on_track),
        (479, at("2026-04-01", "00:00"), MonthStatus.missed),
    ],
)
def test_the_months_status_follows_its_pace(on_site: int, now: datetime, status: MonthStatus) -> None:
    start = at("2026-03-02", "08:00")
    visits = [Visit(start, start + timedelta(minutes=on_site))] if on_site else []
    minutes = month_minutes(2026, 3, visits, [], ZAOZHUANG.norms)
    assert minutes.on_site == on_site
    assert month_status(minutes, now, 2026, 3, 20) is status


def test_a_quarter_without_a_lecture_is_due_near_its_end_then_missed() -> None:
    first_quarter = lecture_periods(2026, LecturePeriod.quarter)[0]
    assert first_quarter == Period(date(2026, 1, 1), date(2026, 3, 31))
    assert lecture_alert(first_quarter, 0, 1, date(2026, 3, 1), 14) is None
    assert lecture_alert(first_quarter, 0, 1, date(2026, 3, 20), 14) is LectureAlert.due
    assert lecture_alert(first_quarter, 0, 1, date(2026, 4, 1), 14) is LectureAlert.missed
    assert lecture_alert(first_quarter, 1, 1, date(2026, 4, 1), 14) is None


NANSHA = PolicyRules(lectures_required=0, evening_or_holiday_lectures_per_year=2)


def lectures(*specs: tuple[str, bool]) -> list[Lecture]:
    return [Lecture(date.fromisoformat(day), evening, False) for day, evening in specs]


def facts(held: list[Lecture]) -> YearFacts:
    return YearFacts(
        months_met=12,
        months_assessed=12,
        lectures=held,
        feedback_scores=[],
        records_recorded_in_time=0,
        records=0,
    )


def test_nansha_needs_two_evening_or_holiday_lectures_a_year() -> None:
    rules = PolicyRules(
        lecture_period=LecturePeriod.year, evening_or_holiday_lectures_per_year=2, large_events_per_year=0
    )
    one = component_scores(facts(lectures(("2026-05-01", True), ("2026-06-10", False))), rules, 2026)
    two = component_scores(facts(lectures(("2026-05-01", True), ("2026-10-01", True))), rules, 2026)
    assert one[ScoreComponent.lectures] == 75.0  # the yearly lecture is held, half the evening ones
    assert two[ScoreComponent.lectures] == 100.0


def test_quarterly_lectures_score_the_share_of_quarters_met() -> None:
    held = lectures(("2026-02-01", False), ("2026-05-01", False), ("2026-08-01", False))
    scores = component_scores(facts(held), ZAOZHUANG, 2026)
    assert scores[ScoreComponent.lectures] == 75.0
    assert scores[ScoreComponent.large_events] == 0.0
    assert ScoreComponent.feedback not in scores


@pytest.mark.parametrize(
    ("grade", "ratio", "paid"),
    [
        (Grade.excellent, 1.0, Decimal("3000.00")),
        (Grade.good, 1.0, Decimal("3000.00")),
        (Grade.qualified, 0.7, Decimal("2100.00")),
        (Grade.unqualified, 0.5, Decimal("1500.00")),
        (Grade.violation, 0.0, Decimal("0.00")),
    ],
)
def test_a_3000_yuan_village_pays_by_grade(grade: Grade, ratio: float, paid: Decimal) -> None:
    assert ZAOZHUANG.subsidy_ratios[grade] == ratio
    assert (
        subsidy_yuan(
            Decimal("3000"),
            ZAOZHUANG.subsidy_ratios[grade],
            term_share(2026, date(2026, 1, 1), date(2026, 12, 31)),
        )
        == paid
    )


def test_a_term_shorter_than_the_year_pays_pro_rata() -> None:
    share = term_share(2026, date(2026, 7, 1), date(2026, 12, 31))
    assert share == Decimal(184) / Decimal(365)
    assert subsidy_yuan(Decimal("3000"), 1.0, share) == Decimal("1512.33")
    assert term_share(2026, date(2025, 1, 1), date(2025, 12, 31)) == 0


@pytest.mark.parametrize(
    ("score", "violation", "grade"),
    [
        (95, False, Grade.excellent),
        (85, False, Grade.good),
        (60, False, Grade.qualified),
        (59.99, False, Grade.unqualified),
        (99, True, Grade.violation),
    ],
)
def test_grades_follow_thresholds_and_a_violation_forces_its_grade(
    score: float, violation: bool, grade: Grade
) -> None:
    assert grade_for(score, ZAOZHUANG, violation) is grade


def test_the_score_weighs_the_components_present() -> None:
    components = {ScoreComponent.monthly_hours: 100.0, ScoreComponent.lectures: 50.0}
    weights = {
        ScoreComponent.monthly_hours: 0.35,
        ScoreComponent.lectures: 0.15,
        ScoreComponent.feedback: 0.5,
    }
    assert annual_score(components, weights) == 85.0


def policy(region: str, since: str, rules: PolicyRules = ZAOZHUANG) -> PublishedPolicy:
    return PublishedPolicy(region, date.fromisoformat(since), uuid.uuid4(), rules)


def test_a_county_policy_overrides_the_province_from_its_effective_date_only() -> None:
    province = policy("37", "2026-01-01")
    county = policy("370402", "2026-07-01", GUANGZHOU_STYLE)
    village = "370402105201"
    assert policy_in_force([province, county], village, date(2026, 6, 30)) is province
    assert policy_in_force([province, county], village, date(2026, 7, 1)) is county
    assert policy_in_force([province, county], "370403101201", date(2026, 8, 1)) is province
    assert policy_in_force([county], village, date(2026, 1, 1)) is None


def test_a_newer_policy_of_the_same_region_replaces_the_older() -> None:
    old, new = policy("37", "2025-01-01"), policy("37", "2026-01-01")
    assert policy_in_force([new, old], "370402105201", date(2026, 3, 1)) is new


def test_norms_differ_by_kind_of_village_and_remote_villages() -> None:
    near_town = VillageNorms(on_site_minutes_per_month=960)
    remote = VillageNorms(on_site_minutes_per_month=480)
    rules = PolicyRules(
        norms_by_village_kind={VillageKind.urban_community: near_town, VillageKind.remote: remote}
    )
    assert norms_for(rules, "370402105101", []) is near_town
    assert norms_for(rules, "370402105201", []) == rules.norms
    assert norms_for(rules, "370402105101", ["remote", "mountain"]) is remote
    assert norms_for(rules, "370402105450", []) is near_town  # 类似居委会
    assert norms_for(rules, "370402105550", []) == rules.norms  # 类似村委会


def test_the_months_minutes_of_a_visit_are_the_contracts_split() -> None:
    """The assessment and the dashboard split a visit the same way (contracts.service_time): the parts add
    up to the visit's whole minutes, however the seconds fall."""
    crossing = Visit(at("2026-03-31", "23:00:30"), at("2026-04-01", "01:29:50"))
    march = month_minutes(2026, 3, [crossing], [], ZAOZHUANG.norms).on_site
    april = month_minutes(2026, 4, [crossing], [], ZAOZHUANG.norms).on_site
    assert (march, april) == (59, 90)
    parts = on_site_minutes_by_month(crossing.started_at, crossing.ended_at)
    assert [part.minutes for part in parts] == [march, april]
