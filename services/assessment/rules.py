"""The assessment rules as pure functions over plain values: no clock, no database, no Kafka.

Defaults come from Zaozhuang (2017): 8 hours on site per village per month, a lecture per quarter, a
large legal-service event per year, grades excellent/good/qualified/unqualified/violation paying
100/100/70/50/0 % of the subsidy. Where places differ (Guangzhou's off-site offsetting 非现场服务折抵,
Nansha's evening or holiday lectures, remote villages' lighter norms) the region's policy says so.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from uuid import UUID

from contracts.assignment import AssignmentTerm, assigned_between, assigned_on
from contracts.events import (
    DEFAULT_ZONE,
    Grade,
    LecturePeriod,
    PolicyRules,
    ScoreComponent,
    VillageKind,
    VillageNorms,
)
from contracts.service_time import on_site_minutes_in_month

OFFSITE_CHANNELS = frozenset({"phone", "wechat", "online", "hotline_12348"})
CENT = Decimal("0.01")


class MonthStatus(StrEnum):
    met = "met"
    on_track = "on_track"
    at_risk = "at_risk"
    missed = "missed"


# -- time ----------------------------------------------------------------------------------------


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in Asia/Shanghai."""
    start = datetime(year, month, 1, tzinfo=DEFAULT_ZONE)
    following = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=DEFAULT_ZONE)
    return start, following


def month_of(moment: datetime) -> tuple[int, int]:
    local = moment.astimezone(DEFAULT_ZONE)
    return local.year, local.month


def months_touched(started_at: datetime, ended_at: datetime) -> list[tuple[int, int]]:
    """The months a visit lies in (two when it crosses midnight at a month's end)."""
    first, last = month_of(started_at), month_of(ended_at - timedelta(microseconds=1))
    return [first] if first == last else [first, last]


# -- monthly hours ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    started_at: datetime
    ended_at: datetime


@dataclass(frozen=True)
class OffsiteService:
    """Off-site work that a policy may credit: phone, WeChat, online or 12348-hotline consultations, and
    online lectures, with their duration."""

    occurred_at: datetime
    minutes: int


@dataclass(frozen=True)
class MonthMinutes:
    on_site: int
    offsite: int
    credited_offsite: int
    required: int

    @property
    def counted(self) -> int:
        return self.on_site + self.credited_offsite

    @property
    def met(self) -> bool:
        return self.counted >= self.required


def credited(offsite_minutes: int, norms: VillageNorms) -> int:
    """非现场服务折抵: off-site minutes times the rate, at most the monthly cap."""
    return min(int(offsite_minutes * norms.offsite_credit_rate), norms.offsite_credit_cap_minutes)


def month_minutes(
    year: int, month: int, visits: Iterable[Visit], offsite: Iterable[OffsiteService], norms: VillageNorms
) -> MonthMinutes:
    window = month_bounds(year, month)
    on_site = sum(on_site_minutes_in_month(visit.started_at, visit.ended_at, year, month) for visit in visits)
    offsite_total = sum(item.minutes for item in offsite if window[0] <= item.occurred_at < window[1])
    return MonthMinutes(
        on_site, offsite_total, credited(offsite_total, norms), norms.on_site_minutes_per_month
    )


def month_status(
    minutes: MonthMinutes, now: datetime, year: int, month: int, at_risk_after_day: int
) -> MonthStatus:
    """met once enough minutes count; missed when the month is over without them; at_risk when, after
    the policy's day, the minutes lag behind the month's pace; on_track otherwise."""
    if minutes.met:
        return MonthStatus.met
    start, end = month_bounds(year, month)
    if now >= end:
        return MonthStatus.missed
    local = now.astimezone(DEFAULT_ZONE)
    if now < start or local.day < at_risk_after_day:
        return MonthStatus.on_track
    days = calendar.monthrange(year, month)[1]
    pace = minutes.required * local.day / days
    return MonthStatus.at_risk if minutes.counted < pace else MonthStatus.on_track


# -- which rules apply -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedPolicy:
    region_code: str
    effective_from: date
    event_id: UUID
    rules: PolicyRules


