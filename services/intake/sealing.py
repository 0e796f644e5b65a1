"""Intake's side of the key store: personal fields are sealed before a record is published, and an
erasure destroys the record's key before the erasure is published."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
from pydantic import BaseModel, ConfigDict

from contracts.envelope import Event
from contracts.events import (
    AdvisorRegistered,
    ErasureReason,
    PersonalErased,
    ServiceRecord,
    TeamRegistered,
    VillageCode,
)
from plumbing.logs import get_logger
from plumbing.personal import (
    KEYSTORE_SCHEMA,
    Erasure,
    KeyRequest,
    Sealer,
    data_keys,
    erase_key,
    key_village,
    plain_personal,
    prepare_keystore,
    sealed_payload,
)
from plumbing.postgres import apply_migrations, create_pool, database_reachable, read_migrations

log = get_logger(__name__)

SCHEMA = "intake"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Erasure events get an id derived from their target: publishing one again is a duplicate, not a new fact.
ERASURE_NAMESPACE = uuid.UUID("5b0f8f3c-54a1-4e5e-9a53-2f3b7b0c9e11")


class ErasureRequest(BaseModel):
    """What a county bureau (or above) names to erase a record's personal data."""

    model_config = ConfigDict(extra="forbid")

    target_event_id: uuid.UUID
    village_code: VillageCode
    reason: ErasureReason


class KeystoreUnavailable(Exception):
    """PostgreSQL (the key store) did not answer: nothing with personal data may be published."""


def erasure_event_id(target_event_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(ERASURE_NAMESPACE, f"personal.erased:{target_event_id}")


def key_request(event: Event) -> KeyRequest:
    data = event.data
    if isinstance(data, AdvisorRegistered):
        return KeyRequest(event.id, f"advisor:{data.advisor_id}", None)
    village = data.village_code if isinstance(data, ServiceRecord) else None
    return KeyRequest(event.id, f"record:{event.id}", village)


class Keystore:
    """A small pool on the key store, opened when first needed (intake starts without PostgreSQL and
    answers 503 for records with personal data until it is back)."""

    def __init__(self, database_url: str, sealer: Sealer, timeout_seconds: float) -> None:
        self._database_url = database_url
        self._sealer = sealer
        self._timeout = timeout_seconds
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _ready_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    async with asyncio.timeout(self._timeout):
                        pool = await create_pool(self._database_url, KEYSTORE_SCHEMA, max_size=4)
                        async with pool.acquire() as conn:
                            await prepare_keystore(conn)
                            await apply_migrations(conn, SCHEMA, read_migrations(SCHEMA, MIGRATIONS))
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    raise KeystoreUnavailable(type(error).__name__) from error
                self._pool = pool
        return self._pool

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def reachable(self) -> bool:
        try:
            pool = await self._ready_pool()
        except KeystoreUnavailable:
            return False
        return await database_reachable(pool)

    async def seal(self, events: Sequence[Event]) -> list[Event]:
        """The events as they travel: each one's personal fields sealed with its own key."""
        personal = [plain_personal(event.data) for event in events]
        needing = [key_request(event) for event, values in zip(events, personal, strict=True) if values]
        if not needing:
            return list(events)
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                keys = await data_keys(conn, self._sealer, needing)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error
        sealed = []
        for event, values in zip(events, personal, strict=True):
            if not values:
                sealed.append(event)
                continue
            seal = self._sealer.seal(event.id, keys[event.id], values)
            sealed.append(dataclasses.replace(event, data=sealed_payload(event.data, seal)))
        return sealed

    async def key_village(self, key_id: uuid.UUID) -> str | None:
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                return await key_village(conn, key_id)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error

    async def advisor_owner(self, advisor_id: str) -> str | None:
        """The region that owns an advisor's registration, as far as intake has accepted them."""
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                owner = await conn.fetchval(
                    "SELECT region_code FROM intake.advisor_owners WHERE advisor_id = $1", advisor_id
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error
        return str(owner) if owner is not None else None

    async def team_owner(self, team_id: str) -> str | None:
        """The region that owns a team's registration, as far as intake has accepted them."""
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                owner = await conn.fetchval(
                    "SELECT region_code FROM intake.team_owners WHERE team_id = $1", team_id
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error
        return str(owner) if owner is not None else None

    async def erased_among(self, key_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these records had their personal data erased (an import may not bring it back)."""
        if not key_ids:
            return set()
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT key_id FROM keystore.erasures WHERE key_id = ANY($1::uuid[])", list(key_ids)
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error
        return {row["key_id"] for row in rows}

    async def note_owners(self, registrations: Sequence[Event]) -> None:
        """Remember who owns the advisors whose registrations Kafka has just acknowledged."""
        rows = [
            (event.data.advisor_id, event.data.region_code, event.id)
            for event in registrations
            if isinstance(event.data, AdvisorRegistered) and event.data.region_code is not None
        ]
        teams = [
            (event.data.team_id, event.data.region_code, event.id)
            for event in registrations
            if isinstance(event.data, TeamRegistered) and event.data.region_code is not None
        ]
        if not rows and not teams:
            return
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                if rows:
                    await conn.executemany(
                        """INSERT INTO intake.advisor_owners (advisor_id, region_code, event_id)
                           VALUES ($1, $2, $3)
                           ON CONFLICT (advisor_id) DO UPDATE SET region_code = $2, event_id = $3""",
                        rows,
                    )
                if teams:
                    await conn.executemany(
                        """INSERT INTO intake.team_owners (team_id, region_code, event_id)
                           VALUES ($1, $2, $3)
                           ON CONFLICT (team_id) DO UPDATE SET region_code = $2, event_id = $3""",
                        teams,
                    )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The registration is stored; the consumers enforce ownership on the topic regardless.
            log.warning("advisor_owner_not_noted", error=type(error).__name__)

    async def rating_taken(self, event_id: uuid.UUID) -> bool:
        """Whether Kafka has stored this rating (same device, advisor and day) through any replica."""
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                found = await conn.fetchval(
                    "SELECT 1 FROM intake.public_ratings WHERE event_id = $1", event_id
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error
        return found is not None

    async def note_rating(self, event_id: uuid.UUID, day: date) -> None:
        """Remember a rating Kafka has stored; forget the ones of days before yesterday."""
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """INSERT INTO intake.public_ratings (event_id, day) VALUES ($1, $2)
                       ON CONFLICT DO NOTHING""",
                    event_id,
                    day,
                )
                await conn.execute(
                    "DELETE FROM intake.public_ratings WHERE day < $1", day - timedelta(days=1)
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The rating is stored; a repeat of it is the same event, which every consumer counts once.
            log.warning("rating_not_noted", error=type(error).__name__)

    async def erase(
        self, target: uuid.UUID, village_code: str, erased_by: str, reason: ErasureReason, now: datetime
    ) -> Erasure:
        try:
            pool = await self._ready_pool()
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                return await erase_key(conn, target, village_code, erased_by, str(reason), now)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise KeystoreUnavailable(type(error).__name__) from error


def erasure_event(erasure: Erasure, village_code: str, source: str) -> Event:
    payload = PersonalErased(
        target_event_id=erasure.key_id,
        village_code=erasure.village_code or village_code,
        erased_at=erasure.erased_at,
        erased_by=erasure.erased_by,
        reason=ErasureReason(erasure.reason),
    )
    return Event(
        id=erasure_event_id(erasure.key_id),
        source=source,
        time=erasure.erased_at,
        data=payload,
        recorded_at=erasure.erased_at,
    )
