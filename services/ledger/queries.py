"""Reads of the ledger's tables. Pages use keyset cursors, so they never skip or repeat under inserts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.assignment import AssignmentTerm, TeamMembership, member_terms
from contracts.events import SEALED_PERSONAL_FIELD, SealedPersonal
from plumbing.personal import Sealer
from plumbing.postgres import Connection, code_within_sql
from services.ledger.rules import BrokenLink, ChainedEntry, ChainVerifier, EntryContent

ENTRY_SELECT = """
    SELECT e.event_id, e.village_code, e.sequence, e.event_type, e.advisor_id, e.occurred_at, e.recorded_at,
           e.recorded_by, e.fields, e.kafka_topic, e.kafka_partition, e.kafka_offset,
           encode(e.entry_hash, 'hex') AS entry_hash,
           p.data AS personal, p.erased_at, k.wrapped_key,
           applied.void_event_id AS voided_by_event_id, applied.voided_at, applied.voided_by,
           own.target_event_id AS void_target_event_id, own.status AS void_status
    FROM entries e
    LEFT JOIN entry_personal p ON p.event_id = e.event_id
    LEFT JOIN keystore.data_keys k ON k.key_id = (p.data #>> '{sealed_personal,key_id}')::uuid
    LEFT JOIN voids applied ON applied.target_event_id = e.event_id AND applied.status = 'applied'
    LEFT JOIN voids own ON own.void_event_id = e.event_id
"""

_VILLAGE_FILTER = """
    WHERE e.village_code = $1
      AND ($2::timestamptz IS NULL OR e.occurred_at >= $2)
      AND ($3::timestamptz IS NULL OR e.occurred_at < $3)
      AND ($4::text IS NULL OR e.event_type = $4)
      AND ($5::text IS NULL OR e.advisor_id = $5)
      AND ($6::boolean IS NULL OR (applied.void_event_id IS NOT NULL) = $6)
"""
VILLAGE_PAGE_OLDEST_FIRST = (
    ENTRY_SELECT
    + _VILLAGE_FILTER
    + " AND ($7::bigint IS NULL OR e.sequence > $7) ORDER BY e.sequence LIMIT $8"
)
VILLAGE_PAGE_NEWEST_FIRST = (
    ENTRY_SELECT
    + _VILLAGE_FILTER
    + " AND ($7::bigint IS NULL OR e.sequence < $7) ORDER BY e.sequence DESC LIMIT $8"
)
VILLAGE_ALL_OLDEST_FIRST = ENTRY_SELECT + _VILLAGE_FILTER + " ORDER BY e.sequence"
EXPORT_ROWS_UP_TO = """
    SELECT count(*) FROM (
        SELECT 1
        FROM entries e
        LEFT JOIN voids applied ON applied.target_event_id = e.event_id AND applied.status = 'applied'
        WHERE e.village_code = ANY($1::text[])
          AND ($2::timestamptz IS NULL OR e.occurred_at >= $2)
          AND ($3::timestamptz IS NULL OR e.occurred_at < $3)
          AND ($4::text IS NULL OR e.event_type = $4)
          AND ($5::text IS NULL OR e.advisor_id = $5)
          AND ($6::boolean IS NULL OR (applied.void_event_id IS NOT NULL) = $6)
        LIMIT $7
    ) found
"""


@dataclass(frozen=True)
class EntryFilter:
    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    advisor_id: str | None = None
    voided: bool | None = None

    def arguments(self, village_code: str | list[str]) -> tuple[Any, ...]:
        return (village_code, self.since, self.until, self.event_type, self.advisor_id, self.voided)


def open_personal(stored: str | None, wrapped_key: bytes | None, sealer: Sealer) -> tuple[Any, bool]:
    """(the personal fields, erased?) of what entry_personal holds: plain values of an older record, or a
    seal opened with its key — or nothing, once the key is destroyed."""
    if stored is None:
        return None, False
    personal = orjson.loads(stored)
    sealed = personal.pop(SEALED_PERSONAL_FIELD, None)
    if sealed is None:
        return personal, False
    opened = sealer.open(SealedPersonal.model_validate(sealed), wrapped_key)
    return opened, opened is None


def as_entry(row: asyncpg.Record, sealer: Sealer) -> dict[str, Any]:
    entry = dict(row)
    entry["fields"] = orjson.loads(entry["fields"])
    entry["personal"], key_gone = open_personal(entry["personal"], entry.pop("wrapped_key"), sealer)
    entry["personal_erased"] = key_gone or entry["erased_at"] is not None
    return entry


async def village_page(
    conn: Connection,
    village_code: str,
    filters: EntryFilter,
    *,
    newest_first: bool,
    after: int | None,
    limit: int,
    sealer: Sealer,
) -> list[dict[str, Any]]:
    query = VILLAGE_PAGE_NEWEST_FIRST if newest_first else VILLAGE_PAGE_OLDEST_FIRST
    rows = await conn.fetch(query, *filters.arguments(village_code), after, limit)
    return [as_entry(row, sealer) for row in rows]


async def export_rows_up_to(conn: Connection, villages: list[str], filters: EntryFilter, limit: int) -> int:
    """How many entries an export of these villages would hold, counted up to `limit`."""
    found: int = await conn.fetchval(EXPORT_ROWS_UP_TO, *filters.arguments(villages), limit)
    return found


async def village_entries(
    conn: Connection, village_code: str, filters: EntryFilter, sealer: Sealer
) -> AsyncIterator[dict[str, Any]]:
    """Every matching entry, oldest first, through a server-side cursor (call inside a transaction)."""
    async for row in conn.cursor(VILLAGE_ALL_OLDEST_FIRST, *filters.arguments(village_code), prefetch=500):
        yield as_entry(row, sealer)


WORKLOG_PAGE = (
    ENTRY_SELECT
    + """
    WHERE e.advisor_id = $1 AND e.village_code LIKE $2 || '%'
      AND ($3::timestamptz IS NULL OR e.occurred_at >= $3)
      AND ($4::timestamptz IS NULL OR e.occurred_at < $4)
      AND ($5::timestamptz IS NULL OR (e.occurred_at, e.event_id) > ($5, $6::uuid))
    ORDER BY e.occurred_at, e.event_id
    LIMIT $7
"""
)


async def worklog_page(
    conn: Connection,
    advisor_id: str,
    region_prefix: str,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
    sealer: Sealer,
) -> list[dict[str, Any]]:
    after_time, after_id = after if after else (None, None)
    rows = await conn.fetch(
        WORKLOG_PAGE, advisor_id, region_prefix, since, until, after_time, after_id, limit
    )
    return [as_entry(row, sealer) for row in rows]


async def advisor_villages(conn: Connection, advisor_id: str, region_prefix: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT DISTINCT village_code FROM entries WHERE advisor_id = $1 AND village_code LIKE $2 || '%'
           ORDER BY village_code""",
        advisor_id,
        region_prefix,
    )
    return [row["village_code"] for row in rows]


