"""What counts and where an advisor stands: terms, activities, a month's compliance, the snapshot."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import mean

from contracts.assignment import assigned_between, assigned_on
from contracts.events import (
    Grade,
    PolicyRules,
    ScoreComponent,
    VillageNorms,
)
from services.assessment.rules.hours import (
    MonthMinutes,
    MonthStatus,
    OffsiteService,
    Term,
    Visit,
    local_day,
    month_bounds,
    month_minutes,
    month_of,
    month_status,
    months_touched,
)
from services.assessment.rules.lectures import Lecture, LectureAlert, Period, lecture_alert, lecture_periods
from services.assessment.rules.policy import PublishedPolicy, norms_for, policy_in_force
from services.assessment.rules.scoring import (
    YearFacts,
    annual_score,
    component_scores,
    grade_for,
    in_time,
    term_share,
    timeliness_judged,
    year_subsidy,
)


@dataclass(frozen=True)
class Activity:
    event_type: str
    occurred_at: datetime
    recorded_at: datetime | None
    on_site: Visit | None
    offsite_minutes: int
    evening_or_holiday: bool
    large_event: bool
    feedback_score: int | None
    voided: bool


def counted(activities: Iterable[Activity], terms: Sequence[Term]) -> list[Activity]:
    """Only records by the assigned advisor during the assignment count; a voided one stops counting."""
    return [
        item for item in activities if not item.voided and assigned_on(terms, local_day(item.occurred_at))
    ]


def _months_counted_in(item: Activity) -> list[tuple[int, int]]:
    """A visit may count in each month it touches; anything else in the month it happened in."""
    months = [month_of(item.occurred_at)]
    if item.on_site is not None:
        months += months_touched(item.on_site.started_at, item.on_site.ended_at)
    return sorted(set(months))


def activities_by_month(activities: Iterable[Activity]) -> dict[tuple[int, int], list[Activity]]:
    """Each record under every month it may count in: `month_compliance` over a month's list equals it
    over all records, at the cost of that month's records only."""
    found: dict[tuple[int, int], list[Activity]] = {}
    for item in activities:
        for key in _months_counted_in(item):
            found.setdefault(key, []).append(item)
    return found


def activities_by_year(activities: Iterable[Activity]) -> dict[int, list[Activity]]:
    """Each record under every year it may count in (a visit crossing midnight on 31 December, both):
    `year_grade` over a year's list equals it over all records."""
    found: dict[int, list[Activity]] = {}
    for item in activities:
        for year in sorted({year for year, _ in _months_counted_in(item)}):
            found.setdefault(year, []).append(item)
    return found


def _month_facts(year: int, month: int, items: Sequence[Activity], norms: VillageNorms) -> MonthMinutes:
    visits = [item.on_site for item in items if item.on_site is not None]
    offsite = [
        OffsiteService(item.occurred_at, item.offsite_minutes) for item in items if item.offsite_minutes
    ]
    return month_minutes(year, month, visits, offsite, norms)


def month_in_term(year: int, month: int, terms: Sequence[Term]) -> bool:
    start, end = month_bounds(year, month)
    return assigned_between(terms, start.date(), (end - timedelta(days=1)).date())


def _months_back(year: int, month: int, count: int) -> list[tuple[int, int]]:
    found = []
    for _ in range(count):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        found.append((year, month))
    return found


@dataclass(frozen=True)
class MonthCompliance:
    policy: PublishedPolicy | None
    minutes: MonthMinutes
    status: MonthStatus


def month_compliance(
    now: datetime,
    year: int,
    month: int,
    village_code: str,
    tags: Sequence[str],
    policies: Sequence[PublishedPolicy],
    terms: Sequence[Term],
    activities: Iterable[Activity],
) -> MonthCompliance:
    """A month's minutes and status as seen at `now`, under the policy in force on the month's last day
    (or today, if that comes first)."""
    last_day = date(year, month, calendar.monthrange(year, month)[1])
    policy = policy_in_force(policies, village_code, min(local_day(now), last_day))
    rules = policy.rules if policy else PolicyRules()
    minutes = _month_facts(year, month, counted(activities, terms), norms_for(rules, village_code, tags))
    return MonthCompliance(
        policy, minutes, month_status(minutes, now, year, month, rules.hours_at_risk_after_day)
    )


def _lectures(items: Iterable[Activity]) -> list[Lecture]:
    return [
        Lecture(local_day(item.occurred_at), item.evening_or_holiday, item.large_event)
        for item in items
        if item.event_type == "lecture.held"
    ]


def year_facts(
    items: Sequence[Activity], months_met: int, months_assessed: int, rules: PolicyRules
) -> YearFacts:
    """The facts a year's score rests on, from the year's counted records."""
    recorded = [item for item in items if timeliness_judged(item.recorded_at)]
    return YearFacts(
        months_met=months_met,
        months_assessed=months_assessed,
        lectures=_lectures(items),
        feedback_scores=[item.feedback_score for item in items if item.feedback_score is not None],
        records_recorded_in_time=sum(
            in_time(item.occurred_at, item.recorded_at, rules.timely_recording_days)
            for item in recorded
            if item.recorded_at is not None
        ),
        records=len(recorded),
    )


