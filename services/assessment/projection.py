"""Events → the facts the assessment counts (in the batch transaction of the projection runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from contracts.events import (
    AdvisorAssigned,
    AdvisorReleased,
    AlertRaised,
    AssessmentGraded,
    ConsultationRecorded,
    FeedbackSubmitted,
    LectureFormat,
    LectureHeld,
    MonthClosed,
    PolicyPublished,
    Rater,
    RecordVoided,
    RegionClassified,
    ServiceRecord,
    ViolationRecorded,
    VisitLogged,
    void_permitted,
)
from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES
from plumbing.postgres import Connection
from plumbing.projection import Batch, ConsumedEvent, Projection
from services.assessment.rules import OFFSITE_CHANNELS

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMA = "assessment"
FEEDBACK_RATERS = frozenset({Rater.resident, Rater.village_cadre})


def activity_row(item: ConsumedEvent) -> tuple[Any, ...] | None:
    """What a service record counts for; None for a void (it marks another record instead)."""
    data = item.event.data
    if not isinstance(data, ServiceRecord) or isinstance(data, RecordVoided):
        return None
    on_site_start = on_site_end = None
    offsite_minutes = 0
    evening_or_holiday = large_event = False
    feedback_score = None
    if isinstance(data, VisitLogged):
        on_site_start, on_site_end = data.started_at, data.ended_at
    elif isinstance(data, ConsultationRecorded) and str(data.channel) in OFFSITE_CHANNELS:
        offsite_minutes = data.duration_minutes or 0
    elif isinstance(data, LectureHeld):
        evening_or_holiday, large_event = data.evening_or_holiday, data.large_event
        if data.format is LectureFormat.online:
            offsite_minutes = data.duration_minutes or 0
    elif isinstance(data, FeedbackSubmitted) and data.rater in FEEDBACK_RATERS:
        feedback_score = data.score
    return (
        item.event.id,
        data.advisor_id,
        data.village_code,
        item.event.type,
        data.occurred_at,
        item.event.recorded_at,
        on_site_start,
        on_site_end,
        offsite_minutes,
        evening_or_holiday,
        large_event,
        feedback_score,
        data.recorded_by,
    )


async def _apply_registry(conn: Connection, item: ConsumedEvent) -> None:
    data = item.event.data
    if isinstance(data, PolicyPublished):
        await conn.execute(
            """INSERT INTO policies (event_id, region_code, effective_from, rules, published_by)
               VALUES ($1, $2, $3, $4::jsonb, $5)""",
            item.event.id,
            data.region_code,
            data.effective_from,
            data.rules.model_dump_json(),
            data.recorded_by,
        )
    elif isinstance(data, RegionClassified):
        await conn.execute(
            """INSERT INTO region_tags (code, effective_from, tags) VALUES ($1, $2, $3)
               ON CONFLICT (code, effective_from) DO UPDATE SET tags = $3""",
            data.code,
            data.effective_from,
            list(data.tags),
        )
    elif isinstance(data, AdvisorAssigned):
        await conn.execute(
            """INSERT INTO assignments (advisor_id, village_code, term_start, term_end, annual_subsidy_yuan)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (advisor_id, village_code, term_start)
               DO UPDATE SET term_end = $4, annual_subsidy_yuan = $5""",
            data.advisor_id,
            data.village_code,
            data.term_start,
            data.term_end,
            data.annual_subsidy_yuan,
        )
    elif isinstance(data, AdvisorReleased):
        await conn.execute(
            """UPDATE assignments SET released_on = $3
               WHERE advisor_id = $1 AND village_code = $2 AND term_start <= $3 AND released_on IS NULL""",
            data.advisor_id,
            data.village_code,
            data.effective_date,
        )
    elif isinstance(data, ViolationRecorded):
        await conn.execute(
            """INSERT INTO violations (event_id, advisor_id, village_code, violation_date)
               VALUES ($1, $2, $3, $4)""",
            item.event.id,
            data.advisor_id,
            data.village_code,
            data.date,
        )


async def _apply_own_outputs(conn: Connection, items: list[ConsumedEvent]) -> None:
    """What the closer published, one statement per table for the batch (a province's first pass after a
    year is about a million outputs)."""
    closes, grades, alerts = [], [], []
    for item in items:
        data = item.event.data
        if isinstance(data, MonthClosed):
            closes.append(
                (
                    item.event.id,
                    data.advisor_id,
                    data.village_code,
                    data.month,
                    data.revision,
                    data.on_site_minutes,
                    data.credited_offsite_minutes,
                    data.required_minutes,
                    data.met,
                )
            )
        elif isinstance(data, AssessmentGraded):
            grades.append(
                (
                    item.event.id,
                    data.advisor_id,
                    data.village_code,
                    data.year,
                    data.revision,
                    data.score,
                    str(data.grade),
                    data.subsidy_ratio,
                    data.subsidy_yuan,
                    orjson.dumps({str(name): value for name, value in data.components.items()}).decode(),
                    data.policy.event_id,
                    data.policy.region_code,
                    data.changes,
                )
            )
        elif isinstance(data, AlertRaised):
            alerts.append(
                (item.event.id, data.advisor_id, data.village_code, str(data.kind), data.as_of, data.detail)
            )
    if closes:
        await conn.executemany(
            """INSERT INTO month_closes (event_id, advisor_id, village_code, month, revision, on_site_minutes,
                                         credited_offsite_minutes, required_minutes, met)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING""",
            closes,
        )
    if grades:
        await conn.executemany(
            """INSERT INTO grades (event_id, advisor_id, village_code, year, revision, score, grade,
                                   subsidy_ratio, subsidy_yuan, components, policy_event_id,
                                   policy_region_code, changes)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13)
               ON CONFLICT DO NOTHING""",
            grades,
        )
    if alerts:
        await conn.executemany(
            """INSERT INTO alerts (event_id, advisor_id, village_code, kind, as_of, detail)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            alerts,
        )


