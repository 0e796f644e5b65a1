"""Events → the ledger's tables, in the batch transaction the projection runtime opens."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from contracts.assignment import assigned_on
from contracts.events import (
    AdvisorAssigned,
    AdvisorRegistered,
    AdvisorReleased,
    PersonalErased,
    RecordVoided,
    RegionRegistered,
    RegionRetired,
    ServiceRecord,
    TeamAssigned,
    TeamRegistered,
    TeamReleased,
)
from contracts.topics import REGISTRY, VILLAGE_SERVICES
from plumbing.handlers import BatchContext, Handlers, advisor_registrations, last_of_each
from plumbing.postgres import Connection
from plumbing.projection import ConsumedEvent, Projection
from services.ledger import metrics
from services.ledger.queries import terms_for
from services.ledger.rules import (
    GENESIS,
    ChainedEntry,
    EntryContent,
    VillageHead,
    VoidStatus,
    VoidTarget,
    personal_digest,
    resolve_void,
    service_day,
    split_fields,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMA = "ledger"
# A batch's context: the key that salts the digests of personal data.
LedgerContext = BatchContext[bytes]


def personal_salt(key: bytes, event_id: UUID) -> bytes:
    """Deterministic per entry (a rebuild yields the same hashes), unguessable without the key."""
    return hmac.new(key, event_id.bytes, hashlib.sha256).digest()


async def _advisors_registered(conn: Connection, items: list[ConsumedEvent], _context: LedgerContext) -> None:
    """A run of registrations in two statements, as one by one: a registration the advisor's owner may not
    make is refused (`registrations_permitted`), the last permitted one of an advisor wins."""
    written, refused = await advisor_registrations(conn, items)
    if refused:
        metrics.REFUSED_REGISTRATIONS.inc(refused)
    await conn.execute(
        """INSERT INTO advisors (advisor_id, name, kind, organisation, licence_no, owner_region)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
           ON CONFLICT (advisor_id)
           DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, organisation = EXCLUDED.organisation,
                         licence_no = EXCLUDED.licence_no, owner_region = EXCLUDED.owner_region""",
        [data.advisor_id for data, _ in written],
        [data.name for data, _ in written],
        [str(data.kind) for data, _ in written],
        [data.organisation for data, _ in written],
        [data.licence_no for data, _ in written],
        [owner for _, owner in written],
    )
    await conn.execute(
        """INSERT INTO advisor_personal (advisor_id, phone) SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (advisor_id) DO UPDATE SET phone = EXCLUDED.phone""",
        [data.advisor_id for data, _ in written],
        [data.phone for data, _ in written],
    )


async def _advisors_assigned(conn: Connection, items: list[ConsumedEvent], _context: LedgerContext) -> None:
    """A run of assignments in one statement; a later assignment of a key (advisor, village, term start)
    overwrites an earlier one, as one by one."""
    rows = last_of_each(
        items, AdvisorAssigned, lambda data: (data.advisor_id, data.village_code, data.term_start)
    )
    await conn.execute(
        """INSERT INTO assignments (advisor_id, village_code, term_start, term_end,
                                  annual_subsidy_yuan, assigned_event_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::date[], $5::numeric[], $6::uuid[])
           ON CONFLICT (advisor_id, village_code, term_start)
           DO UPDATE SET term_end = EXCLUDED.term_end, annual_subsidy_yuan = EXCLUDED.annual_subsidy_yuan,
                         assigned_event_id = EXCLUDED.assigned_event_id""",
        [data.advisor_id for _, data in rows],
        [data.village_code for _, data in rows],
        [data.term_start for _, data in rows],
        [data.term_end for _, data in rows],
        [data.annual_subsidy_yuan for _, data in rows],
        [item.event.id for item, _ in rows],
    )


async def _advisor_released(
    conn: Connection, item: ConsumedEvent, data: AdvisorReleased, _context: LedgerContext
) -> None:
    await conn.execute(
        """UPDATE assignments SET released_on = $3, release_reason = $4
           WHERE advisor_id = $1 AND village_code = $2 AND term_start <= $3
             AND released_on IS NULL""",
        data.advisor_id,
        data.village_code,
        data.effective_date,
        str(data.reason),
    )


async def _regions_registered(conn: Connection, items: list[ConsumedEvent], _context: LedgerContext) -> None:
    """A run of registrations in one statement; the last of a code wins, as one by one."""
    regions = last_of_each(items, RegionRegistered, lambda data: data.code)
    await conn.execute(
        """INSERT INTO regions (code, name, level, parent_code)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
           ON CONFLICT (code) DO UPDATE
           SET name = EXCLUDED.name, level = EXCLUDED.level, parent_code = EXCLUDED.parent_code""",
        [data.code for _, data in regions],
        [data.name for _, data in regions],
        [str(data.level) for _, data in regions],
        [data.parent_code for _, data in regions],
    )


async def _region_retired(
    conn: Connection, item: ConsumedEvent, data: RegionRetired, _context: LedgerContext
) -> None:
    await conn.execute(
        "UPDATE regions SET retired_on = $2, successor_code = $3 WHERE code = $1",
        data.code,
        data.effective_date,
        data.successor_code,
    )


def _service_record(item: ConsumedEvent) -> ServiceRecord:
    if not isinstance(item.event.data, ServiceRecord):
        raise TypeError(f"{item.event.type} is not a service record")
    return item.event.data


async def _load_heads(conn: Connection, villages: list[str]) -> dict[str, VillageHead]:
    rows = await conn.fetch(
        """SELECT village_code, last_sequence, last_hash FROM village_files
           WHERE village_code = ANY($1::text[]) ORDER BY village_code FOR UPDATE""",
        villages,
    )
    heads = {code: VillageHead(code) for code in villages}
    for row in rows:
        heads[row["village_code"]] = VillageHead(
            row["village_code"], row["last_sequence"], bytes(row["last_hash"])
        )
    return heads


async def _known_targets(conn: Connection, target_ids: list[UUID]) -> dict[UUID, VoidTarget]:
    """The targets of this batch's voids that are in the ledger."""
    if not target_ids:
        return {}
    rows = await conn.fetch(
        """SELECT e.event_id, e.village_code, e.advisor_id, e.recorded_by,
                  EXISTS (SELECT 1 FROM voids v WHERE v.target_event_id = e.event_id AND v.status = 'applied')
                      AS voided
           FROM entries e WHERE e.event_id = ANY($1::uuid[])""",
        target_ids,
    )
    return {
        row["event_id"]: VoidTarget(row["village_code"], row["advisor_id"], row["recorded_by"], row["voided"])
        for row in rows
    }