@dataclass(frozen=True)
class Snapshot:
    """Where an advisor stands in a village at a moment, computed from the counted records."""

    as_of: datetime
    policy: PublishedPolicy | None
    month: str
    month_minutes: MonthMinutes
    month_status: MonthStatus
    lecture_period: Period
    lectures_in_period: int
    lectures_required: int
    lecture_alert: LectureAlert | None
    lectures_this_year: int
    evening_or_holiday_lectures_this_year: int
    large_events_this_year: int
    feedback_this_year: int
    feedback_average_this_year: float | None
    year_components: dict[ScoreComponent, float]
    year_score: float
    provisional_grade: Grade
    provisional_subsidy_yuan: Decimal
    trailing_12_months_met: int
    trailing_12_months_assessed: int
    trailing_12_month_score: float


def snapshot(
    now: datetime,
    village_code: str,
    tags: Sequence[str],
    policies: Sequence[PublishedPolicy],
    terms: Sequence[Term],
    activities: Iterable[Activity],
    violation_this_year: bool,
    judge_month: Callable[[int, int], bool] | None = None,
) -> Snapshot:
    """`judge_month` says whether a month was met where the records given do not decide it alone (a team
    whose policy counts hours per person); by default a month is met when these records meet it."""
    today = local_day(now)
    year, month = today.year, today.month
    activities = list(activities)
    current_month = month_compliance(now, year, month, village_code, tags, policies, terms, activities)
    policy = current_month.policy
    rules = policy.rules if policy else PolicyRules()
    items = [item for item in counted(activities, terms) if item.occurred_at <= now]
    this_year = [item for item in items if local_day(item.occurred_at).year == year]
    minutes, status = current_month.minutes, current_month.status

    lectures = _lectures(this_year)
    periods = lecture_periods(year, rules.lecture_period)
    current = next(period for period in periods if period.contains(today))
    held_now = sum(current.contains(lecture.held_on) for lecture in lectures)

    # Year to date: months that ended count, and this month once met; lecture periods that ended count,
    # and the current one once met. Nothing is held against the advisor for time still to come.
    by_month = activities_by_month(items)

    def month_met(in_year: int, in_month: int) -> bool:
        """Each month as its close judges it (`month_compliance`, the policy in force at its end)."""
        if judge_month is not None:
            return judge_month(in_year, in_month)
        found = month_compliance(
            now, in_year, in_month, village_code, tags, policies, terms, by_month.get((in_year, in_month), [])
        )
        return found.minutes.met

    months_met = months_assessed = 0
    for past_month in range(1, month + 1):
        if not month_in_term(year, past_month, terms):
            continue
        met = month_met(year, past_month)
        if past_month < month or met:
            months_assessed += 1
            months_met += met
    facts = year_facts(this_year, months_met, months_assessed, rules)
    ended_periods = [
        period
        for period in periods
        if period.end < today or (period is current and held_now >= rules.lectures_required)
    ]
    components = component_scores(facts, rules, year, judged_periods=ended_periods)
    score = annual_score(components, rules.score_weights)
    grade = grade_for(score, rules, violation_this_year)
    year_terms = [term for term in terms if term_share(year, term.term_start, term.last_day_served)]
    subsidy = year_subsidy(year, year_terms, rules.subsidy_ratios[grade])

    trailing = [(y, m) for y, m in _months_back(year, month, 12) if month_in_term(y, m, terms)]
    trailing_met = sum(month_met(y, m) for y, m in trailing)
    trailing_score = round(100 * trailing_met / len(trailing), 2) if trailing else 0.0

    return Snapshot(
        as_of=now,
        policy=policy,
        month=f"{year:04d}-{month:02d}",
        month_minutes=minutes,
        month_status=status,
        lecture_period=current,
        lectures_in_period=held_now,
        lectures_required=rules.lectures_required,
        lecture_alert=lecture_alert(
            current, held_now, rules.lectures_required, today, rules.lecture_due_days_before_end
        ),
        lectures_this_year=len(lectures),
        evening_or_holiday_lectures_this_year=sum(lecture.evening_or_holiday for lecture in lectures),
        large_events_this_year=sum(lecture.large_event for lecture in lectures),
        feedback_this_year=len(facts.feedback_scores),
        feedback_average_this_year=(round(mean(facts.feedback_scores), 2) if facts.feedback_scores else None),
        year_components=components,
        year_score=score,
        provisional_grade=grade,
        provisional_subsidy_yuan=subsidy,
        trailing_12_months_met=trailing_met,
        trailing_12_months_assessed=len(trailing),
        trailing_12_month_score=trailing_score,
    )
