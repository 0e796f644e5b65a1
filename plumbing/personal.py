"""Personal data in the event store: sealed with a data key per record, erased by destroying the key.

Envelope encryption (PIPL Art. 47, crypto-shredding): intake seals a record's personal fields with a fresh
AES-256-GCM data key and keeps the key, wrapped with the master key, in the key store (PostgreSQL schema
`keystore`); only the sealed value travels on Kafka. Erasing deletes the key: every copy — the topic, a
rebuild, a retired schema, a backup of any of them — is then unreadable, and nothing has to be found.

The seal is deterministic for one key and one value (the nonce is derived from both), so a client's
retry with the same id yields byte-identical payloads and consumers keep dropping duplicates by content.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.events import SEALED_PERSONAL_FIELD, EventPayload, SealedPersonal, personal_field_names
from plumbing.postgres import Connection, prepare_shared_schema, read_migrations

KEYSTORE_SCHEMA = "keystore"
KEYSTORE_MIGRATIONS = Path(__file__).resolve().parent / "keystore_migrations"
DEVELOPMENT_MASTER_KEY = base64.urlsafe_b64encode(b"villagecounsel-dev-only-master!!").decode()
KEY_BYTES = 32
NONCE_BYTES = 12


class PersonalDataErased(Exception):
    """The record's personal data was erased: its key is gone, and a retry may not bring it back."""

    def __init__(self, key_id: UUID) -> None:
        super().__init__(f"the personal data of {key_id} was erased")
        self.key_id = key_id


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def master_key_from_text(text: str) -> bytes:
    """The master key (key-encryption key) from its setting: 32 bytes in base64."""
    try:
        raw = _unb64(text.strip())
    except ValueError:
        raise ValueError("the personal-data master key must be base64 (32 bytes)") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"the personal-data master key must be {KEY_BYTES} bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True)
class KeyRequest:
    """A data key a record needs: its id (the record's), whose data it guards, and the record's village."""

    key_id: UUID
    subject: str
    village_code: str | None


class Sealer:
    """Wraps data keys with the master key, seals personal fields and opens them again."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError(f"the master key must be {KEY_BYTES} bytes")
        self._master = AESGCM(master_key)

    def new_wrapped_key(self, key_id: UUID) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._master.encrypt(nonce, AESGCM.generate_key(bit_length=256), key_id.bytes)

    def unwrap(self, key_id: UUID, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.bytes)

    def seal(self, key_id: UUID, wrapped: bytes, personal: dict[str, Any]) -> SealedPersonal:
        data_key = self.unwrap(key_id, wrapped)
        plaintext = orjson.dumps(personal, option=orjson.OPT_SORT_KEYS)
        nonce = hmac.new(data_key, plaintext, hashlib.sha256).digest()[:NONCE_BYTES]
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, key_id.bytes)
        return SealedPersonal(key_id=key_id, nonce=_b64(nonce), ciphertext=_b64(ciphertext))

    def open(self, sealed: SealedPersonal, wrapped: bytes | None) -> dict[str, Any] | None:
        """The personal fields, or None once the key was erased."""
        if wrapped is None:
            return None
        data_key = self.unwrap(sealed.key_id, wrapped)
        try:
            opened = AESGCM(data_key).decrypt(
                _unb64(sealed.nonce), _unb64(sealed.ciphertext), sealed.key_id.bytes
            )
        except InvalidTag:
            raise ValueError(f"the sealed personal data of {sealed.key_id} does not match its key") from None
        values: dict[str, Any] = orjson.loads(opened)
        return values


def plain_personal(payload: EventPayload) -> dict[str, Any]:
    """The payload's personal fields that hold a value, as JSON-ready values."""
    names = personal_field_names(type(payload))
    if not names:
        return {}
    values = payload.model_dump(mode="json", include=set(names), exclude_none=True)
    return {name: value for name, value in values.items() if value is not None}


