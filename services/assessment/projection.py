"""Events → the facts the assessment counts (in the batch transaction of the projection runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from contracts.approval import Step
from contracts.events import (
    AdvisorAssigned,
    AdvisorRegistered,
    AdvisorReleased,
    AlertRaised,
    ApprovalEvent,
    AssessmentGraded,
    ConsultationRecorded,
    FeedbackSubmitted,
    GradeAdjusted,
    GradesAccepted,
    GradesReturned,
    GradesSubmitted,
    LectureFormat,
    LectureHeld,
    MonthClosed,
    PolicyPublished,
    Rater,
    RecordVoided,
    RegionClassified,
    RegionRegistered,
    ServiceRecord,
    TeamAssigned,
    TeamRegistered,
    TeamReleased,
    ViolationRecorded,
    VisitLogged,
    void_permitted,
)
from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES
from plumbing.handlers import BatchContext, Handlers, last_of_each
from plumbing.postgres import Connection
from plumbing.projection import ConsumedEvent, Projection
from services.assessment.queries import approval_state
from services.assessment.rules import OFFSITE_CHANNELS
from services.assessment.rules.approval import (
    Refused,
    apply_step,
    check,
    grades_json,
)

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


async def _policy_published(
    conn: Connection, item: ConsumedEvent, data: PolicyPublished, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """INSERT INTO policies (event_id, region_code, effective_from, rules, published_by)
           VALUES ($1, $2, $3, $4::jsonb, $5)""",
        item.event.id,
        data.region_code,
        data.effective_from,
        data.rules.model_dump_json(),
        data.recorded_by,
    )


async def _region_classified(
    conn: Connection, item: ConsumedEvent, data: RegionClassified, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """INSERT INTO region_tags (code, effective_from, tags) VALUES ($1, $2, $3)
           ON CONFLICT (code, effective_from) DO UPDATE SET tags = $3""",
        data.code,
        data.effective_from,
        list(data.tags),
    )


async def _advisors_assigned(
    conn: Connection, items: list[ConsumedEvent], _context: BatchContext[None]
) -> None:
    """A run of assignments in one statement; the last of a key (advisor, village, term start) wins, as one
    by one."""
    rows = last_of_each(
        items, AdvisorAssigned, lambda data: (data.advisor_id, data.village_code, data.term_start)
    )
    await conn.execute(
        """INSERT INTO assignments (advisor_id, village_code, term_start, term_end, annual_subsidy_yuan)
           SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::date[], $5::numeric[])
           ON CONFLICT (advisor_id, village_code, term_start)
           DO UPDATE SET term_end = EXCLUDED.term_end, annual_subsidy_yuan = EXCLUDED.annual_subsidy_yuan""",
        [data.advisor_id for _, data in rows],
        [data.village_code for _, data in rows],
        [data.term_start for _, data in rows],
        [data.term_end for _, data in rows],
        [data.annual_subsidy_yuan for _, data in rows],
    )


async def _advisor_released(
    conn: Connection, item: ConsumedEvent, data: AdvisorReleased, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """UPDATE assignments SET released_on = $3
           WHERE advisor_id = $1 AND village_code = $2 AND term_start <= $3 AND released_on IS NULL""",
        data.advisor_id,
        data.village_code,
        data.effective_date,
    )


async def _advisors_registered(
    conn: Connection, items: list[ConsumedEvent], _context: BatchContext[None]
) -> None:
    """A run of registrations in one statement; the last of an advisor wins, as one by one."""
    rows = last_of_each(items, AdvisorRegistered, lambda data: data.advisor_id)
    await conn.execute(
        """INSERT INTO advisors (advisor_id, name, organisation)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
           ON CONFLICT (advisor_id)
           DO UPDATE SET name = EXCLUDED.name, organisation = EXCLUDED.organisation""",
        [data.advisor_id for _, data in rows],
        [data.name for _, data in rows],
        [data.organisation for _, data in rows],
    )


async def _regions_registered(
    conn: Connection, items: list[ConsumedEvent], _context: BatchContext[None]
) -> None:
    """A run of registrations in one statement; the last of a code wins, as one by one."""
    rows = last_of_each(items, RegionRegistered, lambda data: data.code)
    await conn.execute(
        """INSERT INTO places (code, name) SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name""",
        [data.code for _, data in rows],
        [data.name for _, data in rows],
    )


async def _violation_recorded(
    conn: Connection, item: ConsumedEvent, data: ViolationRecorded, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """INSERT INTO violations (event_id, advisor_id, village_code, violation_date)
           VALUES ($1, $2, $3, $4)""",
        item.event.id,
        data.advisor_id,
        data.village_code,
        data.date,
    )


async def _apply_own_outputs(
    conn: Connection, items: list[ConsumedEvent], _context: BatchContext[None]
) -> None:
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


async def _team_registered(
    conn: Connection, item: ConsumedEvent, data: TeamRegistered, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """INSERT INTO team_registrations (event_id, team_id, name, organisation, leader_id, effective_from,
                                           members)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        item.event.id,
        data.team_id,
        data.name,
        data.organisation,
        data.leader_id,
        data.effective_from,
        list(data.members),
    )


