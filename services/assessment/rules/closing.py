"""Closing months and raising alerts: decisions, the months due, the alerts a situation calls for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from contracts.events import (
    LecturePeriod,
    PolicyRules,
)
from services.assessment.rules.hours import MonthMinutes, MonthStatus, Term, local_day, month_bounds
from services.assessment.rules.lectures import LectureAlert, Period, lecture_periods
from services.assessment.rules.standing import Snapshot


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
