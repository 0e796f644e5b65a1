"""The year's score: components, weights, grade, subsidy (pro rata), timeliness."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from contracts.events import (
    DEFAULT_ZONE,
    Grade,
    PolicyRules,
    ScoreComponent,
)
from services.assessment.rules.hours import CENT, Term
from services.assessment.rules.lectures import Lecture, Period, lecture_periods


@dataclass(frozen=True)
class YearFacts:
    """What a year's grade rests on, for one advisor in one village (only counted records)."""

    months_met: int
    months_assessed: int
    lectures: Sequence[Lecture]
    feedback_scores: Sequence[int]
    records_recorded_in_time: int
    records: int


def component_scores(
    facts: YearFacts, rules: PolicyRules, year: int, judged_periods: Sequence[Period] | None = None
) -> dict[ScoreComponent, float]:
    """Each component 0-100. A component without anything to judge (no months in the term, no lecture
    period ended yet, no feedback, no records) is left out, and `annual_score` renormalises the weights
    of the others. `judged_periods` limits the lecture periods judged (all of the year by default)."""
    scores: dict[ScoreComponent, float] = {}
    if facts.months_assessed:
        scores[ScoreComponent.monthly_hours] = 100 * facts.months_met / facts.months_assessed
    periods = (
        list(judged_periods) if judged_periods is not None else lecture_periods(year, rules.lecture_period)
    )
    if rules.lectures_required and periods:
        met = sum(
            sum(period.contains(lecture.held_on) for lecture in facts.lectures) >= rules.lectures_required
            for period in periods
        )
        share = met / len(periods)
        if rules.evening_or_holiday_lectures_per_year:
            evening = sum(lecture.evening_or_holiday for lecture in facts.lectures)
            share = (share + min(1.0, evening / rules.evening_or_holiday_lectures_per_year)) / 2
        scores[ScoreComponent.lectures] = 100 * share
    if rules.large_events_per_year:
        held = sum(lecture.large_event for lecture in facts.lectures)
        scores[ScoreComponent.large_events] = 100 * min(1.0, held / rules.large_events_per_year)
    if facts.feedback_scores:
        average = sum(facts.feedback_scores) / len(facts.feedback_scores)
        scores[ScoreComponent.feedback] = 100 * (average - 1) / 4
    if facts.records:
        scores[ScoreComponent.timely_recording] = 100 * facts.records_recorded_in_time / facts.records
    return scores


def annual_score(components: dict[ScoreComponent, float], weights: dict[ScoreComponent, float]) -> float:
    present = {name: weight for name, weight in weights.items() if name in components and weight > 0}
    total_weight = sum(present.values())
    if total_weight == 0:
        return 0.0
    return round(sum(components[name] * weight for name, weight in present.items()) / total_weight, 2)


def grade_for(score: float, rules: PolicyRules, violation: bool) -> Grade:
    """A violation of law or discipline in the year forces `violation`, whatever the score."""
    if violation:
        return Grade.violation
    thresholds = rules.grade_thresholds
    if score >= thresholds.excellent:
        return Grade.excellent
    if score >= thresholds.good:
        return Grade.good
    if score >= thresholds.qualified:
        return Grade.qualified
    return Grade.unqualified


def term_share(year: int, term_start: date, term_end: date) -> Decimal:
    """The part of the year a term covers (pro rata for a term shorter than the year)."""
    first = max(term_start, date(year, 1, 1))
    last = min(term_end, date(year, 12, 31))
    if last < first:
        return Decimal(0)
    days_in_year = 366 if calendar.isleap(year) else 365
    return Decimal((last - first).days + 1) / Decimal(days_in_year)


def subsidy_yuan(annual_subsidy: Decimal, ratio: float, share: Decimal) -> Decimal:
    return (annual_subsidy * Decimal(str(ratio)) * share).quantize(CENT, rounding=ROUND_HALF_UP)


def year_subsidy(year: int, terms: Iterable[Term], ratio: float) -> Decimal:
    """A year's subsidy at a grade's ratio: each term's annual amount for the part of the year it covers
    (a grade's, and an adjusted grade's in the approval)."""
    return sum(
        (
            subsidy_yuan(
                term.annual_subsidy_yuan, ratio, term_share(year, term.term_start, term.last_day_served)
            )
            for term in terms
        ),
        Decimal("0.00"),
    )


def in_time(occurred_at: datetime, recorded_at: datetime, days: int) -> bool:
    """工作信息报送: recorded within the policy's number of days of happening."""
    return recorded_at - occurred_at <= timedelta(days=days)


def timeliness_judged(recorded_at: datetime | None) -> bool:
    """The timeliness policy, for every record alike: judged on its own `recorded_at`. An imported record
    (history from an old ledger) keeps its original one and is judged on it, never on the day of the
    import; one whose ledger did not say when it was recorded has none and is left out of the timeliness
    score (neither on time nor late: it counts in neither the numerator nor the denominator)."""
    return recorded_at is not None


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=DEFAULT_ZONE)
