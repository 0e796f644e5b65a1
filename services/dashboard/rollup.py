"""What each record adds to the statistics, and where: pure functions, no I/O.

A record adds its figures (the seeds' wording: consultations and person-times, disputes mediated,
lectures, legal aid, documents, on-site hours, risk reports, feedback) to its village and every region
above it (省 → 市 → 县 → 乡镇 → 村), for its month, quarter and year in Asia/Shanghai. A void subtracts
exactly what its record added. No personal field is ever read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from contracts.events import (
    DEFAULT_ZONE,
    ConsultationRecorded,
    DocumentReviewed,
    EventPayload,
    FeedbackSubmitted,
    LectureHeld,
    LegalAidAssisted,
    MediationOutcome,
    MediationRecorded,
    RiskReported,
    VisitLogged,
)

LEVEL_PREFIXES = (2, 4, 6, 9, 12)
Figures = dict[str, float]
Key = tuple[str, str, str]  # (region code, period, metric)


def contributions(payload: EventPayload) -> Figures:
    """The figures one service record adds; empty for anything that is not counted (e.g. a void)."""
    if isinstance(payload, ConsultationRecorded):
        return {
            "consultations": 1,
            "consultation_person_times": payload.person_times,
            f"consultations_topic_{payload.topic}": 1,
            f"consultations_channel_{payload.channel}": 1,
        }
    if isinstance(payload, MediationRecorded):
        figures: Figures = {"mediations": 1}
        if payload.outcome is MediationOutcome.resolved:
            figures["mediations_resolved"] = 1
        if payload.major_or_difficult:
            figures["mediations_major_or_difficult"] = 1
        if payload.petition_backlog:
            figures["mediations_petition_backlog"] = 1
        return figures
    if isinstance(payload, LectureHeld):
        figures = {"lectures": 1, "lecture_attendees": payload.attendees}
        if payload.evening_or_holiday:
            figures["lectures_evening_or_holiday"] = 1
        return figures
    if isinstance(payload, LegalAidAssisted):
        return {f"legal_aid_{payload.kind}": 1}
    if isinstance(payload, DocumentReviewed):
        return {f"documents_{payload.kind}": 1}
    if isinstance(payload, VisitLogged):
        return {"visits": 1, "on_site_minutes": payload.on_site_minutes}
    if isinstance(payload, RiskReported):
        return {"risk_reports": 1, f"risk_reports_{payload.severity}": 1}
    if isinstance(payload, FeedbackSubmitted):
        return {"feedback": 1, "feedback_score_sum": payload.score}
    return {}


def region_chain(village_code: str) -> list[str]:
    """The village and every region above it: 37, 3704, 370402, 370402105, 370402105201."""
    return [village_code[:digits] for digits in LEVEL_PREFIXES]


def periods(moment: datetime) -> list[str]:
    """The month, quarter and year a moment counts in, in Asia/Shanghai: 2026-03, 2026-Q1, 2026."""
    local = moment.astimezone(DEFAULT_ZONE)
    return [
        f"{local.year:04d}-{local.month:02d}",
        f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}",
        f"{local.year:04d}",
    ]


def deltas(changes: Iterable[tuple[str, Sequence[str], Mapping[str, float], int]]) -> dict[Key, float]:
    """Sum (village, periods, figures, sign) into one delta per region, period and metric, so that a batch
    touches each row once."""
    summed: dict[Key, float] = defaultdict(float)
    for village_code, counted_in, figures, sign in changes:
        for region in region_chain(village_code):
            for period in counted_in:
                for metric, value in figures.items():
                    summed[(region, period, metric)] += sign * value
    return {key: value for key, value in summed.items() if value != 0}


def month_closed_figures(met: bool) -> Figures:
    """A closed village-month: the share met is village_months_met / village_months_closed (达标率)."""
    return {"village_months_closed": 1, "village_months_met": 1 if met else 0}


def grade_figures(grade: str, subsidy_yuan: float) -> Figures:
    """The grade distribution and the subsidies paid, counted in the graded year."""
    return {"graded": 1, f"grades_{grade}": 1, "subsidy_yuan": subsidy_yuan}
