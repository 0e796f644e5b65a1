"""全覆盖率 kept as steps (issue 17): a region's villages and, for any day, how many of them have an advisor
or a team assigned, read from a handful of rows instead of every village of the region.

A village counts when it is registered as a village and not retired (`regions.retired_on IS NULL`, whatever
the day: a retired village leaves the count at once). It is covered on the days of the union of its terms,
advisors' and teams' alike (`contracts.assignment`: from `term_start` to the last day served). That union
is a few disjoint spans; each adds +1 to the covered count on its first day and -1 on the day after its
last. A region's row of a day holds the sum of those steps over the villages below it, and its village
count on a day before every day (`ALWAYS`); the count on a day is the sum of the rows up to it.

The projection keeps each village's spans (`village_coverage`): when a batch touches a village (its
registration or retirement, a term or a release of an advisor or a team), the village's spans are computed
again from the tables, and only the difference to what it had is written to `coverage_steps`, for the
village and every region above it. The rows do not depend on how the events were batched: a row back at 0
is removed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from contracts.events import COUNTRY_CODE
from services.dashboard.rules import LEVEL_PREFIXES

# The day a region's village count is kept on, before every day: asyncpg writes date.min as -infinity.
ALWAYS = date.min
Span = tuple[date, date]  # first and last day covered, both included
# (region code, day) → (villages, covered): what a village adds to the regions' rows
Steps = Counter[tuple[str, date, str]]


def covered_spans(terms: Iterable[Span]) -> tuple[Span, ...]:
    """The days covered by any of a village's terms (first day, last day served), as disjoint spans in
    order; spans that touch are one. A term released before its first day covers nothing."""
    spans: list[Span] = []
    for first, last in sorted(term for term in terms if term[0] <= term[1]):
        if spans and (spans[-1][1] == date.max or first <= spans[-1][1] + timedelta(days=1)):
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    return tuple(spans)


def regions_above(village_code: str) -> tuple[str, ...]:
    """The codes a village counts in: the country's, each level's prefix of its code, and its own."""
    return (COUNTRY_CODE, *(village_code[:digits] for digits in LEVEL_PREFIXES))


def village_steps(village_code: str, spans: Sequence[Span] | None, sign: int, into: Steps) -> None:
    """Add what a counted village (`spans` not None) adds to its regions' rows, times `sign`."""
    if spans is None:
        return
    days: Counter[tuple[date, str]] = Counter({(ALWAYS, "villages"): 1})
    for first, last in spans:
        days[(first, "covered")] += 1
        if last < date.max:
            days[(last + timedelta(days=1), "covered")] -= 1
    for code in regions_above(village_code):
        for (day, column), value in days.items():
            into[(code, day, column)] += sign * value


def step_rows(steps: Steps) -> list[tuple[str, date, int, int]]:
    """The changes as rows (region code, day, villages, covered) in key order, the rows at 0 left out."""
    keys = sorted({(code, day) for code, day, _ in steps})
    rows = [(code, day, steps[(code, day, "villages")], steps[(code, day, "covered")]) for code, day in keys]
    return [row for row in rows if row[2] or row[3]]
