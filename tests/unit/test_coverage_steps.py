"""全覆盖率 as steps (services/dashboard/coverage.py): a village's terms as disjoint spans, and the steps of
the regions above it, summed up to a day, equal to counting the villages covered on that day."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

from contracts.events import COUNTRY_CODE
from services.dashboard.coverage import (
    ALWAYS,
    Span,
    Steps,
    covered_spans,
    regions_above,
    step_rows,
    village_steps,
)

D = date(2026, 1, 1)


def day(n: int) -> date:
    return D + timedelta(days=n)


def test_overlapping_and_touching_terms_are_one_span() -> None:
    terms = [(day(10), day(20)), (day(0), day(5)), (day(6), day(8)), (day(15), day(30)), (day(40), day(41))]
    assert covered_spans(terms) == ((day(0), day(8)), (day(10), day(30)), (day(40), day(41)))


def test_a_term_released_before_its_first_day_covers_nothing() -> None:
    assert covered_spans([(day(5), day(4))]) == ()
    assert covered_spans([(day(5), day(5))]) == ((day(5), day(5)),)


def test_a_term_to_the_end_of_the_calendar_has_no_end_step() -> None:
    spans = covered_spans([(day(0), date.max), (day(3), day(9))])
    assert spans == ((day(0), date.max),)
    steps: Steps = Counter()
    village_steps("370402001201", spans, 1, steps)
    assert steps[("370402001201", day(0), "covered")] == 1
    assert sum(value for (_, _, column), value in steps.items() if column == "covered") == 6


def test_a_village_counts_in_the_country_and_each_level_above_it() -> None:
    village = "370402001201"
    assert regions_above(village) == (COUNTRY_CODE, "37", "3704", "370402", "370402001", village)


def test_a_village_not_counted_adds_nothing_and_one_without_terms_adds_its_count() -> None:
    steps: Steps = Counter()
    village_steps("370402001201", None, 1, steps)
    assert step_rows(steps) == []
    village_steps("370402001201", (), 1, steps)
    assert step_rows(steps) == [(code, ALWAYS, 1, 0) for code in sorted(regions_above("370402001201"))]


def test_a_change_and_its_undoing_leave_no_rows() -> None:
    steps: Steps = Counter()
    spans = covered_spans([(day(0), day(9))])
    village_steps("370402001201", spans, 1, steps)
    village_steps("370402001201", spans, -1, steps)
    assert step_rows(steps) == []


def test_the_steps_summed_to_a_day_count_the_villages_covered_that_day() -> None:
    """Random villages and terms, changed and changed again as batches would: at every day, each region's
    rows up to it hold its counted villages and those with a term covering the day."""
    rng = random.Random(7)
    villages = [f"37040{t}00{t}2{n:02d}" for t in (1, 2) for n in range(12)] + ["410101001201"]
    kept: dict[str, tuple[Span, ...] | None] = {}
    rows: Counter[tuple[str, date, str]] = Counter()
    terms: dict[str, list[Span]] = {}
    for _ in range(200):
        village = rng.choice(villages)
        if rng.random() < 0.1:
            now: tuple[Span, ...] | None = None  # retired, or not registered
        else:
            first = day(rng.randint(0, 700))
            terms.setdefault(village, []).append((first, first + timedelta(days=rng.randint(-3, 400))))
            now = covered_spans(terms[village])
        steps: Steps = Counter()
        village_steps(village, kept.get(village), -1, steps)
        village_steps(village, now, 1, steps)
        kept[village] = now
        for code, when, villages_change, covered_change in step_rows(steps):
            rows[(code, when, "villages")] += villages_change
            rows[(code, when, "covered")] += covered_change
    regions = {code for village in villages for code in regions_above(village)}
    for n in range(-5, 1200, 7):
        for code in regions:
            below = [v for v in villages if code == COUNTRY_CODE or v.startswith(code)]
            counted = [v for v in below if kept.get(v) is not None]
            covered = [v for v in counted if any(a <= day(n) <= b for a, b in kept[v] or ())]
            summed = Counter()
            for (region, when, column), value in rows.items():
                if region == code and when <= day(n):
                    summed[column] += value
            assert (summed["villages"], summed["covered"]) == (len(counted), len(covered)), (code, n)