async def _team_assigned(
    conn: Connection, item: ConsumedEvent, data: TeamAssigned, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """INSERT INTO team_assignments (team_id, village_code, term_start, term_end, annual_subsidy_yuan)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (team_id, village_code, term_start)
           DO UPDATE SET term_end = $4, annual_subsidy_yuan = $5""",
        data.team_id,
        data.village_code,
        data.term_start,
        data.term_end,
        data.annual_subsidy_yuan,
    )


async def _team_released(
    conn: Connection, item: ConsumedEvent, data: TeamReleased, _context: BatchContext[None]
) -> None:
    await conn.execute(
        """UPDATE team_assignments SET released_on = $3
           WHERE team_id = $1 AND village_code = $2 AND term_start <= $3 AND released_on IS NULL""",
        data.team_id,
        data.village_code,
        data.effective_date,
    )


async def _team_records(conn: Connection, items: list[ConsumedEvent], _context: BatchContext[None]) -> None:
    """Which records were served as a team; whether the advisor was a member that day is asked when they
    are counted (`contracts.assignment.members_on`), so the registry and the records may arrive in any
    order."""
    rows = [
        (item.event.id, data.team_id, data.village_code)
        for item in items
        if isinstance(data := item.event.data, ServiceRecord)
        and not isinstance(data, RecordVoided)
        and data.team_id is not None
    ]
    if rows:
        await conn.executemany(
            """INSERT INTO team_activities (event_id, team_id, village_code) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            rows,
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


STEPS: dict[type[ApprovalEvent], Step] = {
    GradesSubmitted: Step.submit,
    GradesReturned: Step.return_,
    GradesAccepted: Step.accept,
}


async def _apply_approval(
    conn: Connection, item: ConsumedEvent, data: ApprovalEvent, _context: BatchContext[None]
) -> None:
    """One approval step, in the order of the county's partition; a step that does not fit where the
    approval stands (two officials acting at once) is kept as not applied and changes nothing."""
    state = await approval_state(conn, data.county_code, data.year)
    if isinstance(data, GradeAdjusted):
        try:
            check(state, Step.adjust)
            applied = True
        except Refused:
            applied = False
        await conn.execute(
            """INSERT INTO grade_adjustments (event_id, county_code, year, advisor_id, village_code,
                   based_on_revision, grade, subsidy_ratio, subsidy_yuan, reason, acted_by, acted_at, applied)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            item.event.id,
            data.county_code,
            data.year,
            data.advisor_id,
            data.village_code,
            data.based_on_revision,
            str(data.grade),
            data.subsidy_ratio,
            data.subsidy_yuan,
            data.reason,
            data.acted_by,
            data.acted_at,
            applied,
        )
        return
    assert isinstance(data, GradesSubmitted | GradesReturned | GradesAccepted)  # noqa: S101 - all the kinds
    try:
        after = apply_step(
            state,
            STEPS[type(data)],
            submission=data.submission,
            acted_by=data.acted_by,
            acted_at=data.acted_at,
            reason=data.reason if isinstance(data, GradesReturned) else None,
            grades=data.grades if isinstance(data, GradesSubmitted) else (),
        )
    except Refused:
        after = None
    await conn.execute(
        """INSERT INTO approval_steps (event_id, county_code, year, step, submission, acted_by, acted_at,
                                        reason, total_yuan, applied)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        item.event.id,
        data.county_code,
        data.year,
        str(STEPS[type(data)]),
        data.submission,
        data.acted_by,
        data.acted_at,
        data.reason if isinstance(data, GradesReturned) else None,
        data.total_yuan if isinstance(data, GradesSubmitted) else None,
        after is not None,
    )
    if after is None:
        return
    await conn.execute(
        """INSERT INTO approvals (county_code, year, status, submission, locked_submission, locked, pending,
                                   acted_by, acted_at, reason, accepted_by, accepted_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12)
           ON CONFLICT (county_code, year) DO UPDATE SET
               status = $3, submission = $4, locked_submission = $5, locked = $6::jsonb, pending = $7::jsonb,
               acted_by = $8, acted_at = $9, reason = $10, accepted_by = $11, accepted_at = $12""",
        data.county_code,
        data.year,
        str(after.status),
        after.submission,
        after.locked_submission,
        grades_json(after.locked),
        grades_json(after.pending),
        after.acted_by,
        after.acted_at,
        after.reason,
        after.accepted_by,
        after.accepted_at,
    )


async def _apply_activities(
    conn: Connection, items: list[ConsumedEvent], _context: BatchContext[None]
) -> None:
    """Every service record's row of what it counts for, then the voids that take records back."""
    rows = [row for row in map(activity_row, items) if row is not None]
    if rows:
        # COPY: every record here is new (the runtime has dropped what was applied before).
        await conn.copy_records_to_table("activities", records=rows, columns=ACTIVITY_COLUMNS)
    voids = [item.event.data for item in items if isinstance(item.event.data, RecordVoided)]
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


# The assessment, in the order it applies a batch: the registry (one total order), the year-end approval
# (each county's steps in order), what the closer published, then the service records and their voids.
handlers: Handlers[None] = Handlers()
handlers.each(
    {
        PolicyPublished: _policy_published,
        RegionClassified: _region_classified,
        AdvisorReleased: _advisor_released,
        ViolationRecorded: _violation_recorded,
    },
    topic=REGISTRY,
    runs={
        AdvisorAssigned: _advisors_assigned,
        AdvisorRegistered: _advisors_registered,
        RegionRegistered: _regions_registered,
    },
)
handlers.each(
    {TeamRegistered: _team_registered, TeamAssigned: _team_assigned, TeamReleased: _team_released},
    topic=REGISTRY,
)
handlers.each(
    {
        GradeAdjusted: _apply_approval,
        GradesSubmitted: _apply_approval,
        GradesReturned: _apply_approval,
        GradesAccepted: _apply_approval,
    }
)
handlers.on(MonthClosed, AssessmentGraded, AlertRaised, topic=ASSESSMENT)(_apply_own_outputs)
handlers.on(ServiceRecord)(_apply_activities)
handlers.on(ServiceRecord)(_team_records)


def assessment_projection() -> Projection:
    return Projection(
        name="assessment",
        schema=SCHEMA,
        topics=(VILLAGE_SERVICES, REGISTRY, ASSESSMENT),
        migrations=MIGRATIONS,
        apply=handlers.apply(state=lambda: None),
    )
