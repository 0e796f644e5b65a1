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

from contracts.events import (
    DEFAULT_ZONE,
    Grade,
    LecturePeriod,
    PolicyRules,
    ScoreComponent,
    VillageKind,
    VillageNorms,
)

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


def minutes_within(started_at: datetime, ended_at: datetime, window: tuple[datetime, datetime]) -> int:
    """Whole minutes of [started_at, ended_at) that fall inside the window."""
    start = max(started_at, window[0])
    end = min(ended_at, window[1])
    if end <= start:
        return 0
    return int((end - start).total_seconds() // 60)


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
    on_site = sum(minutes_within(visit.started_at, visit.ended_at, window) for visit in visits)
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


def village_kind(village_code: str, tags: Iterable[str]) -> VillageKind:
    """居委会 001-199 are urban communities, 村委会 200-399 villages; a county may mark a village remote."""
    if "remote" in set(tags):
        return VillageKind.remote
    return VillageKind.urban_community if int(village_code[9:12]) < 200 else VillageKind.village


def norms_for(rules: PolicyRules, village_code: str, tags: Iterable[str]) -> VillageNorms:
    kind = village_kind(village_code, tags)
    if kind in rules.norms_by_village_kind:
        return rules.norms_by_village_kind[kind]
    if kind is VillageKind.remote:
        fallback = VillageKind.urban_community if int(village_code[9:12]) < 200 else VillageKind.village
        return rules.norms_by_village_kind.get(fallback, rules.norms)
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


def component_scores(facts: YearFacts, rules: PolicyRules, year: int) -> dict[ScoreComponent, float]:
    """Each component 0-100. A component without anything to judge (no months in the term, no feedback,
    no records) is left out, and the weights of the others are renormalised in `annual_score`."""
    scores: dict[ScoreComponent, float] = {}
    if facts.months_assessed:
        scores[ScoreComponent.monthly_hours] = 100 * facts.months_met / facts.months_assessed
    periods = lecture_periods(year, rules.lecture_period)
    if rules.lectures_required:
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


def in_time(occurred_at: datetime, recorded_at: datetime, days: int) -> bool:
    """工作信息报送: recorded within the policy's number of days of happening."""
    return recorded_at - occurred_at <= timedelta(days=days)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=DEFAULT_ZONE)