async def entry(conn: Connection, event_id: UUID, sealer: Sealer) -> dict[str, Any] | None:
    row = await conn.fetchrow(ENTRY_SELECT + " WHERE e.event_id = $1", event_id)
    return as_entry(row, sealer) if row else None


async def corrections(conn: Connection, event_id: UUID, sealer: Sealer) -> list[dict[str, Any]]:
    """Every void that named this entry, in the order they were appended."""
    rows = await conn.fetch(
        """SELECT v.void_event_id, v.status, v.voided_at, v.voided_by, e.sequence, p.data AS personal,
                  k.wrapped_key
           FROM voids v JOIN entries e ON e.event_id = v.void_event_id
           LEFT JOIN entry_personal p ON p.event_id = v.void_event_id
           LEFT JOIN keystore.data_keys k ON k.key_id = (p.data #>> '{sealed_personal,key_id}')::uuid
           WHERE v.target_event_id = $1 ORDER BY e.village_code, e.sequence""",
        event_id,
    )
    found = []
    for row in rows:
        item = dict(row)
        item["personal"], _ = open_personal(item["personal"], item.pop("wrapped_key"), sealer)
        found.append(item)
    return found


async def village_file(conn: Connection, village_code: str) -> dict[str, Any]:
    region = await conn.fetchrow(
        "SELECT code, name, parent_code, retired_on, successor_code FROM regions WHERE code = $1",
        village_code,
    )
    head = await conn.fetchrow(
        "SELECT last_sequence FROM village_files WHERE village_code = $1", village_code
    )
    advisors = await conn.fetch(
        """SELECT a.advisor_id, d.name, d.kind, d.organisation, a.term_start, a.term_end,
                  a.annual_subsidy_yuan, a.released_on, a.release_reason
           FROM assignments a LEFT JOIN advisors d ON d.advisor_id = a.advisor_id
           WHERE a.village_code = $1 ORDER BY a.term_start, a.advisor_id""",
        village_code,
    )
    return {
        "village_code": village_code,
        "name": region["name"] if region else None,
        "parent_code": region["parent_code"] if region else village_code[:9],
        "retired_on": region["retired_on"] if region else None,
        "successor_code": region["successor_code"] if region else None,
        "entries": head["last_sequence"] if head else 0,
        "advisors": [dict(row) for row in advisors],
    }


