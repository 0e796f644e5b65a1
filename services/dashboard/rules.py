"""What each record adds to the statistics, and where: pure functions, no I/O.

A record adds its figures (the seeds' wording: consultations and person-times, disputes mediated,
lectures, legal aid, documents, on-site hours, risk reports, feedback) to its village and every region
above it (省 → 市 → 县 → 乡镇 → 村), for its month, quarter and year in Asia/Shanghai. A void subtracts
exactly what its record added. No personal field is ever read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from contracts.events import (
    COUNTRY_CODE,
    DEFAULT_ZONE,
    Channel,
    ConsultationRecorded,
    DocumentKind,
    DocumentReviewed,
    EventPayload,
    FeedbackSubmitted,
    Grade,
    LectureHeld,
    LegalAidAssisted,
    LegalAidKind,
    LegalTopic,
    MediationOutcome,
    MediationRecorded,
    RecordVoided,
    RiskReported,
    ServiceRecord,
    Severity,
    VisitLogged,
)
from contracts.service_time import on_site_minutes_by_month

LEVEL_PREFIXES = (2, 4, 6, 9, 12)
Figures = dict[str, float]
Key = tuple[str, str, str]  # (region code, period, metric)
Change = tuple[str, list[str], Figures, int]  # (village, periods, figures, sign)
Activity = tuple[str, list[str], str, int]  # (village, periods, advisor, sign)


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
        if payload.major_or_difficult or payload.petition_backlog:
            figures["mediations_major_or_backlog"] = 1
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


Part = tuple[datetime, Figures]  # a moment (its month, quarter and year are where it counts), the figures


def record_parts(payload: ServiceRecord) -> list[Part]:
    """Where a record's figures count: at `occurred_at`, but for a visit's on-site minutes, which count in
    each month for the part spent there (`contracts.service_time`, as the assessment counts them)."""
    figures = contributions(payload)
    if not isinstance(payload, VisitLogged) or not figures:
        return [(payload.occurred_at, figures)]
    parts = on_site_minutes_by_month(payload.started_at, payload.ended_at)
    first, later = parts[0], parts[1:]
    found: list[Part] = [(payload.occurred_at, {**figures, "on_site_minutes": first.minutes})]
    found += [(part.starts_at, {"on_site_minutes": part.minutes}) for part in later if part.minutes]
    return found


def parts_json(parts: Sequence[Part]) -> object:
    """How a counted record keeps what it added (a void or a merge takes exactly that back): its figures
    alone when they count at `occurred_at`, as before visits were split, else each part with its moment."""
    if len(parts) == 1:
        return parts[0][1]
    return [[moment.isoformat(), figures] for moment, figures in parts]


def parts_from_json(occurred_at: datetime, kept: object) -> list[Part]:
    if isinstance(kept, dict):
        return [(occurred_at, kept)]
    assert isinstance(kept, list)  # noqa: S101 - written by parts_json
    return [(datetime.fromisoformat(moment), figures) for moment, figures in kept]


def counts_as_activity(payload: EventPayload) -> bool:
    """An advisor is active (在岗服务) in a region and period where they recorded a service there: any
    service record except feedback (residents rating the advisor) and voids."""
    return isinstance(payload, ServiceRecord) and not isinstance(payload, FeedbackSubmitted | RecordVoided)


def village_activity(changes: Iterable[tuple[str, Sequence[str], str, int]]) -> dict[Key, int]:
    """Sum (village, periods, advisor, sign) into one delta per village, period and advisor."""
    summed: dict[Key, int] = defaultdict(int)
    for village_code, counted_in, advisor_id, sign in changes:
        for period in counted_in:
            summed[(village_code, period, advisor_id)] += sign
    return {key: value for key, value in summed.items() if value != 0}


def activity_totals(changes: Iterable[tuple[str, Sequence[str], str, int]]) -> dict[Key, int]:
    """What `advisor_activity_total` holds after these changes (the model of the projection's SQL): per
    village, period and advisor the records; per region above, the regions one level down where the advisor
    is active (records > 0). An advisor is active in a region exactly where its row is > 0."""
    totals = village_activity(changes)
    below = {key: value for key, value in totals.items() if value > 0}
    for digits in (*reversed(LEVEL_PREFIXES[:-1]), 0):
        counted: dict[Key, int] = defaultdict(int)
        for region_code, period, advisor_id in below:
            counted[(region_code[:digits] if digits else COUNTRY_CODE, period, advisor_id)] += 1
        totals.update(counted)
        below = counted
    return totals


def merge_chain(village_code: str, successors: Mapping[str, str]) -> list[str]:
    """The village and where its records went with each merge since: its successor, that one's successor
    ...; a chain that would come back to a village it passed (a loop in the registry) ends before it."""
    chain = [village_code]
    while (successor := successors.get(chain[-1])) is not None and successor not in chain:
        chain.append(successor)
    return chain


def counting_village(village_code: str, successors: Mapping[str, str]) -> str:
    """Where a village's records count now: the end of its chain of merges."""
    return merge_chain(village_code, successors)[-1]


def rehoming(
    retired: str,
    destination: str,
    parts: Sequence[Part],
    activity: tuple[datetime, str] | None,
    voided: bool,
) -> tuple[list[Change], list[Activity]]:
    """What moving one counted record from a merged village to where its records count now changes: its
    figures, and its advisor's activity (`activity`: when and who, if it counts as activity), leave the one
    and reach the other. A voided record moves too, so that it sits where a void of it would have found it
    had the merge come first, but changes nothing: its void took back what it added."""
    if voided or retired == destination:
        return [], []
    figures: list[Change] = []
    for moment, added in parts:
        figures += [(retired, periods(moment), added, -1), (destination, periods(moment), added, 1)]
    if activity is None:
        return figures, []
    when, advisor_id = activity
    return figures, [(retired, periods(when), advisor_id, -1), (destination, periods(when), advisor_id, 1)]


def region_chain(village_code: str) -> list[str]:
    """The village and every region above it, the country first: 0, 37, 3704, 370402, 370402105,
    370402105201."""
    return [COUNTRY_CODE, *(village_code[:digits] for digits in LEVEL_PREFIXES)]


def periods(moment: datetime) -> list[str]:
    """The month, quarter and year a moment counts in, in Asia/Shanghai: 2026-03, 2026-Q1, 2026."""
    local = moment.astimezone(DEFAULT_ZONE)
    return [
        f"{local.year:04d}-{local.month:02d}",
        f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}",
        f"{local.year:04d}",
    ]


