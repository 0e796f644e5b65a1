"""The year's grade and the subsidy it pays, worked by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from contracts.events import DEFAULT_ZONE, Grade, ScoreComponent
from services.assessment.rules import (
    Activity,
    PublishedGrade,
    Term,
    Visit,
    grade_decision,
    month_compliance,
    year_grade,
    years_to_grade,
)

VILLAGE = "370402105201"
TERM = Term(date(2026, 1, 1), date(2026, 12, 31), None, Decimal("3000.00"))


def at(day: str, clock: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=DEFAULT_ZONE)


def visit(day: str, minutes: int = 480) -> Activity:
    start = at(day)
    return Activity(
        "visit.logged",
        start,
        start + timedelta(hours=2),
        Visit(start, start + timedelta(minutes=minutes)),
        0,
        False,
        False,
        None,
        False,
    )


def lecture(day: str, large: bool = False) -> Activity:
    return Activity("lecture.held", at(day), at(day) + timedelta(hours=2), None, 0, False, large, None, False)


def feedback(day: str, score: int) -> Activity:
    return Activity(
        "feedback.submitted", at(day), at(day) + timedelta(hours=1), None, 0, False, False, score, False
    )


def a_year(
    months_met: int, quarters_with_lecture: int, large_event: bool, scores: list[int]
) -> list[Activity]:
    found = [visit(f"2026-{month:02d}-10") for month in range(1, months_met + 1)]
    found += [
        lecture(f"2026-{3 * quarter + 2:02d}-15", large=large_event and quarter == 0)
        for quarter in range(quarters_with_lecture)
    ]
    found += [feedback("2026-11-01", score) for score in scores]
    return found


def test_a_full_year_of_work_is_excellent_and_paid_in_full() -> None:
    found = year_grade(2026, VILLAGE, [], [], [TERM], a_year(12, 4, True, [5, 5]), violation=False)
    assert found.score == 100.0
    assert (found.grade, found.subsidy_ratio, found.subsidy_yuan) == (
        Grade.excellent,
        1.0,
        Decimal("3000.00"),
    )


def test_a_middling_year_is_qualified_and_pays_2100() -> None:
    # 8 of 12 months (66.67), 3 of 4 quarters (75), no large event (0), feedback 4 (75), all in time (100):
    # 0.35 x 66.67 + 0.15 x 75 + 0.1 x 0 + 0.25 x 75 + 0.15 x 100 = 68.33
    found = year_grade(2026, VILLAGE, [], [], [TERM], a_year(8, 3, False, [4]), violation=False)
    assert found.components[ScoreComponent.monthly_hours] == 800 / 12
    assert found.score == 68.33
    assert (found.grade, found.subsidy_yuan) == (Grade.qualified, Decimal("2100.00"))


def test_a_poor_year_is_unqualified_and_pays_1500() -> None:
    found = year_grade(2026, VILLAGE, [], [], [TERM], a_year(3, 1, False, [2]), violation=False)
    assert (found.grade, found.subsidy_yuan) == (Grade.unqualified, Decimal("1500.00"))


def test_a_violation_pays_nothing_whatever_the_work() -> None:
    found = year_grade(2026, VILLAGE, [], [], [TERM], a_year(12, 4, True, [5]), violation=True)
    assert (found.grade, found.subsidy_yuan) == (Grade.violation, Decimal("0.00"))


def test_a_half_year_term_is_judged_on_its_own_months_and_paid_pro_rata() -> None:
    second_half = replace(TERM, term_start=date(2026, 7, 1))
    work = [visit(f"2026-{month:02d}-10") for month in range(7, 13)] + [
        lecture("2026-08-15", True),
        lecture("2026-11-15"),
    ]
    found = year_grade(2026, VILLAGE, [], [], [second_half], work, violation=False)
    assert found.components[ScoreComponent.monthly_hours] == 100.0
    assert found.components[ScoreComponent.lectures] == 100.0  # only the two quarters of the term are judged
    assert found.subsidy_yuan == Decimal("1512.33")  # 3000 x 184/365


def test_a_grade_is_revised_only_when_it_changes() -> None:
    found = year_grade(2026, VILLAGE, [], [], [TERM], a_year(8, 3, False, [4]), violation=False)
    published = PublishedGrade(1, found.score, found.grade, found.subsidy_yuan)
    assert grade_decision(published, found) is None
    worse = year_grade(2026, VILLAGE, [], [], [TERM], a_year(8, 3, False, [4]), violation=True)
    decision = grade_decision(published, worse)
    assert decision is not None
    assert decision.revision == 2
    assert "grade: qualified -> violation" in (decision.changes or "")


def test_a_year_is_graded_once_its_grace_period_is_over() -> None:
    assert years_to_grade([TERM], at("2027-01-10", "23:00"), 10) == []
    assert years_to_grade([TERM], at("2027-01-11", "00:00"), 10) == [2026]


def test_a_year_grade_counts_each_month_as_the_month_is_closed() -> None:
    """A visit from 31 December 22:00 to 1 January 06:00 gives January 360 minutes, in the year's grade
    as in the month's close (`month_compliance`): one computation of a month for every reader."""
    crossing = visit("2025-12-31", minutes=480)
    crossing = replace(
        crossing,
        occurred_at=at("2025-12-31", "22:00"),
        on_site=Visit(at("2025-12-31", "22:00"), at("2026-01-01", "06:00")),
    )
    january = [crossing, visit("2026-01-10", minutes=120)]
    terms = [Term(date(2025, 1, 1), date(2026, 12, 31), None, Decimal("3000.00"))]
    found = month_compliance(at("2027-01-12"), 2026, 1, VILLAGE, [], [], terms, january)
    assert (found.minutes.on_site, found.minutes.met) == (480, True)
    grade = year_grade(2026, VILLAGE, [], [], terms, january, False)
    assert grade.components[ScoreComponent.monthly_hours] == 100 * 1 / 12