async def terms_for(
    conn: Connection, village_codes: list[str]
) -> dict[tuple[str, str], list[AssignmentTerm]]:
    """(advisor, village) → terms, for the villages asked about."""
    rows = await conn.fetch(
        """SELECT advisor_id, village_code, term_start, term_end, released_on FROM assignments
           WHERE village_code = ANY($1::text[])""",
        village_codes,
    )
    terms: dict[tuple[str, str], list[AssignmentTerm]] = {}
    for row in rows:
        terms.setdefault((row["advisor_id"], row["village_code"]), []).append(
            AssignmentTerm(row["term_start"], row["term_end"], row["released_on"])
        )
    for (advisor_id, village_code), served in (await team_member_terms(conn, village_codes)).items():
        terms.setdefault((advisor_id, village_code), []).extend(served)
    return terms


async def team_member_terms(
    conn: Connection, village_codes: list[str]
) -> dict[tuple[str, str], list[AssignmentTerm]]:
    """(member, village) → the days of a team's terms on which the advisor was its member."""
    team_terms = await conn.fetch(
        """SELECT team_id, village_code, term_start, term_end, released_on FROM team_assignments
           WHERE village_code = ANY($1::text[])""",
        village_codes,
    )
    if not team_terms:
        return {}
    rows = await conn.fetch(
        """SELECT team_id, effective_from, members FROM team_registrations
           WHERE team_id = ANY($1::text[]) ORDER BY position""",
        sorted({row["team_id"] for row in team_terms}),
    )
    registrations: dict[str, list[TeamMembership]] = {}
    for row in rows:
        registrations.setdefault(row["team_id"], []).append(
            TeamMembership(row["effective_from"], tuple(row["members"]))
        )
    found: dict[tuple[str, str], list[AssignmentTerm]] = {}
    for row in team_terms:
        team = registrations.get(row["team_id"], [])
        term = AssignmentTerm(row["term_start"], row["term_end"], row["released_on"])
        for member in sorted({member for registration in team for member in registration.members}):
            served = member_terms(team, member, term)
            if served:
                found.setdefault((member, row["village_code"]), []).extend(served)
    return found


async def advisor_names(conn: Connection, advisor_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT advisor_id, name FROM advisors WHERE advisor_id = ANY($1::text[])", advisor_ids
    )
    return {row["advisor_id"]: row["name"] for row in rows}


async def villages_under(conn: Connection, region_prefix: str) -> list[str]:
    rows = await conn.fetch(
        f"""SELECT village_code FROM village_files WHERE {code_within_sql("village_code", "$1")}
            ORDER BY village_code""",  # noqa: S608 - the condition is code, the prefix a parameter
        region_prefix,
    )
    return [row["village_code"] for row in rows]


async def village_names(conn: Connection, codes: list[str]) -> dict[str, str]:
    rows = await conn.fetch("SELECT code, name FROM regions WHERE code = ANY($1::text[])", codes)
    return {row["code"]: row["name"] for row in rows}


async def chain(conn: Connection, village_code: str) -> AsyncIterator[ChainedEntry]:
    """A village's entries as the chain stores them, in order (call inside a transaction)."""
    async for row in conn.cursor(
        """SELECT event_id, village_code, sequence, event_type, advisor_id, occurred_at, recorded_at,
                  recorded_by, fields, personal_digest, previous_hash, entry_hash
           FROM entries WHERE village_code = $1 ORDER BY sequence""",
        village_code,
        prefetch=1000,
    ):
        yield ChainedEntry(
            EntryContent(
                event_id=row["event_id"],
                village_code=row["village_code"],
                sequence=row["sequence"],
                event_type=row["event_type"],
                advisor_id=row["advisor_id"],
                occurred_at=row["occurred_at"],
                recorded_at=row["recorded_at"],
                recorded_by=row["recorded_by"],
                fields=orjson.loads(row["fields"]),
                personal_digest=bytes(row["personal_digest"]),
            ),
            bytes(row["previous_hash"]),
            bytes(row["entry_hash"]),
        )


async def first_broken_link(conn: Connection, villages: list[str]) -> tuple[int, BrokenLink | None]:
    """Check the villages' chains in turn (inside a transaction): (villages checked, first broken link)."""
    for checked, code in enumerate(villages, start=1):
        verifier = ChainVerifier(code)
        async for item in chain(conn, code):
            broken = verifier.check(item)
            if broken is not None:
                return checked, broken
    return len(villages), None


async def conflicts_under(conn: Connection, region_prefix: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT event_id, event_type, village_code, kafka_topic, kafka_partition, kafka_offset,
                  first_kafka_partition, first_kafka_offset
           FROM conflicts WHERE village_code LIKE $1 || '%'
           ORDER BY kafka_partition, kafka_offset LIMIT $2""",
        region_prefix,
        limit,
    )
    return [dict(row) for row in rows]
