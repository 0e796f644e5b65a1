"""Closing months and raising alerts, from the injected clock: decides with `rules`, publishes to the
`assessment` topic, and learns back what it published through its own projection.

Every output has a deterministic id (advisor, village, month and revision; or alert kind and period),
so a repeat after a crash or a replay from offset 0 is a duplicate that consumers drop.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.assignment import assigned_on
from contracts.envelope import Event, to_kafka_record
from contracts.events import (
    MAX_VISIT,
    AlertKind,
    AlertRaised,
    AssessmentGraded,
    MonthClosed,
    PolicyReference,
    PolicyRules,
)
from plumbing.clock import Clock
from plumbing.kafka import PublishFailed, publish_many
from plumbing.logs import get_logger
from services.assessment import queries
from services.assessment.rules import (
    PublishedPolicy,
    activities_by_month,
    activities_by_year,
    alert_on_missed_month,
    close_decision,
    counted,
    day_start,
    due_alerts,
    grade_decision,
    local_day,
    month_compliance,
    months_to_close,
    policy_in_force,
    previous_lecture_period,
    snapshot,
    year_grade,
    years_to_grade,
)

log = get_logger(__name__)
SOURCE = "/villagecounsel/assessment"


def output_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "urn:villagecounsel:" + ":".join(str(part) for part in parts))


CHUNK_PAIRS = 500  # VC_CLOSE_CHUNK_PAIRS


class Closer:
    """Closes months, raises alerts and grades years for every (advisor, village) pair. A pass reads and
    decides a chunk of pairs at a time (a few statements per chunk) and publishes each chunk before the
    next, so a province's first pass — some 60,000 pairs, a year of closes each — stays within memory."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        clock: Clock,
        publish_timeout: float,
        chunk_pairs: int = CHUNK_PAIRS,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._clock = clock
        self._timeout = publish_timeout
        self._chunk = chunk_pairs
        # The last output the previous pass published to each partition of the topic: once the projection
        # knows these, it knows everything before them (a partition is applied in order).
        self._awaiting: list[uuid.UUID] = []

    async def run_once(self) -> list[Event]:
        """One pass over every assignment; returns what it published (tests; the service uses `run`)."""
        published: list[Event] = []
        await self._pass(published.extend)
        return published

    async def run(self) -> int:
        """One pass; returns how many outputs it published, keeping none of them."""
        count = 0

        def add(events: list[Event]) -> None:
            nonlocal count
            count += len(events)

        await self._pass(add)
        return count

    async def _pass(self, sink: Callable[[list[Event]], None]) -> None:
        """It waits for its previous outputs to come back through the projection first, so that it never
        decides twice on stale knowledge."""
        async with self._pool.acquire() as conn:
            if self._awaiting and len(await queries.known_output_ids(conn, self._awaiting)) < len(
                self._awaiting
            ):
                return
            policies = await queries.policies(conn)
            pairs = await queries.all_pairs(conn)
        now = self._clock.now()
        last: dict[int, uuid.UUID] = {}
        try:
            for start in range(0, len(pairs), self._chunk):
                async with self._pool.acquire() as conn:
                    decided = await self._decide(conn, pairs[start : start + self._chunk], policies, now)
                if not decided:
                    continue
                try:
                    stored = await publish_many(
                        self._producer, [to_kafka_record(event) for event in decided], self._timeout
                    )
                except PublishFailed:
                    log.warning("assessment_outputs_not_published", events=len(decided))
                    raise
                for event, (partition, _) in zip(decided, stored, strict=True):
                    last[partition] = event.id
                sink(decided)
        finally:
            if last:
                self._awaiting = list(last.values())

    async def _decide(
        self,
        conn: asyncpg.pool.PoolConnectionProxy,
        pairs: Sequence[queries.Pair],
        policies: list[PublishedPolicy],
        now: datetime,
    ) -> list[Event]:
        today = local_day(now)
        facts = await queries.facts_of_pairs(conn, pairs)
        village_tags = await queries.tags_of_villages(conn, [village for _, village in pairs], today)
        violations = await queries.violation_years(conn, [advisor for advisor, _ in pairs])
        decided: list[Event] = []
        for advisor_id, village_code in pairs:
            known = facts[(advisor_id, village_code)]
            terms, activities, tags = known.terms, known.activities, village_tags[village_code]
            current = policy_in_force(policies, village_code, today)
            rules = current.rules if current else PolicyRules()
            by_month = activities_by_month(activities)
            for year, month in months_to_close(terms, now, rules.grace_days):
                found = month_compliance(
                    now, year, month, village_code, tags, policies, terms, by_month.get((year, month), [])
                )
                month_text = f"{year:04d}-{month:02d}"
                decision = close_decision(known.closes.get(month_text), found.minutes)
                if decision is None:
                    continue
                decided.append(
                    self._event(
                        output_id("month_closed", advisor_id, village_code, month_text, decision.revision),
                        MonthClosed(
                            advisor_id=advisor_id,
                            village_code=village_code,
                            month=month_text,
                            on_site_minutes=found.minutes.on_site,
                            credited_offsite_minutes=found.minutes.credited_offsite,
                            required_minutes=found.minutes.required,
                            met=found.minutes.met,
                            revision=decision.revision,
                            changes=decision.changes,
                        ),
                        now,
                    )
                )
                if not found.minutes.met and alert_on_missed_month(year, month, now, rules.grace_days):
                    decided.append(
                        self._alert(
                            advisor_id,
                            village_code,
                            AlertKind.hours_missed,
                            month_text,
                            now,
                            f"{found.minutes.counted} of {found.minutes.required} minutes in {month_text}",
                        )
                    )
            decided.extend(self._grades(advisor_id, village_code, tags, policies, known, violations, now))
            if not assigned_on(terms, today):
                continue
            # Where the advisor stands needs this year and the last (the trailing twelve months) only.
            since = day_start(date(today.year - 1, 1, 1)) - MAX_VISIT
            recent = [item for item in activities if item.occurred_at >= since]
            state = snapshot(now, village_code, tags, policies, terms, recent, violation_this_year=False)
            previous = previous_lecture_period(today, rules.lecture_period)
            kept = counted(activities, terms)
            held_before = (
                sum(
                    previous.contains(local_day(item.occurred_at))
                    for item in kept
                    if item.event_type == "lecture.held"
                )
                if previous
                else 0
            )
            last = max((item.occurred_at for item in kept), default=None)
            assigned_since = min(term.term_start for term in terms)
            for alert in due_alerts(now, state, previous, held_before, last, assigned_since, rules):
                decided.append(
                    self._alert(advisor_id, village_code, AlertKind(alert.kind), alert.key, now, alert.detail)
                )
        if not decided:
            return []
        already = await queries.known_output_ids(conn, [event.id for event in decided])
        return [event for event in decided if event.id not in already]

    def _grades(
        self,
        advisor_id: str,
        village_code: str,
        tags: list[str],
        policies: list[PublishedPolicy],
        known: queries.PairFacts,
        violations: set[tuple[str, int]],
        now: datetime,
    ) -> list[Event]:
        terms = known.terms
        by_year = activities_by_year(known.activities)
        current = policy_in_force(policies, village_code, local_day(now))
        grace = (current.rules if current else PolicyRules()).grace_days
        latest = known.grades
        decided = []
        for year in years_to_grade(terms, now, grace):
            violation = (advisor_id, year) in violations
            found = year_grade(year, village_code, tags, policies, terms, by_year.get(year, []), violation)
            if found.policy is None:
                log.warning("no_policy_to_grade_by", village_code=village_code, year=year)
                continue
            decision = grade_decision(latest.get(year), found)
            if decision is None:
                continue
            decided.append(
                self._event(
                    output_id("graded", advisor_id, village_code, year, decision.revision),
                    AssessmentGraded(
                        advisor_id=advisor_id,
                        village_code=village_code,
                        year=year,
                        score=found.score,
                        grade=found.grade,
                        subsidy_ratio=found.subsidy_ratio,
                        subsidy_yuan=found.subsidy_yuan,
                        components={name: round(value, 2) for name, value in found.components.items()},
                        policy=PolicyReference(
                            region_code=found.policy.region_code,
                            effective_from=found.policy.effective_from,
                            event_id=found.policy.event_id,
                        ),
                        revision=decision.revision,
                        changes=decision.changes,
                    ),
                    now,
                )
            )
        return decided

    def _alert(
        self, advisor_id: str, village_code: str, kind: AlertKind, key: str, now: datetime, detail: str
    ) -> Event:
        return self._event(
            output_id("alert", advisor_id, village_code, kind, key),
            AlertRaised(
                advisor_id=advisor_id,
                village_code=village_code,
                kind=kind,
                as_of=local_day(now),
                detail=detail,
            ),
            now,
        )

    @staticmethod
    def _event(
        event_id: uuid.UUID, data: MonthClosed | AlertRaised | AssessmentGraded, now: datetime
    ) -> Event:
        return Event(id=event_id, source=SOURCE, time=now, data=data, recorded_at=now)