def policy_in_force(
    policies: Sequence[PublishedPolicy], village_code: str, day: date
) -> PublishedPolicy | None:
    """The most specific region's policy in force on the day; for one region, the latest in force."""
    candidates = [
        policy
        for policy in policies
        if village_code.startswith(policy.region_code) and policy.effective_from <= day
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda policy: (len(policy.region_code), policy.effective_from))


def code_kind(village_code: str) -> VillageKind:
    """By the statistical code: 001-199 居委会 and 400-499 类似居委会 are urban communities, 200-399 村委会
    and 500-599 类似村委会 villages."""
    part = int(village_code[9:12])
    return VillageKind.urban_community if part < 200 or 400 <= part < 500 else VillageKind.village


def village_kind(village_code: str, tags: Iterable[str]) -> VillageKind:
    """A county may mark a village remote; otherwise the code says which kind it is."""
    return VillageKind.remote if "remote" in set(tags) else code_kind(village_code)


def norms_for(rules: PolicyRules, village_code: str, tags: Iterable[str]) -> VillageNorms:
    kind = village_kind(village_code, tags)
    if kind in rules.norms_by_village_kind:
        return rules.norms_by_village_kind[kind]
    if kind is VillageKind.remote:
        return rules.norms_by_village_kind.get(code_kind(village_code), rules.norms)
    return rules.norms


# -- lectures --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def lecture_periods(year: int, period: LecturePeriod) -> list[Period]:
    if period is LecturePeriod.year:
        return [Period(date(year, 1, 1), date(year, 12, 31))]
    return [
        Period(date(year, first, 1), date(year, first + 2, calendar.monthrange(year, first + 2)[1]))
        for first in (1, 4, 7, 10)
    ]


@dataclass(frozen=True)
class Lecture:
    held_on: date
    evening_or_holiday: bool
    large_event: bool


class LectureAlert(StrEnum):
    due = "lecture_due"
    missed = "lecture_missed"


def lecture_alert(
    period: Period, held: int, required: int, today: date, due_days: int
) -> LectureAlert | None:
    """lecture_due when the period ends within `due_days` and too few were held; lecture_missed once it
    has ended so."""
    if held >= required:
        return None
    if today > period.end:
        return LectureAlert.missed
    if period.start <= today and (period.end - today).days < due_days:
        return LectureAlert.due
    return None


# -- the year --------------------------------------------------------------------------------------


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


# -- what counts, and where an advisor stands ----------------------------------------------------------


@dataclass(frozen=True)
class Term(AssignmentTerm):
    """An assignment's term (`contracts.assignment` says which days it covers) and its subsidy."""

    annual_subsidy_yuan: Decimal


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


def local_day(moment: datetime) -> date:
    return moment.astimezone(DEFAULT_ZONE).date()


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


def _month_in_term(year: int, month: int, terms: Sequence[Term]) -> bool:
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


def _year_facts(
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
) -> Snapshot:
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
        found = month_compliance(
            now, in_year, in_month, village_code, tags, policies, terms, by_month.get((in_year, in_month), [])
        )
        return found.minutes.met

    months_met = months_assessed = 0
    for past_month in range(1, month + 1):
        if not _month_in_term(year, past_month, terms):
            continue
        met = month_met(year, past_month)
        if past_month < month or met:
            months_assessed += 1
            months_met += met
    facts = _year_facts(this_year, months_met, months_assessed, rules)
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

    trailing = [(y, m) for y, m in _months_back(year, month, 12) if _month_in_term(y, m, terms)]
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
        year_components=components,
        year_score=score,
        provisional_grade=grade,
        provisional_subsidy_yuan=subsidy,
        trailing_12_months_met=trailing_met,
        trailing_12_months_assessed=len(trailing),
        trailing_12_month_score=trailing_score,
    )


# -- closing months and raising alerts -------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedClose:
    """The latest `compliance.month_closed` published for an advisor, village and month."""

    revision: int
    on_site_minutes: int
    credited_offsite_minutes: int
    required_minutes: int
    met: bool


@dataclass(frozen=True)
class CloseDecision:
    revision: int
    changes: str | None


