"""Lectures (法治讲座): the periods a policy judges and the alert before one is missed."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from contracts.events import (
    LecturePeriod,
)


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
