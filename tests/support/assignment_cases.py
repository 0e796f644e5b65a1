"""The table of cases for "assigned to this village on that day" (contracts.assignment), shared by the
Python test and its SQL twin."""

from __future__ import annotations

from datetime import date

from contracts.assignment import AssignmentTerm

YEAR_2026 = AssignmentTerm(date(2026, 1, 1), date(2026, 12, 31), None)
RELEASED = AssignmentTerm(date(2026, 1, 1), date(2026, 12, 31), date(2026, 3, 10))
RELEASED_AFTER_THE_END = AssignmentTerm(date(2026, 1, 1), date(2026, 6, 30), date(2026, 9, 1))
REASSIGNED = AssignmentTerm(date(2026, 9, 1), date(2027, 8, 31), None)

# (case, the advisor's terms in the village the record names, day, assigned)
CASES: list[tuple[str, list[AssignmentTerm], date, bool]] = [
    ("the term's first day", [YEAR_2026], date(2026, 1, 1), True),
    ("the day before the term", [YEAR_2026], date(2025, 12, 31), False),
    ("the term's last day", [YEAR_2026], date(2026, 12, 31), True),
    ("the day after the term", [YEAR_2026], date(2027, 1, 1), False),
    ("no term in the village", [], date(2026, 5, 1), False),
    ("the release's date is the last day served", [RELEASED], date(2026, 3, 10), True),
    ("the day after the release", [RELEASED], date(2026, 3, 11), False),
    (
        "a release dated after the term's end does not lengthen it",
        [RELEASED_AFTER_THE_END],
        date(2026, 7, 1),
        False,
    ),
    ("released, then reassigned: between the terms", [RELEASED, REASSIGNED], date(2026, 5, 1), False),
    ("released, then reassigned: in the new term", [RELEASED, REASSIGNED], date(2026, 9, 1), True),
    ("released, then reassigned: before the release", [RELEASED, REASSIGNED], date(2026, 2, 1), True),
    # A merge moves records to the successor, not assignments: the successor's own terms decide, so an
    # advisor with a term only in the merged-away village has none in the successor.
    ("merged away: no term of the successor's own", [], date(2026, 5, 1), False),
]
