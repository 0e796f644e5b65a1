"""Closing decisions: revision 1, a new revision saying what changed, nothing when figures stand; which
months are due; which alerts a situation calls for."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from contracts.events import DEFAULT_ZONE, LecturePeriod, PolicyRules
from services.assessment.rules import (
    MonthMinutes,
    Period,
    PublishedClose,
    Term,
    alert_on_missed_month,
    close_decision,
    due_alerts,
    months_to_close,
    previous_lecture_period,
    snapshot,
    years_to_grade,
)

TERM = Term(date(2026, 1, 1), date(2026, 12, 31), None, Decimal(3000))


def test_the_first_close_is_revision_one() -> None:
    decision = close_decision(None, MonthMinutes(300, 0, 0, 480))
    assert decision is not None
    assert (decision.revision, decision.changes) == (1, None)


def test_unchanged_figures_publish_nothing_and_changed_ones_a_revision_that_says_what_changed() -> None:
    closed = PublishedClose(1, 300, 0, 480, False)
    assert close_decision(closed, MonthMinutes(300, 0, 0, 480)) is None
    decision = close_decision(closed, MonthMinutes(540, 0, 0, 480))
    assert decision is not None
    assert decision.revision == 2
    assert decision.changes == "on_site_minutes: 300 -> 540; met: False -> True"


def at(day: str, clock: str = "12:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=DEFAULT_ZONE)


def test_a_month_closes_once_its_grace_period_is_over() -> None:
    assert months_to_close([TERM], at("2026-04-10", "23:59"), 10) == [(2026, 1), (2026, 2)]
    assert months_to_close([TERM], at("2026-04-11", "00:00"), 10) == [(2026, 1), (2026, 2), (2026, 3)]


def test_months_outside_the_term_are_not_closed() -> None:
    released = Term(date(2026, 2, 15), date(2026, 12, 31), date(2026, 3, 10), Decimal(3000))
    assert months_to_close([released], at("2026-09-01"), 10) == [(2026, 2), (2026, 3)]


def test_the_previous_lecture_period_reaches_back_into_last_year() -> None:
    assert previous_lecture_period(date(2026, 2, 1), LecturePeriod.quarter) == Period(
        date(2025, 10, 1), date(2025, 12, 31)
    )
    assert previous_lecture_period(date(2026, 5, 1), LecturePeriod.quarter) == Period(
        date(2026, 1, 1), date(2026, 3, 31)
    )


def kinds(
    now: datetime, previous_held: int, last_activity: datetime | None, assigned_since: date
) -> list[str]:
    rules = PolicyRules()
    state = snapshot(now, "370402105201", [], [], [TERM], [], violation_this_year=False)
    previous = previous_lecture_period(now.date(), rules.lecture_period)
    return [
        alert.kind
        for alert in due_alerts(now, state, previous, previous_held, last_activity, assigned_since, rules)
    ]


def test_alerts_for_a_quiet_advisor_near_a_quarter_end() -> None:
    # 2026-06-25: June at risk (nothing by day 25), Q2 ends within 14 days without a lecture,
    # Q1 passed without one, and nothing recorded for over 30 days.
    assert kinds(at("2026-06-25"), 0, at("2026-05-01"), date(2026, 1, 1)) == [
        "hours_at_risk",
        "lecture_due",
        "lecture_missed",
        "no_activity",
    ]


def test_no_lecture_missed_for_a_period_the_advisor_did_not_serve_whole() -> None:
    assert "lecture_missed" not in kinds(at("2026-04-05"), 0, at("2026-04-01"), date(2026, 3, 1))
    assert "lecture_missed" not in kinds(at("2026-04-05"), 1, at("2026-04-01"), date(2026, 1, 1))


def test_alert_keys_name_their_period_so_each_is_raised_once() -> None:
    rules = PolicyRules()
    now = at("2026-06-25")
    state = snapshot(now, "370402105201", [], [], [TERM], [], violation_this_year=False)
    keys = {
        alert.kind: alert.key
        for alert in due_alerts(now, state, None, 0, at("2026-05-01"), date(2026, 1, 1), rules)
    }
    assert keys == {"hours_at_risk": "2026-06", "lecture_due": "2026-04-01", "no_activity": "2026-05-01"}


def test_every_month_of_every_term_is_closed_however_old() -> None:
    """A province adopting the system brings its history (the programme began in 2017)."""
    old = Term(date(2017, 11, 1), date(2018, 2, 28), None, Decimal(3000))
    assert months_to_close([old, TERM], at("2026-04-11", "00:00"), 10) == [
        (2017, 11),
        (2017, 12),
        (2018, 1),
        (2018, 2),
        (2026, 1),
        (2026, 2),
        (2026, 3),
    ]


def test_every_finished_year_with_a_term_is_graded_however_old() -> None:
    terms = [
        Term(date(2017, 6, 1), date(2019, 5, 31), None, Decimal(3000)),
        Term(date(2021, 1, 1), date(2026, 12, 31), date(2023, 3, 31), Decimal(3000)),
    ]
    assert years_to_grade(terms, at("2026-01-12"), 10) == [2017, 2018, 2019, 2021, 2022, 2023]
    assert years_to_grade(terms, at("2024-01-10"), 10) == [2017, 2018, 2019, 2021, 2022]


@pytest.mark.parametrize(
    ("month", "now", "alerted"),
    [
        ((2026, 2), "2026-03-11T09:00:00+08:00", True),  # closed as its grace ends: news
        ((2026, 2), "2026-04-10T09:00:00+08:00", True),  # within a month of that
        ((2026, 2), "2026-04-12T09:00:00+08:00", False),  # later: history, no call to act
        ((2023, 5), "2027-01-12T09:00:00+08:00", False),  # imported history closed years later
    ],
)
def test_a_missed_month_is_alerted_while_it_is_news_not_for_years_of_history(
    month: tuple[int, int], now: str, alerted: bool
) -> None:
    assert alert_on_missed_month(*month, datetime.fromisoformat(now), grace_days=10) is alerted
