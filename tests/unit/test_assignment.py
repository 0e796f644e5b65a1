"""One definition of "assigned to this village on that day", as a table of cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.assignment import AssignmentTerm, assigned_between, assigned_on
from contracts.events import DEFAULT_ZONE
from services.assessment.rules import Term, months_to_close, subsidy_yuan, year_grade
from tests.support.assignment_cases import CASES, RELEASED_AFTER_THE_END


@pytest.mark.parametrize(
    ("terms", "day", "assigned"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_assigned_on_the_day(terms: list[AssignmentTerm], day: date, assigned: bool) -> None:
    assert assigned_on(terms, day) is assigned
    assert assigned_between(terms, day, day) is assigned


@pytest.mark.parametrize(
    ("terms", "day", "assigned"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_the_assessment_uses_the_same_definition(
    terms: list[AssignmentTerm], day: date, assigned: bool
) -> None:
    """The assessment's terms carry a subsidy too; whether a day is served is the contract's answer."""
    with_subsidy = [Term(t.term_start, t.term_end, t.released_on, Decimal(3000)) for t in terms]
    assert assigned_on(with_subsidy, day) is assigned


def test_a_release_dated_after_the_term_end_neither_pays_nor_closes_beyond_the_end() -> None:
    """Term 2026-01-01 to 2026-06-30, released (late) on 2026-09-01: half a year of subsidy, six months."""
    term = RELEASED_AFTER_THE_END
    assessed = Term(term.term_start, term.term_end, term.released_on, Decimal("3000.00"))
    grade = year_grade(2026, "370402105201", [], [], [assessed], [], False)
    served = Decimal((term.term_end - term.term_start + timedelta(days=1)).days) / Decimal(365)
    assert grade.subsidy_yuan == subsidy_yuan(Decimal("3000.00"), grade.subsidy_ratio, served)
    months = months_to_close([assessed], datetime(2027, 1, 20, tzinfo=DEFAULT_ZONE), 10)
    assert months == [(2026, month) for month in range(1, 7)]
