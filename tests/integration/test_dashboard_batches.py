"""One code path whatever the batching (issue 17): a live consumer applies small batches, a rebuild large
ones, and any split of the same events into batches leaves byte-identical dashboard tables."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts.envelope import Event, content_fingerprint
from contracts.events import RegionLevel, RegionRegistered
from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES
from plumbing.projection import Batch, ConsumedEvent, prepare_schema
from services.dashboard import projection as dashboard
from services.dashboard.projection import dashboard_projection
from tests.support.places import fresh_county
from tests.support.samples import sample_event

NOW = datetime(2026, 11, 23, tzinfo=UTC)
RUNTIME_TABLES = ("projection_offsets", "processed_events", "schema_migrations")
PARTITIONS = 3


def stream(seed: int) -> list[ConsumedEvent]:
    """Registry facts, then service records with voids of earlier ones and month closes with revisions,
    in the order of each partition (villages keep to one partition, as their key does)."""
    rng = random.Random(seed)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    county = fresh_county()
    townships = [f"{county}00{n}" for n in (1, 2)]
    villages = [f"{township}2{n:02d}" for township in townships for n in range(1, 4)]
    registry = [
        RegionRegistered(code=county, name="批次县", level=RegionLevel.county, parent_code=county[:4]),
        *[
            RegionRegistered(code=t, name=f"批次镇{t[-1]}", level=RegionLevel.township, parent_code=county)
            for t in townships
        ],
        *[
            RegionRegistered(code=v, name=f"批次村{v[-2:]}", level=RegionLevel.village, parent_code=v[:9])
            for v in villages
        ],
    ]
    events: list[tuple[str, int, Event]] = [
        (REGISTRY, 0, Event(id=new_id(), source="/test", time=NOW, data=region, recorded_at=NOW))
        for region in registry
    ]
    advisors = ["lawyer-b01", "lawyer-b02", "lawyer-b03"]
    sent: dict[str, list[Event]] = {village: [] for village in villages}
    closes: dict[tuple[str, str, str], int] = {}
    for _ in range(160):
        village = rng.choice(villages)
        advisor = rng.choice(advisors)
        partition = villages.index(village) % PARTITIONS
        start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(0, 24 * 61))
        roll = rng.random()
        if roll < 0.12 and sent[village]:
            target = rng.choice(sent[village])
            event = sample_event(
                "record.voided",
                event_id=new_id(),
                advisor_id=target.data.advisor_id,  # type: ignore[attr-defined]
                village_code=village,
                recorded_by=target.data.advisor_id,  # type: ignore[attr-defined]
                target_event_id=str(target.id),
                occurred_at=start,
            )
        elif roll < 0.22:
            month = rng.choice(["2026-03", "2026-04"])
            key = (advisor, village, month)
            closes[key] = closes.get(key, 0) + 1
            event = sample_event(
                "compliance.month_closed",
                event_id=new_id(),
                advisor_id=advisor,
                village_code=village,
                month=month,
                met=rng.random() < 0.5,
                revision=closes[key],
            )
            events.append((ASSESSMENT, partition, event))
            continue
        elif roll < 0.45:
            # a visit that may cross midnight into the next month (its minutes count where spent)
            begins = start.replace(minute=0) if rng.random() < 0.7 else datetime(2026, 3, 31, 14, tzinfo=UTC)
            event = sample_event(
                "visit.logged",
                event_id=new_id(),
                advisor_id=advisor,
                village_code=village,
                recorded_by=advisor,
                occurred_at=begins,
                started_at=begins,
                ended_at=begins + timedelta(hours=rng.randint(1, 5)),
            )
        else:
            kind = rng.choice(
                ["consultation.recorded", "mediation.recorded", "lecture.held", "feedback.submitted"]
            )
            event = sample_event(
                kind, event_id=new_id(), advisor_id=advisor, village_code=village, occurred_at=start
            )
        if event.type != "record.voided":
            sent[village].append(event)
        events.append((VILLAGE_SERVICES, partition, event))
    offsets: dict[tuple[str, int], int] = {}
    consumed = []
    for topic, partition, event in events:
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        consumed.append(ConsumedEvent(event, topic, partition, offset, content_fingerprint(event)))
    return consumed


def cut(events: list[ConsumedEvent], rng: random.Random, pieces: int) -> list[list[ConsumedEvent]]:
    """The events in order, cut at random places into at most `pieces` batches."""
    places = sorted(rng.sample(range(1, len(events)), pieces - 1))
    return [events[start:end] for start, end in zip([0, *places], [*places, len(events)], strict=True)]


async def tables_after(pool: asyncpg.Pool, schema: str, batches: list[list[ConsumedEvent]]) -> dict[str, str]:
    """Apply the batches, each in a transaction as the runtime does; every projection table as text."""
    projection = dashboard_projection()
    await prepare_schema(pool, projection, schema)
    async with pool.acquire() as conn:
        for batch in batches:
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                await projection.apply(conn, Batch(events=batch, conflicts=[], now=NOW))
        return await _tables(conn, schema)


class Refused(Exception):
    """Stands for an error PostgreSQL raises in the middle of an event's apply step."""