def is_month(period: str) -> bool:
    return len(period) == 7 and period[4] == "-" and period[5] != "Q"


def months_of(period: str) -> list[str]:
    """The months a year or a quarter is made of ([] for a month)."""
    if is_month(period):
        return []
    year = period[:4]
    if len(period) == 4:
        return [f"{year}-{month:02d}" for month in range(1, 13)]
    quarter = int(period[6])
    return [f"{year}-{month:02d}" for month in range(3 * quarter - 2, 3 * quarter + 1)]


def stored_deltas(
    changes: Iterable[tuple[str, Sequence[str], Mapping[str, float], int]],
) -> dict[tuple[str, str, str, int], float]:
    """What the projection stores: (village, period, metric, deepest level's digits) → delta. A village
    keeps only the month of a change that has one (its quarter and year are the sum of its months when
    asked), which saves two rows in three at the level with the most rows; the regions above keep every
    period. A change without a month (a year's grade) is kept at every level."""
    summed: dict[tuple[str, str, str, int], float] = defaultdict(float)
    for village_code, counted_in, figures, sign in changes:
        has_month = any(is_month(period) for period in counted_in)
        for period in counted_in:
            deepest = 9 if has_month and not is_month(period) else 12
            for metric, value in figures.items():
                summed[(village_code, period, metric, deepest)] += sign * value
    return {key: value for key, value in summed.items() if value != 0}


def deltas(changes: Iterable[tuple[str, Sequence[str], Mapping[str, float], int]]) -> dict[Key, float]:
    """One delta per region, period and metric: the village deltas carried to every region above (the
    reference for what the projection's SQL does)."""
    summed: dict[Key, float] = defaultdict(float)
    for (village_code, period, metric, _deepest), value in stored_deltas(changes).items():
        for region in region_chain(village_code):
            summed[(region, period, metric)] += value
    return {key: value for key, value in summed.items() if value != 0}


def month_closed_figures(met: bool) -> Figures:
    """A closed village-month: the share met is village_months_met / village_months_closed (达标率)."""
    return {"village_months_closed": 1, "village_months_met": 1 if met else 0}


def grade_figures(grade: str, subsidy_yuan: Decimal) -> Figures:
    """The grade distribution and the subsidies paid, counted in the graded year. Money is kept in fen
    (分), whole numbers, which float8 sums exactly."""
    return {"graded": 1, f"grades_{grade}": 1, SUBSIDY_FEN: int(subsidy_yuan * 100)}


SUBSIDY_FEN = "subsidy_fen"
LEGACY_SUBSIDY_YUAN = "subsidy_yuan"  # kept in yuan as a float before fen; a rebuild converts it
CENT = Decimal("0.01")

# Distinct advisors who recorded a service in the region and period (a figure the projection keeps): not
# additive over child regions (an advisor may serve villages of two townships), so not in `unattributed`.
ACTIVE_ADVISORS = "active_advisors"

# Every metric the dashboard keeps: a column each of `figures` (migration 014, one row per region, period and
# slot), so a new kind, topic, channel, severity or grade in contracts needs a migration adding its column.
METRICS: tuple[str, ...] = (
    "consultations",
    "consultation_person_times",
    *(f"consultations_topic_{topic}" for topic in LegalTopic),
    *(f"consultations_channel_{channel}" for channel in Channel),
    "mediations",
    "mediations_resolved",
    "mediations_major_or_difficult",
    "mediations_petition_backlog",
    "mediations_major_or_backlog",
    "lectures",
    "lecture_attendees",
    "lectures_evening_or_holiday",
    *(f"legal_aid_{kind}" for kind in LegalAidKind),
    *(f"documents_{kind}" for kind in DocumentKind),
    "visits",
    "on_site_minutes",
    "risk_reports",
    *(f"risk_reports_{severity}" for severity in Severity),
    "feedback",
    "feedback_score_sum",
    "village_months_closed",
    "village_months_met",
    "graded",
    *(f"grades_{grade}" for grade in Grade),
    SUBSIDY_FEN,
    LEGACY_SUBSIDY_YUAN,
    ACTIVE_ADVISORS,
)


