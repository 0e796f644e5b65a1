"""Monthly hours on site: months in Beijing time, off-site credit, a month's status."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from contracts.assignment import AssignmentTerm
from contracts.events import (
    DEFAULT_ZONE,
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


@dataclass(frozen=True)
class Term(AssignmentTerm):
    """An assignment's term (`contracts.assignment` says which days it covers) and its subsidy."""

    annual_subsidy_yuan: Decimal


def local_day(moment: datetime) -> date:
    return moment.astimezone(DEFAULT_ZONE).date()