async def _apply_erasures(conn: Connection, items: list[ConsumedEvent], _context: LedgerContext) -> None:
    """Remember each erasure, and blank what the ledger holds of its target (a sealed value is already
    unreadable: its key was destroyed before the event was published)."""
    erasures = [
        (item.event.id, item.event.data) for item in items if isinstance(item.event.data, PersonalErased)
    ]
    if not erasures:
        return
    await conn.executemany(
        """INSERT INTO erasures (target_event_id, village_code, erased_at, erased_by, reason, event_id)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_event_id) DO NOTHING""",
        [
            (
                data.target_event_id,
                data.village_code,
                data.erased_at,
                data.erased_by,
                str(data.reason),
                event_id,
            )
            for event_id, data in erasures
        ],
    )
    await conn.executemany(
        """UPDATE entry_personal p SET data = NULL, erased_at = $3, erased_by = $4
           FROM entries e
           WHERE p.event_id = $1 AND e.event_id = p.event_id AND e.village_code = $2""",
        [(data.target_event_id, data.village_code, data.erased_at, data.erased_by) for _, data in erasures],
    )
    metrics.ERASURES.inc(len(erasures))


async def _record_conflicts(conn: Connection, context: LedgerContext) -> None:
    """Ids seen again with other content, kept out of the ledger and listed (`/v1/conflicts`)."""
    conflicts = context.batch.conflicts
    if not conflicts:
        return
    await conn.executemany(
        """INSERT INTO conflicts (event_id, event_type, village_code, kafka_topic, kafka_partition,
                                  kafka_offset, first_kafka_partition, first_kafka_offset)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
        [
            (
                c.later.event.id,
                c.later.event.type,
                c.later.event.subject,
                c.later.topic,
                c.later.partition,
                c.later.offset,
                c.first_partition,
                c.first_offset,
            )
            for c in conflicts
        ],
    )
    metrics.CONFLICTS.inc(len(conflicts))


ENTRY_COLUMNS = [
    "event_id",
    "village_code",
    "sequence",
    "event_type",
    "advisor_id",
    "occurred_at",
    "recorded_at",
    "recorded_by",
    "fields",
    "personal_digest",
    "previous_hash",
    "entry_hash",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
]


async def _append_entries(conn: Connection, records: list[ConsumedEvent], context: LedgerContext) -> None:
    """Each village's new entries, chained to its head (a void resolves against what it targets)."""
    personal_key = context.state
    heads = await _load_heads(conn, sorted({item.event.subject for item in records}))
    voids = [item for item in records if isinstance(item.event.data, RecordVoided)]
    targets = await _known_targets(
        conn, [item.event.data.target_event_id for item in voids if isinstance(item.event.data, RecordVoided)]
    )
    entry_rows: list[tuple[Any, ...]] = []
    personal_rows: list[tuple[Any, ...]] = []
    void_rows: list[tuple[Any, ...]] = []
    for item in records:
        data = _service_record(item)
        statistics, personal = split_fields(data, item.values)
        head = heads[data.village_code]
        chained: ChainedEntry = head.append(
            EntryContent(
                event_id=item.event.id,
                village_code=data.village_code,
                sequence=head.last_sequence + 1,
                event_type=item.event.type,
                advisor_id=data.advisor_id,
                occurred_at=data.occurred_at,
                recorded_at=item.event.recorded_at,
                recorded_by=data.recorded_by,
                fields=statistics,
                # the salt only where there is personal data to digest (an HMAC per entry otherwise)
                personal_digest=personal_digest(personal, personal_salt(personal_key, item.event.id))
                if personal
                else b"",
            )
        )
        content = chained.content
        entry_rows.append(
            (
                content.event_id,
                content.village_code,
                content.sequence,
                content.event_type,
                content.advisor_id,
                content.occurred_at,
                content.recorded_at,
                content.recorded_by,
                orjson.dumps(statistics).decode(),
                content.personal_digest,
                chained.previous_hash,
                chained.entry_hash,
                item.topic,
                item.partition,
                item.offset,
            )
        )
        if personal:
            personal_rows.append((item.event.id, orjson.dumps(personal).decode()))
        targets[item.event.id] = VoidTarget(data.village_code, data.advisor_id, data.recorded_by)
        if isinstance(data, RecordVoided):
            target = targets.get(data.target_event_id)
            status = resolve_void(target, data)
            if target is not None and status is VoidStatus.applied:
                targets[data.target_event_id] = dataclasses.replace(target, voided=True)
            void_rows.append(
                (item.event.id, data.target_event_id, str(status), data.occurred_at, data.recorded_by)
            )
            metrics.VOIDS.labels(str(status)).inc()
    # COPY, not INSERT: every row is new (the runtime has dropped what was applied before), and a
    # rebuild's batch is 10,000 entries.
    await conn.copy_records_to_table("entries", records=entry_rows, columns=ENTRY_COLUMNS)
    if personal_rows:
        await conn.copy_records_to_table(
            "entry_personal", records=personal_rows, columns=["event_id", "data"]
        )
    if void_rows:
        await conn.executemany(
            """INSERT INTO voids (void_event_id, target_event_id, status, voided_at, voided_by)
               VALUES ($1, $2, $3, $4, $5)""",
            void_rows,
        )
    await _count_unassigned(conn, records)
    await conn.executemany(
        """INSERT INTO village_files (village_code, last_sequence, last_hash) VALUES ($1, $2, $3)
           ON CONFLICT (village_code) DO UPDATE SET last_sequence = $2, last_hash = $3""",
        [
            (head.village_code, head.last_sequence, head.last_hash)
            for head in heads.values()
            if head.last_hash != GENESIS
        ],
    )


async def _count_unassigned(conn: Connection, records: list[ConsumedEvent]) -> None:
    """For the metric only: answers compute the flag when read, so a replay in another order agrees."""
    services = [_service_record(item) for item in records]
    terms = await terms_for(conn, sorted({data.village_code for data in services}))
    unassigned = sum(
        not assigned_on(terms.get((data.advisor_id, data.village_code), []), service_day(data.occurred_at))
        for data in services
    )
    if unassigned:
        metrics.UNASSIGNED.inc(unassigned)


async def _team_registered(
    conn: Connection, item: ConsumedEvent, data: TeamRegistered, _context: LedgerContext
) -> None:
    await conn.execute(
        """INSERT INTO team_registrations (event_id, team_id, effective_from, members)
           VALUES ($1, $2, $3, $4)""",
        item.event.id,
        data.team_id,
        data.effective_from,
        list(data.members),
    )


async def _team_assigned(
    conn: Connection, item: ConsumedEvent, data: TeamAssigned, _context: LedgerContext
) -> None:
    await conn.execute(
        """INSERT INTO team_assignments (team_id, village_code, term_start, term_end) VALUES ($1, $2, $3, $4)
           ON CONFLICT (team_id, village_code, term_start) DO UPDATE SET term_end = $4""",
        data.team_id,
        data.village_code,
        data.term_start,
        data.term_end,
    )


async def _team_released(
    conn: Connection, item: ConsumedEvent, data: TeamReleased, _context: LedgerContext
) -> None:
    await conn.execute(
        """UPDATE team_assignments SET released_on = $3
           WHERE team_id = $1 AND village_code = $2 AND term_start <= $3 AND released_on IS NULL""",
        data.team_id,
        data.village_code,
        data.effective_date,
    )


# The ledger, in the order it applies a batch: the registry (one total order), the service records (each
# village's chain), erasures (after the records they erase), then the conflicts the runtime kept out.
handlers: Handlers[bytes] = Handlers()
handlers.each(
    {AdvisorReleased: _advisor_released, RegionRetired: _region_retired},
    topic=REGISTRY,
    runs={
        RegionRegistered: _regions_registered,
        AdvisorRegistered: _advisors_registered,
        AdvisorAssigned: _advisors_assigned,
    },
)
handlers.each(
    {TeamRegistered: _team_registered, TeamAssigned: _team_assigned, TeamReleased: _team_released},
    topic=REGISTRY,
)
handlers.on(ServiceRecord)(_append_entries)
handlers.on(PersonalErased)(_apply_erasures)


def ledger_projection(personal_key: bytes) -> Projection:
    return Projection(
        name="ledger",
        schema=SCHEMA,
        topics=(VILLAGE_SERVICES, REGISTRY),
        migrations=MIGRATIONS,
        apply=handlers.apply(state=lambda: personal_key, finish=_record_conflicts),
    )
