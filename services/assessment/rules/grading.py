"""The year's grade (年度考核) and when a year is graded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from contracts.events import (
    Grade,
    PolicyRules,
    ScoreComponent,
)
from services.assessment.rules.closing import CloseDecision
from services.assessment.rules.hours import Term, local_day, month_bounds
from services.assessment.rules.lectures import lecture_periods
from services.assessment.rules.policy import PublishedPolicy, policy_in_force
from services.assessment.rules.scoring import (
    annual_score,
    component_scores,
    grade_for,
    term_share,
    year_subsidy,
)
from services.assessment.rules.standing import (
    Activity,
    activities_by_month,
    counted,
    month_compliance,
    month_in_term,
    year_facts,
)


@dataclass(frozen=True)
class YearGrade:
    year: int
    policy: PublishedPolicy | None
    components: dict[ScoreComponent, float]
    score: float
    grade: Grade
    subsidy_ratio: float
    subsidy_yuan: Decimal


def year_grade(
    year: int,
    village_code: str,
    tags: Sequence[str],
    policies: Sequence[PublishedPolicy],
    terms: Sequence[Term],
    activities: Iterable[Activity],
    violation: bool,
) -> YearGrade:
    """The year-end grade (年度考核): every month of the term in the year, every lecture period the term
    overlaps, the year's feedback and timeliness; the subsidy is the annual subsidy times the grade's
    ratio, pro rata for the part of the year each term covers."""
    year_terms = [term for term in terms if term_share(year, term.term_start, term.last_day_served)]
    last_day = (
        min(
            [
                date(year, 12, 31),
                *[term.last_day_served for term in year_terms],
            ]
        )
        if year_terms
        else date(year, 12, 31)
    )
    policy = policy_in_force(policies, village_code, last_day)
    rules = policy.rules if policy else PolicyRules()
    activities = list(activities)
    items = [item for item in counted(activities, terms) if local_day(item.occurred_at).year == year]
    months = [month for month in range(1, 13) if month_in_term(year, month, year_terms)]
    by_month = activities_by_month(activities)
    year_end = month_bounds(year, 12)[1]
    met = sum(
        month_compliance(
            year_end, year, month, village_code, tags, policies, terms, by_month.get((year, month), [])
        ).minutes.met
        for month in months
    )
    first_served = min((term.term_start for term in year_terms), default=date(year, 1, 1))
    periods = [period for period in lecture_periods(year, rules.lecture_period) if period.end >= first_served]
    facts = year_facts(items, met, len(months), rules)
    components = component_scores(facts, rules, year, judged_periods=periods)
    score = annual_score(components, rules.score_weights)
    grade = grade_for(score, rules, violation)
    ratio = rules.subsidy_ratios[grade]
    return YearGrade(year, policy, components, score, grade, ratio, year_subsidy(year, year_terms, ratio))


@dataclass(frozen=True)
class PublishedGrade:
    revision: int
    score: float
    grade: Grade
    subsidy_yuan: Decimal


def grade_decision(latest: PublishedGrade | None, found: YearGrade) -> CloseDecision | None:
    """Like a month's close: revision 1, then a new revision saying what changed, or nothing."""
    if latest is None:
        return CloseDecision(1, None)
    before = {"score": latest.score, "grade": str(latest.grade), "subsidy_yuan": latest.subsidy_yuan}
    now = {"score": found.score, "grade": str(found.grade), "subsidy_yuan": found.subsidy_yuan}
    changed = [f"{name}: {before[name]} -> {value}" for name, value in now.items() if before[name] != value]
    return CloseDecision(latest.revision + 1, "; ".join(changed)) if changed else None


def years_to_grade(terms: Sequence[Term], now: datetime, grace_days: int) -> list[int]:
    """Every year with a term whose end (plus the grace period) has passed, however old."""
    first_year = min((term.term_start.year for term in terms), default=local_day(now).year)
    finished = [
        year
        for year in range(first_year, local_day(now).year)
        if month_bounds(year, 12)[1] + timedelta(days=grace_days) <= now
        and any(term_share(year, term.term_start, term.last_day_served) for term in terms)
    ]
    return finished