def sealed_payload(payload: EventPayload, sealed: SealedPersonal) -> EventPayload:
    """The payload as it travels: the personal fields replaced by their seal."""
    if SEALED_PERSONAL_FIELD not in type(payload).model_fields:
        raise TypeError(
            f"{payload.event_type} has personal fields but no {SEALED_PERSONAL_FIELD} to seal them in"
        )
    blank = dict.fromkeys(personal_field_names(type(payload)))
    return payload.model_copy(update={**blank, SEALED_PERSONAL_FIELD: sealed})


async def prepare_keystore(conn: Connection) -> None:
    await prepare_shared_schema(conn, KEYSTORE_SCHEMA, read_migrations(KEYSTORE_SCHEMA, KEYSTORE_MIGRATIONS))


async def data_keys(conn: Connection, sealer: Sealer, requests: Iterable[KeyRequest]) -> dict[UUID, bytes]:
    """The wrapped key of every request, created when missing (a retry gets the key it had). Raises
    PersonalDataErased when a record's personal data was erased before: it may not come back."""
    wanted = {request.key_id: request for request in requests}
    if not wanted:
        return {}
    ids = list(wanted)
    erased = await conn.fetchval(
        "SELECT key_id FROM keystore.erasures WHERE key_id = ANY($1::uuid[]) LIMIT 1", ids
    )
    if erased is not None:
        raise PersonalDataErased(erased)
    await conn.execute(
        """INSERT INTO keystore.data_keys (key_id, subject, village_code, wrapped_key)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])
           ON CONFLICT (key_id) DO NOTHING""",
        ids,
        [wanted[key_id].subject for key_id in ids],
        [wanted[key_id].village_code for key_id in ids],
        [sealer.new_wrapped_key(key_id) for key_id in ids],
    )
    rows = await conn.fetch(
        "SELECT key_id, wrapped_key FROM keystore.data_keys WHERE key_id = ANY($1::uuid[])", ids
    )
    found = {row["key_id"]: bytes(row["wrapped_key"]) for row in rows}
    missing = [key_id for key_id in ids if key_id not in found]
    if missing:  # erased between our check and our insert
        raise PersonalDataErased(missing[0])
    return found


async def wrapped_keys(conn: Connection, key_ids: Iterable[UUID]) -> dict[UUID, bytes]:
    """The keys that still exist, for opening sealed values (an erased one is simply absent)."""
    ids = sorted(set(key_ids))
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT key_id, wrapped_key FROM keystore.data_keys WHERE key_id = ANY($1::uuid[])", ids
    )
    return {row["key_id"]: bytes(row["wrapped_key"]) for row in rows}


@dataclass(frozen=True)
class Erasure:
    key_id: UUID
    village_code: str | None
    erased_at: datetime
    erased_by: str
    reason: str
    key_existed: bool


async def erase_key(
    conn: Connection, key_id: UUID, village_code: str, erased_by: str, reason: str, now: datetime
) -> Erasure:
    """Destroy a record's data key and remember the erasure (without any personal value). Erasing twice
    returns the first erasure, so its event is published again with the same content."""
    async with conn.transaction():
        deleted = await conn.fetchrow(
            "DELETE FROM keystore.data_keys WHERE key_id = $1 RETURNING subject, village_code", key_id
        )
        await conn.execute(
            """INSERT INTO keystore.erasures (key_id, subject, village_code, erased_at, erased_by, reason)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_id) DO NOTHING""",
            key_id,
            deleted["subject"] if deleted else f"record:{key_id}",
            deleted["village_code"] if deleted else village_code,
            now,
            erased_by,
            reason,
        )
        row = await conn.fetchrow(
            "SELECT village_code, erased_at, erased_by, reason FROM keystore.erasures WHERE key_id = $1",
            key_id,
        )
    if row is None:
        raise RuntimeError(f"the erasure of {key_id} was not recorded")
    return Erasure(
        key_id=key_id,
        village_code=row["village_code"],
        erased_at=row["erased_at"],
        erased_by=row["erased_by"],
        reason=row["reason"],
        key_existed=deleted is not None,
    )


async def key_village(conn: Connection, key_id: UUID) -> str | None:
    """The village a record's key was made for (None when there is no key: erased, or never sealed)."""
    value = await conn.fetchval("SELECT village_code FROM keystore.data_keys WHERE key_id = $1", key_id)
    return str(value) if value is not None else None
