"""The ledger's rules as pure functions: 一村一卷 (one file per village), 一事一记 / 一次一记 (one entry per
matter and per visit), sequence numbers without gaps, a hash chain an auditor can check, and personal
data kept apart from the statistics-grade fields."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson

from contracts.envelope import payload_values
from contracts.events import (
    DEFAULT_ZONE,
    SEALED_PERSONAL_FIELD,
    EventPayload,
    RecordVoided,
    personal_field_names,
    void_permitted,
)

GENESIS = b"\x00" * 32
COMMON_COLUMNS = ("advisor_id", "village_code", "occurred_at", "recorded_by")


class VoidStatus(StrEnum):
    applied = "applied"
    unknown_target = "unknown_target"
    already_voided = "already_voided"
    not_permitted = "not_permitted"


def split_fields(
    payload: EventPayload, values: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics-grade fields, personal fields) of a service record, as JSON-ready values. A sealed
    record's personal part is its seal (`{"sealed_personal": ...}`): the ledger never holds the plain
    values of it, and the chain's digest covers the seal. `values`: the payload's `payload_values`, when
    the runtime has dumped them already."""
    if values is None:
        values = payload_values(payload)
    personal_names = personal_field_names(type(payload)) | {SEALED_PERSONAL_FIELD}
    statistics = {k: v for k, v in values.items() if k not in personal_names and k not in COMMON_COLUMNS}
    personal = {k: v for k, v in values.items() if k in personal_names}
    return statistics, personal


def personal_digest(personal: dict[str, Any], salt: bytes) -> bytes:
    """What the chain covers of personal data: a salted digest, so erasing the data (and its salt) keeps
    the chain verifiable and leaves nothing to guess a phone number from."""
    if not personal:
        return b""
    return hashlib.sha256(salt + orjson.dumps(personal, option=orjson.OPT_SORT_KEYS)).digest()


@dataclass(frozen=True)
class EntryContent:
    """What an entry says; the hash covers exactly this, in this canonical form."""

    event_id: UUID
    village_code: str
    sequence: int
    event_type: str
    advisor_id: str
    occurred_at: datetime
    recorded_at: datetime | None
    recorded_by: str
    fields: dict[str, Any]
    personal_digest: bytes

    def canonical(self) -> bytes:
        return orjson.dumps(
            {
                "event_id": str(self.event_id),
                "village_code": self.village_code,
                "sequence": self.sequence,
                "event_type": self.event_type,
                "advisor_id": self.advisor_id,
                "occurred_at": _utc(self.occurred_at),
                "recorded_at": _utc(self.recorded_at) if self.recorded_at else None,
                "recorded_by": self.recorded_by,
                "fields": self.fields,
                "personal_digest": self.personal_digest.hex(),
            },
            option=orjson.OPT_SORT_KEYS,
        )


def _utc(moment: datetime) -> str:
    """One spelling per instant: PostgreSQL gives times back in UTC, whatever offset they came with."""
    return moment.astimezone(UTC).isoformat()


def entry_hash(previous_hash: bytes, content: EntryContent) -> bytes:
    return hashlib.sha256(previous_hash + content.canonical()).digest()


@dataclass(frozen=True)
class ChainedEntry:
    content: EntryContent
    previous_hash: bytes
    entry_hash: bytes


@dataclass(frozen=True)
class BrokenLink:
    village_code: str
    sequence: int
    problem: str

    def __str__(self) -> str:
        return f"village {self.village_code}, entry {self.sequence}: {self.problem}"


class ChainVerifier:
    """Checks a village's entries one by one, in order, without holding them all."""

    def __init__(self, village_code: str) -> None:
        self.village_code = village_code
        self.expected_sequence = 1
        self.previous = GENESIS

    def check(self, entry: ChainedEntry) -> BrokenLink | None:
        """The problem with this entry, or None when it holds (and then it becomes the chain's end)."""
        content = entry.content
        if content.sequence != self.expected_sequence:
            return BrokenLink(
                self.village_code, content.sequence, f"expected entry number {self.expected_sequence}"
            )
        if entry.previous_hash != self.previous:
            return BrokenLink(self.village_code, content.sequence, "does not link to the entry before it")
        if entry_hash(self.previous, content) != entry.entry_hash:
            return BrokenLink(self.village_code, content.sequence, "its content does not match its hash")
        self.previous = entry.entry_hash
        self.expected_sequence += 1
        return None


def verify_chain(village_code: str, entries: Iterable[ChainedEntry]) -> BrokenLink | None:
    """The first entry whose number, link or hash does not hold, or None when the file is intact."""
    verifier = ChainVerifier(village_code)
    for entry in entries:
        broken = verifier.check(entry)
        if broken is not None:
            return broken
    return None


@dataclass
class VillageHead:
    """Where a village's file stands: the last number and hash."""

    village_code: str
    last_sequence: int = 0
    last_hash: bytes = GENESIS

    def append(self, content: EntryContent) -> ChainedEntry:
        """The entry chained as the file's next: numbered here, unless it already carries the next number
        (then it is not copied)."""
        sequence = self.last_sequence + 1
        if content.sequence != sequence:
            content = dataclasses.replace(content, sequence=sequence)
        chained = ChainedEntry(content, self.last_hash, entry_hash(self.last_hash, content))
        self.last_sequence = sequence
        self.last_hash = chained.entry_hash
        return chained


@dataclass(frozen=True)
class VoidTarget:
    """What a void needs to know of its target."""

    village_code: str
    advisor_id: str
    recorded_by: str | None
    voided: bool = False


def resolve_void(target: VoidTarget | None, void: RecordVoided) -> VoidStatus:
    """A void applies to a record of the same village's file that is not voided yet, when its sender may
    void it (`void_permitted`); otherwise it is kept and flagged. Same-village records share a partition,
    so this is the same on every replay."""
    if target is None or target.village_code != void.village_code:
        return VoidStatus.unknown_target
    if not void_permitted(void, target.advisor_id, target.recorded_by):
        return VoidStatus.not_permitted
    if target.voided:
        return VoidStatus.already_voided
    return VoidStatus.applied


def service_day(moment: datetime) -> date:
    """The day a record counts for, in Asia/Shanghai."""
    return moment.astimezone(DEFAULT_ZONE).date()