ACTIVITY_COLUMNS = [
    "event_id",
    "advisor_id",
    "village_code",
    "event_type",
    "occurred_at",
    "recorded_at",
    "on_site_start",
    "on_site_end",
    "offsite_minutes",
    "evening_or_holiday",
    "large_event",
    "feedback_score",
    "recorded_by",
]


async def apply_assessment(conn: Connection, batch: Batch) -> None:
    for item in batch.events:
        if item.topic == REGISTRY:
            await _apply_registry(conn, item)
    await _apply_own_outputs(conn, [item for item in batch.events if item.topic == ASSESSMENT])
    rows = [row for row in map(activity_row, batch.events) if row is not None]
    if rows:
        # COPY: every record here is new (the runtime has dropped what was applied before).
        await conn.copy_records_to_table("activities", records=rows, columns=ACTIVITY_COLUMNS)
    voids = [item.event.data for item in batch.events if isinstance(item.event.data, RecordVoided)]
    if voids:
        # A void counts only for a record of the same village (same partition, so replays agree), sent by
        # someone who may void it.
        candidates = await conn.fetch(
            """SELECT event_id, village_code, advisor_id, recorded_by FROM activities
               WHERE event_id = ANY($1::uuid[]) AND voided_at IS NULL""",
            [void.target_event_id for void in voids],
        )
        targets = {row["event_id"]: row for row in candidates}
        permitted = [
            (void.target_event_id, void.occurred_at)
            for void in voids
            if (voided := targets.get(void.target_event_id)) is not None
            and voided["village_code"] == void.village_code
            and void_permitted(void, voided["advisor_id"], voided["recorded_by"])
        ]
        await conn.executemany(
            "UPDATE activities SET voided_at = $2 WHERE event_id = $1 AND voided_at IS NULL", permitted
        )


def assessment_projection() -> Projection:
    return Projection(
        name="assessment",
        schema=SCHEMA,
        topics=(VILLAGE_SERVICES, REGISTRY, ASSESSMENT),
        migrations=MIGRATIONS,
        apply=apply_assessment,
    )