async def tables_isolated(
    pool: asyncpg.Pool, schema: str, events: list[ConsumedEvent], refused: set[int]
) -> dict[str, str]:
    """Apply the events as the runtime does when it isolates a poison batch: all in one transaction, each
    in its own savepoint, the `refused` ones rolled back after their apply step has run."""
    projection = dashboard_projection()
    await prepare_schema(pool, projection, schema)
    async with pool.acquire() as conn:
        await conn.execute("DISCARD TEMP")  # the staging tables are made again, inside a savepoint
        async with conn.transaction():
            await conn.execute("SELECT set_config('search_path', $1, true)", schema)
            for index, item in enumerate(events):
                try:
                    async with conn.transaction():
                        await projection.apply(conn, Batch(events=[item], conflicts=[], now=NOW))
                        if index in refused:
                            raise Refused
                except Refused:
                    pass
        return await _tables(conn, schema)


async def _tables(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    """Every projection table of the schema as text; the schema is dropped."""
    names = [
        row["table_name"]
        for row in await conn.fetch(
            """SELECT table_name FROM information_schema.tables
               WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name""",
            schema,
        )
        if row["table_name"] not in RUNTIME_TABLES
    ]
    found = {}
    for name in names:
        table = f'"{schema}"."{name}"'  # names read from the catalogue
        found[name] = await conn.fetchval(
            f"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
        )
    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return found


# A batch's deltas go to PostgreSQL as arrays when they are few, through a staging table when many: the
# tests run both (every batch staged with 1).
STAGINGS = pytest.mark.parametrize(
    "stage_from_rows", [dashboard.STAGE_FROM_ROWS, 1], ids=["arrays", "staged"]
)


@STAGINGS
async def test_any_split_of_the_same_events_into_batches_leaves_byte_identical_tables(
    admin_pool: asyncpg.Pool, tag: str, stage_from_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "STAGE_FROM_ROWS", stage_from_rows)
    events = stream(seed=17)
    whole = await tables_after(admin_pool, f"batches_{tag}_whole", [events])
    assert "figures" in whole
    assert whole["figures"].count("\n") > 100, "the stream adds up to figures at every level"
    assert whole["counted_records"]
    rng = random.Random(4)
    splits = {
        "one by one": [[item] for item in events],
        **{f"cut {n}": cut(events, rng, pieces) for n, pieces in enumerate((2, 7, 40))},
    }
    for name, batches in splits.items():
        found = await tables_after(admin_pool, f"batches_{tag}_{name.replace(' ', '_')}", batches)
        assert found.keys() == whole.keys(), name
        for table in whole:
            assert found[table] == whole[table], f"{table} differs when the events come {name}"


@STAGINGS
async def test_events_applied_one_by_one_in_savepoints_with_some_refused_leave_what_the_rest_leave(
    admin_pool: asyncpg.Pool, tag: str, stage_from_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime's isolation of a poison batch (each event in a savepoint of one transaction): what a
    refused event staged for the batch's set-based write is rolled back with it, and the others' tables are
    byte-identical to the batch without it."""
    monkeypatch.setattr(dashboard, "STAGE_FROM_ROWS", stage_from_rows)
    events = stream(seed=18)
    records = [index for index, item in enumerate(events) if item.topic == VILLAGE_SERVICES]
    # the first record (its savepoint made the staging tables), one in the middle, and the last
    refused = {records[0], records[len(records) // 2], records[-1]}
    kept = [item for index, item in enumerate(events) if index not in refused]
    expected = await tables_after(admin_pool, f"batches_{tag}_kept", [kept])
    found = await tables_isolated(admin_pool, f"batches_{tag}_isolated", events, refused)
    assert expected["figures"].count("\n") > 100
    assert found == expected