def close_decision(latest: PublishedClose | None, minutes: MonthMinutes) -> CloseDecision | None:
    """Revision 1 the first time; a new revision, saying what changed, when a late record or a void moved
    the figures after closing; nothing when they stand."""
    now = {
        "on_site_minutes": minutes.on_site,
        "credited_offsite_minutes": minutes.credited_offsite,
        "required_minutes": minutes.required,
        "met": minutes.met,
    }
    if latest is None:
        return CloseDecision(1, None)
    before = {
        "on_site_minutes": latest.on_site_minutes,
        "credited_offsite_minutes": latest.credited_offsite_minutes,
        "required_minutes": latest.required_minutes,
        "met": latest.met,
    }
    changed = [f"{name}: {before[name]} -> {value}" for name, value in now.items() if before[name] != value]
    if not changed:
        return None
    return CloseDecision(latest.revision + 1, "; ".join(changed))


def months_to_close(terms: Sequence[Term], now: datetime, grace_days: int) -> list[tuple[int, int]]:
    """Every month of the terms that ended at least `grace_days` ago, however old (a province brings its
    history: the programme began in 2017)."""
    found = []
    for term in terms:
        year, month = term.term_start.year, term.term_start.month
        last_served = term.last_day_served
        while date(year, month, 1) <= last_served:
            _, end = month_bounds(year, month)
            if end + timedelta(days=grace_days) > now:
                break
            if (year, month) not in found:
                found.append((year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(found)


MISSED_ALERT_WINDOW = timedelta(days=31)


def alert_on_missed_month(year: int, month: int, now: datetime, grace_days: int) -> bool:
    """An alert is a call to act: a month missed is raised while it is news (closed within a month of its
    grace period ending), not for every month of years of imported history closed at once."""
    _, end = month_bounds(year, month)
    return now < end + timedelta(days=grace_days) + MISSED_ALERT_WINDOW


@dataclass(frozen=True)
class Alert:
    kind: str
    key: str
    as_of: date
    detail: str


def due_alerts(
    now: datetime,
    found: Snapshot,
    previous_period: Period | None,
    lectures_in_previous_period: int,
    last_activity: datetime | None,
    assigned_since: date | None,
    rules: PolicyRules,
) -> list[Alert]:
    """The alerts the situation calls for; each has a key, so it is raised once however often asked."""
    today = local_day(now)
    alerts = []
    minutes = found.month_minutes
    if found.month_status is MonthStatus.at_risk:
        alerts.append(
            Alert(
                "hours_at_risk",
                found.month,
                today,
                f"{minutes.counted} of {minutes.required} minutes by {today.isoformat()}",
            )
        )
    if found.lecture_alert is LectureAlert.due:
        alerts.append(
            Alert(
                "lecture_due",
                found.lecture_period.start.isoformat(),
                today,
                f"{found.lectures_in_period} of {found.lectures_required} lectures; "
                f"the period ends {found.lecture_period.end}",
            )
        )
    served_whole_period = (
        previous_period is not None and assigned_since is not None and assigned_since <= previous_period.start
    )
    if (
        previous_period is not None
        and served_whole_period
        and lectures_in_previous_period < rules.lectures_required
    ):
        alerts.append(
            Alert(
                "lecture_missed",
                previous_period.start.isoformat(),
                today,
                f"{lectures_in_previous_period} of {rules.lectures_required} lectures "
                f"from {previous_period.start} to {previous_period.end}",
            )
        )
    quiet_since = local_day(last_activity) if last_activity else assigned_since
    if quiet_since is not None and (today - quiet_since).days >= rules.no_activity_days:
        alerts.append(
            Alert(
                "no_activity",
                quiet_since.isoformat(),
                today,
                f"nothing recorded since {quiet_since.isoformat()}",
            )
        )
    return alerts


def previous_lecture_period(today: date, period: LecturePeriod) -> Period | None:
    """The lecture period that ended last (the last of the previous year in January)."""
    for year in (today.year, today.year - 1):
        ended = [candidate for candidate in lecture_periods(year, period) if candidate.end < today]
        if ended:
            return ended[-1]
    return None


# -- the year's grade ------------------------------------------------------------------------------


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
    months = [month for month in range(1, 13) if _month_in_term(year, month, year_terms)]
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
    facts = _year_facts(items, met, len(months), rules)
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
