"""Which month a visit's on-site minutes count in: part of what a `visit.logged` means, so every consumer
(the assessment's monthly hours, the dashboard's statistics) splits a visit the same way.

Months are calendar months in Asia/Shanghai. A visit crossing midnight into a new month counts in each
month for the part of it spent there: 2025-06-30 23:00 → 2025-07-01 01:30 is 60 minutes in June and 90
in July. The parts add up to the visit's whole minutes (`VisitLogged.on_site_minutes`): each month but
the last gets the whole minutes spent in it, the last gets the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.events import DEFAULT_ZONE


@dataclass(frozen=True)
class MonthPart:
    year: int
    month: int
    starts_at: datetime  # when the visit's part in this month begins
    minutes: int

    @property
    def month_text(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def whole_minutes(started_at: datetime, ended_at: datetime) -> int:
    return int((ended_at - started_at).total_seconds() // 60)


def next_month_start(moment: datetime) -> datetime:
    local = moment.astimezone(DEFAULT_ZONE)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=DEFAULT_ZONE)


def on_site_minutes_by_month(started_at: datetime, ended_at: datetime) -> list[MonthPart]:
    """The visit's whole minutes, month by month (one part, or two when it crosses a month's end)."""
    total = whole_minutes(started_at, ended_at)
    parts: list[MonthPart] = []
    start = started_at
    while True:
        local = start.astimezone(DEFAULT_ZONE)
        boundary = next_month_start(start)
        if ended_at <= boundary:
            counted = sum(part.minutes for part in parts)
            parts.append(MonthPart(local.year, local.month, start, total - counted))
            return parts
        parts.append(MonthPart(local.year, local.month, start, whole_minutes(start, boundary)))
        start = boundary


def on_site_minutes_in_month(started_at: datetime, ended_at: datetime, year: int, month: int) -> int:
    return sum(
        part.minutes
        for part in on_site_minutes_by_month(started_at, ended_at)
        if (part.year, part.month) == (year, month)
    )
