"""Where an advisor stands, worked by hand: 2026-03-25 in a village under Zaozhuang's default rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from contracts.events import DEFAULT_ZONE, Grade, ScoreComponent
from services.assessment.rules import Activity, LectureAlert, MonthStatus, Term, Visit, snapshot

VILLAGE = "370402105201"
TERM = Term(date(2026, 1, 1), date(2026, 12, 31), None, Decimal("3000.00"))
NOW = datetime(2026, 3, 25, 12, 0, tzinfo=DEFAULT_ZONE)


def at(day: str, clock: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=DEFAULT_ZONE)


def visit(day: str, minutes: int) -> Activity:
    start = at(day)
    return Activity(
        "visit.logged",
        start,
        start + timedelta(hours=1),
        Visit(start, start + timedelta(minutes=minutes)),
        0,
        False,
        False,
        None,
        False,
    )


def lecture(day: str) -> Activity:
    return Activity("lecture.held", at(day), at(day) + timedelta(hours=2), None, 0, False, False, None, False)


def feedback(day: str, score: int) -> Activity:
    return Activity(
        "feedback.submitted", at(day), at(day) + timedelta(hours=1), None, 0, False, False, score, False
    )


BASE = [
    visit("2026-01-12", 480),
    lecture("2026-02-10"),
    visit("2026-03-10", 450),
    feedback("2026-03-11", 5),
    feedback("2026-03-12", 4),
]


def test_the_worked_example() -> None:
    found = snapshot(NOW, VILLAGE, [], [], [TERM], BASE, violation_this_year=False)
    assert found.month == "2026-03"
    assert (found.month_minutes.on_site, found.month_minutes.required) == (450, 480)
    assert found.month_status is MonthStatus.on_track  # 450 is ahead of 480 x 25/31
    assert (found.lectures_in_period, found.lecture_alert) == (1, None)
    assert found.year_components == {
        ScoreComponent.monthly_hours: 50.0,  # January met, February missed, March still open
        ScoreComponent.lectures: 100.0,  # the first quarter's lecture is held
        ScoreComponent.large_events: 0.0,
        ScoreComponent.feedback: 87.5,  # average 4.5 on 1-5
        ScoreComponent.timely_recording: 100.0,
    }
    assert (found.feedback_this_year, found.feedback_average_this_year) == (2, 4.5)  # 我的本月 shows it
    assert found.year_score == 69.38
    assert found.provisional_grade is Grade.qualified
    assert found.provisional_subsidy_yuan == Decimal("2100.00")
    assert (found.trailing_12_months_met, found.trailing_12_months_assessed) == (1, 2)


def test_a_void_stops_a_record_counting() -> None:
    voided = [replace(BASE[0], voided=True), *BASE[1:]]
    found = snapshot(NOW, VILLAGE, [], [], [TERM], voided, violation_this_year=False)
    assert found.year_components[ScoreComponent.monthly_hours] == 0.0


def test_without_ratings_there_is_no_average() -> None:
    found = snapshot(NOW, VILLAGE, [], [], [TERM], BASE[:3], violation_this_year=False)
    assert (found.feedback_this_year, found.feedback_average_this_year) == (0, None)


def test_records_outside_the_term_do_not_count() -> None:
    late_term = replace(TERM, term_start=date(2026, 3, 1))
    found = snapshot(NOW, VILLAGE, [], [], [late_term], BASE, violation_this_year=False)
    assert found.month_minutes.on_site == 450
    assert found.lectures_in_period == 0
    assert found.lecture_alert is LectureAlert.due
    assert ScoreComponent.monthly_hours not in found.year_components  # no month of the term has ended


def test_a_violation_forces_the_grade_and_pays_nothing() -> None:
    found = snapshot(NOW, VILLAGE, [], [], [TERM], BASE, violation_this_year=True)
    assert found.provisional_grade is Grade.violation
    assert found.provisional_subsidy_yuan == Decimal("0.00")


def test_late_records_are_not_timely() -> None:
    late = replace(BASE[2], recorded_at=BASE[2].occurred_at + timedelta(days=30))
    found = snapshot(NOW, VILLAGE, [], [], [TERM], [*BASE[:2], late, *BASE[3:]], violation_this_year=False)
    assert found.year_components[ScoreComponent.timely_recording] == 80.0  # 4 of 5 records in time


def test_a_snapshot_as_of_a_past_day_ignores_what_happened_after_it() -> None:
    later = [*BASE, lecture("2026-05-15"), feedback("2026-06-01", 1)]
    assert snapshot(NOW, VILLAGE, [], [], [TERM], later, violation_this_year=False) == snapshot(
        NOW, VILLAGE, [], [], [TERM], BASE, violation_this_year=False
    )