METRIC_INDEX = {metric: index for index, metric in enumerate(METRICS)}


def stored_rows(
    changes: Iterable[tuple[str, Sequence[str], Mapping[str, float], int]],
) -> dict[tuple[str, str, int], list[float]]:
    """`stored_deltas` as the projection writes them: (village, period, deepest level's digits) → a delta per
    metric, in the order of `METRICS`; a row whose every delta is 0 is left out."""
    rows: dict[tuple[str, str, int], list[float]] = {}
    width = len(METRICS)
    for village_code, counted_in, figures, sign in changes:
        has_month = any(is_month(period) for period in counted_in)
        for period in counted_in:
            deepest = 9 if has_month and not is_month(period) else 12
            values = rows.get((village_code, period, deepest))
            if values is None:
                values = rows[(village_code, period, deepest)] = [0.0] * width
            for metric, value in figures.items():
                values[METRIC_INDEX[metric]] += sign * value
    return {key: values for key, values in rows.items() if any(values)}


def present(values: Mapping[str, float | None]) -> Figures:
    """A wide row's metrics as the answers show them: those with a value, in the order of `METRICS` (a
    metric at 0 is absent, as a rebuild leaves no row for it)."""
    return {metric: value for metric in METRICS if (value := values.get(metric))}


def shown_figures(figures: Mapping[str, float]) -> dict[str, int | float | str]:
    """Figures as people read them: counts and minutes are integers, hours have one decimal, money is a
    decimal string in yuan with two places (`subsidy_yuan`); never a float where a count is meant."""
    shown: dict[str, int | float | str] = {
        metric: round(value)
        for metric, value in figures.items()
        if metric not in (SUBSIDY_FEN, LEGACY_SUBSIDY_YUAN)
    }
    if "on_site_minutes" in figures:
        shown["on_site_hours"] = round(figures["on_site_minutes"] / 60, 1)
    if SUBSIDY_FEN in figures or LEGACY_SUBSIDY_YUAN in figures:
        fen = Decimal(round(figures.get(SUBSIDY_FEN, 0)))
        legacy = Decimal(str(figures.get(LEGACY_SUBSIDY_YUAN, 0)))
        shown["subsidy_yuan"] = str((fen / 100 + legacy).quantize(CENT, rounding=ROUND_HALF_UP))
    return shown


def begun_months(year: int, today: date) -> list[str]:
    """The year's months that have begun by `today`: a period not begun yet is absent, not zero."""
    return [f"{year:04d}-{month:02d}" for month in range(1, 13) if date(year, month, 1) <= today]


# The lines of a work report (工作报告) in the seeds' wording (Zaozhuang 2017, Hekou 2018):
# (label, how to compute the number from the figures, the sentence it fills).
REPORT_LINES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("村规民约等文件", ("documents_village_rules",), "协助起草审订村规民约等文件{n}件"),
    ("法律文书", ("documents_legal_document_drafted",), "起草修改法律文书{n}件"),
    (
        "法律意见",
        ("documents_legal_opinion", "documents_contract_review"),
        "为合同及重大决策出具法律意见{n}件",
    ),
    ("法律咨询", ("consultation_person_times",), "解答法律咨询{n}人次"),
    ("协助法律援助申请", ("legal_aid_application_assisted",), "协助申请法律援助{n}件"),
    ("代理案件", ("legal_aid_case_represented",), "代理案件{n}件"),
    ("调解矛盾纠纷", ("mediations",), "调解矛盾纠纷{n}起"),
    ("其中重大疑难或信访积案", ("mediations_major_or_backlog",), "其中重大疑难或信访积案{n}起"),
    ("法治讲座", ("lectures",), "举办法治讲座{n}场"),
    ("讲座参加人次", ("lecture_attendees",), "参加群众{n}人次"),
    ("驻村服务", ("visits",), "驻村服务{n}次"),
    ("风险上报", ("risk_reports",), "上报社情民意及风险信息{n}件"),
)


def work_report(figures: Mapping[str, float]) -> list[dict[str, object]]:
    """The report's lines with their numbers; every line is present, with 0 where nothing happened."""
    lines: list[dict[str, object]] = []
    for label, metrics, sentence in REPORT_LINES:
        number = int(sum(figures.get(metric, 0) for metric in metrics))
        lines.append({"item": label, "count": number, "text": sentence.format(n=number)})
    hours = figures.get("on_site_minutes", 0) / 60
    lines.append(
        {"item": "驻村服务时长(小时)", "count": round(hours, 1), "text": f"驻村服务累计{hours:.1f}小时"}
    )
    return lines
