"""One code path whatever the batching (issue 17): a live consumer applies small batches, a rebuild large
ones, and any split of the same events into batches leaves byte-identical dashboard tables."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts.envelope import Event, content_fingerprint
from contracts.events import RegionLevel, RegionRegistered, RegionRetired, RetireReason
from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES
from plumbing.projection import Batch, ConsumedEvent, Projection, prepare_schema
from services.dashboard import projection as dashboard
from services.dashboard.projection import dashboard_projection
from services.dashboard.rules import activity_totals
from tests.support.migrations import dashboard_with
from tests.support.places import fresh_county
from tests.support.samples import sample_event

NOW = datetime(2026, 11, 23, tzinfo=UTC)
RUNTIME_TABLES = ("projection_offsets", "processed_events", "schema_migrations")
PARTITIONS = 3


def before_015_with_coverage(name: str) -> bool:
    """The migrations before 015, and 016's coverage steps, which the projection's code writes today."""
    return name < "015" or name.startswith("016")


def ids(rng: random.Random) -> Callable[[], uuid.UUID]:
    """Event ids drawn from `rng`: the same stream every run."""
    return lambda: uuid.UUID(int=rng.getrandbits(128), version=4)


def six_villages(
    new_id: Callable[[], uuid.UUID], name: str
) -> tuple[list[str], list[tuple[str, int, Event]]]:
    """A fresh county of two townships with three villages each, and its registrations as the registry
    sends them (topic, partition, event)."""
    county = fresh_county()
    townships = [f"{county}00{n}" for n in (1, 2)]
    villages = [f"{township}2{n:02d}" for township in townships for n in range(1, 4)]
    registry = [
        RegionRegistered(code=county, name=f"{name}县", level=RegionLevel.county, parent_code=county[:4]),
        *[
            RegionRegistered(code=t, name=f"{name}镇{t[-1]}", level=RegionLevel.township, parent_code=county)
            for t in townships
        ],
        *[
            RegionRegistered(code=v, name=f"{name}村{v[-2:]}", level=RegionLevel.village, parent_code=v[:9])
            for v in villages
        ],
    ]
    return villages, [
        (REGISTRY, 0, Event(id=new_id(), source="/test", time=NOW, data=region, recorded_at=NOW))
        for region in registry
    ]


def consumed(events: list[tuple[str, int, Event]]) -> list[ConsumedEvent]:
    """The events as a consumer reads them, with each partition's offsets."""
    offsets: dict[tuple[str, int], int] = {}
    found = []
    for topic, partition, event in events:
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        found.append(ConsumedEvent(event, topic, partition, offset, content_fingerprint(event)))
    return found


def visit(event_id: uuid.UUID, advisor: str, village: str, begins: datetime, hours: int) -> Event:
    """An advisor's visit to a village (its minutes count in the months they were spent in)."""
    return sample_event(
        "visit.logged",
        event_id=event_id,
        advisor_id=advisor,
        village_code=village,
        recorded_by=advisor,
        occurred_at=begins,
        started_at=begins,
        ended_at=begins + timedelta(hours=hours),
    )


def stream(seed: int) -> list[ConsumedEvent]:
    """Registry facts, then service records with voids of earlier ones and month closes with revisions,
    in the order of each partition (villages keep to one partition, as their key does)."""
    rng = random.Random(seed)
    new_id = ids(rng)
    villages, events = six_villages(new_id, "批次")
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
            event = visit(new_id(), advisor, village, begins, rng.randint(1, 5))
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
    return consumed(events)


# (after how many records, the merged village, its successor), by the villages' places in `merging_stream`:
# the second into the third, the third onward into the fourth, then the first into the second (a village
# merged into one already merged: its records count at the end of the chain), the sixth into the fifth.
MERGES = ((40, 1, 2), (80, 2, 3), (120, 0, 1), (150, 5, 4))
RECORDS = 180


def merging_stream(seed: int, merges: Sequence[tuple[int, int, int]] = MERGES) -> list[ConsumedEvent]:
    """Registrations, then service records of six villages with merges among them (a merge after the last
    record comes at the end), voids of earlier records, and voids sent before their records (which then
    count: a void takes back only what came before it). A merged village's advisors go on recording under
    its old code now and then; villages keep to one partition, as their key does."""
    rng = random.Random(seed)
    new_id = ids(rng)
    villages, events = six_villages(new_id, "并村")

    def merge(retired: int, successor: int) -> None:
        retirement = RegionRetired(
            code=villages[retired],
            effective_date=date(2026, 5, 1),
            reason=RetireReason.merged,
            successor_code=villages[successor],
        )
        events.append(
            (REGISTRY, 0, Event(id=new_id(), source="/test", time=NOW, data=retirement, recorded_at=NOW))
        )

    def void(target: Event, start: datetime) -> Event:
        return sample_event(
            "record.voided",
            event_id=new_id(),
            advisor_id=target.data.advisor_id,  # type: ignore[attr-defined]
            village_code=target.data.village_code,  # type: ignore[attr-defined]
            recorded_by=target.data.advisor_id,  # type: ignore[attr-defined]
            target_event_id=str(target.id),
            occurred_at=start,
        )

    def send(event: Event) -> None:
        village = event.data.village_code  # type: ignore[attr-defined]
        events.append((VILLAGE_SERVICES, villages.index(village) % PARTITIONS, event))

    advisors = ["lawyer-m01", "lawyer-m02", "lawyer-m03"]
    sent: dict[str, list[Event]] = {village: [] for village in villages}
    held: list[tuple[int, Event]] = []  # records whose void was sent first, with the step they come at
    for step in range(RECORDS):
        for after, retired, successor in merges:
            if after == step:
                merge(retired, successor)
        for due, record in [entry for entry in held if entry[0] == step]:
            held.remove((due, record))
            sent[record.data.village_code].append(record)  # type: ignore[attr-defined]
            send(record)
        village = rng.choice(villages)
        advisor = rng.choice(advisors)
        start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(0, 24 * 61))
        roll = rng.random()
        if roll < 0.15 and sent[village]:
            send(void(rng.choice(sent[village]), start))
            continue
        if roll < 0.35:
            record = visit(new_id(), advisor, village, start.replace(minute=0), rng.randint(1, 5))
        else:
            kind = rng.choice(
                ["consultation.recorded", "mediation.recorded", "lecture.held", "feedback.submitted"]
            )
            record = sample_event(
                kind, event_id=new_id(), advisor_id=advisor, village_code=village, occurred_at=start
            )
        if roll > 0.9:
            send(void(record, start))
            held.append((min(step + rng.randint(1, 12), RECORDS), record))
            continue
        sent[village].append(record)
        send(record)
    for _, record in held:
        send(record)
    for after, retired, successor in merges:
        if after >= RECORDS:
            merge(retired, successor)
    return consumed(events)


def column(table: str, index: int) -> list[str]:
    """One column of a table dumped as rows' text, counted from the end where negative (the columns on
    that side of any text with commas in it)."""
    return [line.strip("()").split(",")[index] for line in table.splitlines()]


def cut(events: list[ConsumedEvent], rng: random.Random, pieces: int) -> list[list[ConsumedEvent]]:
    """The events in order, cut at random places into at most `pieces` batches."""
    places = sorted(rng.sample(range(1, len(events)), pieces - 1))
    return [events[start:end] for start, end in zip([0, *places], [*places, len(events)], strict=True)]


async def apply_batches(
    pool: asyncpg.Pool,
    schema: str,
    batches: list[list[ConsumedEvent]],
    projection: Projection,
    now: datetime = NOW,
) -> None:
    """A fresh schema of the projection, the batches applied to it, each in a transaction as the runtime
    does."""
    await prepare_schema(pool, projection, schema)
    async with pool.acquire() as conn:
        for batch in batches:
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                await projection.apply(conn, Batch(events=batch, conflicts=[], now=now))


async def tables_after(
    pool: asyncpg.Pool, schema: str, batches: list[list[ConsumedEvent]], projection: Projection | None = None
) -> dict[str, str]:
    """Apply the batches, each in a transaction as the runtime does; every projection table as text (the
    dashboard's unless another projection is given)."""
    await apply_batches(pool, schema, batches, projection or dashboard_projection())
    async with pool.acquire() as conn:
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


def assert_activity_as_modelled(table: str) -> None:
    """`advisor_activity_total` (as `_tables` dumps it) is what `activity_totals` makes of its village rows:
    above the village, the regions one level down where the advisor is active, and no row at 0."""
    rows = {}
    for line in table.splitlines():
        region_code, period, advisor_id, records = line.strip("()").split(",")
        rows[(region_code, period, advisor_id)] = int(records)
    villages = [(key[0], [key[1]], key[2], value) for key, value in rows.items() if len(key[0]) == 12]
    assert villages, "some village rows"
    assert len(rows) > len(villages), "rows above the villages"
    assert rows == activity_totals(villages)


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
    assert_activity_as_modelled(whole["advisor_activity_total"])
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


@STAGINGS
async def test_merges_among_the_records_and_their_voids_leave_byte_identical_tables_for_any_split(
    admin_pool: asyncpg.Pool, tag: str, stage_from_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merged village's records, voided ones too, go to the end of its chain of merges (a void coming
    later finds its record there, however the events were cut), and a void sent before its record takes
    nothing back, neither from the figures nor in the village's log."""
    monkeypatch.setattr(dashboard, "STAGE_FROM_ROWS", stage_from_rows)
    events = merging_stream(seed=21)
    whole = await tables_after(admin_pool, f"merges_{tag}_whole", [events])
    villages = sorted(
        item.event.data.code
        for item in events
        if isinstance(item.event.data, RegionRegistered) and item.event.data.level is RegionLevel.village
    )
    fourth, fifth = villages[3:5]
    assert set(column(whole["counted_records"], 1)) == {fourth, fifth}, "every record counts where merges end"
    assert set(column(whole["counted_records"], -2)) == set(villages), "recorded in every village"
    assert "t" in column(whole["counted_records"], -5), "some records are voided"
    assert "t" in column(whole["village_log"], -1)
    assert whole["figures"].count("\n") > 100
    assert_activity_as_modelled(whole["advisor_activity_total"])
    rng = random.Random(5)
    merges = [index for index, item in enumerate(events) if isinstance(item.event.data, RegionRetired)]
    splits = {
        "one by one": [[item] for item in events],
        "apart at each merge": [
            events[start:end] for start, end in zip([0, *merges], [*merges, len(events)], strict=True)
        ],
        **{f"cut {n}": cut(events, rng, pieces) for n, pieces in enumerate((2, 5, 30))},
    }
    for name, batches in splits.items():
        found = await tables_after(admin_pool, f"merges_{tag}_{name.replace(' ', '_')}", batches)
        assert found.keys() == whole.keys(), name
        for table in whole:
            assert found[table] == whole[table], f"{table} differs when the events come {name}"


async def test_the_migration_puts_voided_records_of_merged_villages_where_a_rebuild_does(
    admin_pool: asyncpg.Pool, tag: str, tmp_path: Path
) -> None:
    """Before migration 012 a merge moved only a village's counted records and left its voided ones behind;
    the migration moves those to the end of the village's chain of merges, and the tables are then what a
    rebuild leaves."""
    merged_at_the_end = ((RECORDS, 1, 2), (RECORDS, 2, 3), (RECORDS, 5, 4))
    events = merging_stream(seed=22, merges=merged_at_the_end)
    merges = [item for item in events if isinstance(item.event.data, RegionRetired)]
    before_merges = [item for item in events if item not in merges]
    projection = dashboard_projection()
    schema = f"migrated_{tag}"
    before_012 = dashboard_with(
        tmp_path / "migrations",
        # and 014 and 016, the shape of `figures` and the coverage steps the projection's code writes today
        # (the migration is about records)
        lambda name: name < "012" or name.startswith(("014", "016")),
    )
    await prepare_schema(admin_pool, before_012, schema)
    async with admin_pool.acquire() as conn:
        for batch in (before_merges, merges):
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                await projection.apply(conn, Batch(events=batch, conflicts=[], now=NOW))
        # What the projection before 012 left: the voided records where they were counted, in the village
        # they were recorded in (no merge had come before them).
        await conn.execute(
            f'UPDATE "{schema}".counted_records SET village_code = recorded_village WHERE voided'
        )
        left_behind = await conn.fetchval(
            f"""SELECT count(*) FROM "{schema}".counted_records c JOIN "{schema}".regions r
                ON r.code = c.village_code WHERE r.successor_code IS NOT NULL AND c.voided"""
        )
        assert left_behind > 0
    await prepare_schema(admin_pool, projection, schema)
    async with admin_pool.acquire() as conn:
        migrated = await _tables(conn, schema)
    rebuilt = await tables_after(admin_pool, f"rebuilt_{tag}", [events])
    assert migrated.keys() == rebuilt.keys()
    for table in rebuilt:
        assert migrated[table] == rebuilt[table], f"{table} differs from a rebuild's after the migration"


async def sum_records_above_the_villages(conn: asyncpg.Connection, table: str) -> None:
    """`advisor_activity_total` above the villages as the projection before migration 015 kept it: the sums
    of the villages' records."""
    await conn.execute(f"DELETE FROM {table} WHERE length(region_code) <> 12")
    for digits in (9, 6, 4, 2, 0):
        region = f"left(region_code, {digits})" if digits else "'0'"
        await conn.execute(
            f"""INSERT INTO {table} SELECT {region}, period, advisor_id, sum(records) FROM {table}
                WHERE length(region_code) = 12 GROUP BY 1, 2, 3 HAVING sum(records) <> 0"""
        )


async def test_the_migration_counts_active_regions_above_the_village_where_it_summed_records(
    admin_pool: asyncpg.Pool, tag: str, tmp_path: Path
) -> None:
    """Before migration 015 a region above the village summed the advisor's records in every village below
    it; the migration counts the active regions one level down instead, and the tables are then what a
    rebuild leaves."""
    events = stream(seed=23)
    projection = dashboard_projection()
    schema = f"presence_{tag}"
    before_015 = dashboard_with(tmp_path / "migrations", before_015_with_coverage)
    await prepare_schema(admin_pool, before_015, schema)
    async with admin_pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT set_config('search_path', $1, true)", schema)
            await projection.apply(conn, Batch(events=events, conflicts=[], now=NOW))
        # What the projection before 015 left above the villages: the sums of their records.
        table = f'"{schema}".advisor_activity_total'
        await sum_records_above_the_villages(conn, table)
        summed = await conn.fetchval(
            f"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
        )
    await prepare_schema(admin_pool, projection, schema)
    async with admin_pool.acquire() as conn:
        migrated = await _tables(conn, schema)
    rebuilt = await tables_after(admin_pool, f"rebuilt_{tag}", [events])
    assert summed != rebuilt["advisor_activity_total"], "the sums above the villages differ from the counts"
    assert migrated.keys() == rebuilt.keys()
    for table_name in rebuilt:
        assert migrated[table_name] == rebuilt[table_name], f"{table_name} differs from a rebuild's after 015"


async def active_advisors_above_villages(conn: asyncpg.Connection, schema: str) -> tuple[Any, Any]:
    """`active_advisors` of every region above the village as `figures` sums it, and as the advisors whose
    row in `advisor_activity_total` is > 0 there."""
    figures = await conn.fetch(
        f"""SELECT region_code, period, sum(active_advisors)::int AS n FROM "{schema}".figures
            WHERE length(region_code) < 12 GROUP BY 1, 2 HAVING sum(active_advisors) <> 0 ORDER BY 1, 2"""
    )
    counted = await conn.fetch(
        f"""SELECT region_code, period, count(*)::int AS n FROM "{schema}".advisor_activity_total
            WHERE length(region_code) < 12 AND records > 0 GROUP BY 1, 2 ORDER BY 1, 2"""
    )
    return [tuple(row) for row in figures], [tuple(row) for row in counted]


async def test_the_migration_counts_active_advisors_again_where_a_village_is_below_zero(
    admin_pool: asyncpg.Pool, tag: str, tmp_path: Path
) -> None:
    """A village below 0 for an advisor (a void whose record was counted in another village) beside one
    above 0: the old sums said the advisor was not active in the township, presence says they are. The
    migration leaves `advisor_activity_total` as the model has it and `active_advisors` counted from it."""
    events = stream(seed=24)
    projection = dashboard_projection()
    schema = f"below_{tag}"
    before_015 = dashboard_with(tmp_path / "migrations", before_015_with_coverage)
    await prepare_schema(admin_pool, before_015, schema)
    table = f'"{schema}".advisor_activity_total'
    async with admin_pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT set_config('search_path', $1, true)", schema)
            await projection.apply(conn, Batch(events=events, conflicts=[], now=NOW))
        # An advisor's only village in its township for a period; a sibling village below 0 beside it.
        village, period, advisor, records = await conn.fetchrow(
            f"""SELECT * FROM {table} a WHERE length(region_code) = 12 AND records > 0 AND NOT EXISTS (
                    SELECT 1 FROM {table} b
                    WHERE length(b.region_code) = 12 AND b.region_code <> a.region_code
                    AND left(b.region_code, 9) = left(a.region_code, 9) AND b.period = a.period
                    AND b.advisor_id = a.advisor_id)
                ORDER BY region_code, period, advisor_id LIMIT 1"""
        )
        sibling = f"{village[:9]}999"
        await conn.execute(f"INSERT INTO {table} VALUES ($1, $2, $3, $4)", sibling, period, advisor, -records)
        # and a row back at 0 (the projection before 015 left those)
        await conn.execute(f"INSERT INTO {table} VALUES ($1, $2, 'lawyer-zero', 0)", sibling, period)
        # What the projection before 015 left: the sums above the villages, and active advisors from them.
        await sum_records_above_the_villages(conn, table)
        await conn.execute(
            f"""UPDATE "{schema}".figures f SET active_advisors = coalesce(
                    (SELECT count(*) FROM {table} a WHERE a.region_code = f.region_code
                     AND a.period = f.period AND a.records > 0), 0)
                WHERE kafka_partition = 200 AND length(region_code) < 12"""
        )
        figures_before, _ = await active_advisors_above_villages(conn, schema)
    await prepare_schema(admin_pool, projection, schema)
    async with admin_pool.acquire() as conn:
        figures_after, counted = await active_advisors_above_villages(conn, schema)
        migrated = await _tables(conn, schema)
    assert figures_after == counted
    before = {(region, when): n for region, when, n in figures_before}.get((village[:9], period), 0)
    after = {(region, when): n for region, when, n in figures_after}.get((village[:9], period), 0)
    assert after == before + 1, "the advisor is active in the township now, and was not counted before"
    assert_activity_as_modelled(migrated["advisor_activity_total"])


async def test_an_advisors_village_back_at_zero_leaves_no_row(admin_pool: asyncpg.Pool, tag: str) -> None:
    """A village below 0 for an advisor (a void whose record was counted in another village), then the
    advisor's record there: the month's row is back at 0 and removed, as a row never written; the quarter
    and the year count the record, and the regions above the village."""
    new_id = ids(random.Random(25))
    villages, registry = six_villages(new_id, "归零")
    occurred = datetime(2026, 3, 10, 2, tzinfo=UTC)
    record = sample_event(
        "consultation.recorded",
        event_id=new_id(),
        advisor_id="lawyer-z",
        recorded_by="lawyer-z",
        village_code=villages[0],
        occurred_at=occurred,
    )
    schema = f"zero_{tag}"
    projection = dashboard_projection()
    await prepare_schema(admin_pool, projection, schema)
    table = f'"{schema}".advisor_activity_total'
    async with admin_pool.acquire() as conn:
        for batch in (consumed(registry), consumed([(VILLAGE_SERVICES, 0, record)])):
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', $1, true)", schema)
                if batch[0].topic == VILLAGE_SERVICES:
                    below = f"INSERT INTO {table} VALUES ($1, '2026-03', 'lawyer-z', -1)"
                    await conn.execute(below, villages[0])
                await projection.apply(conn, Batch(events=batch, conflicts=[], now=NOW))
        rows = await conn.fetch(f"SELECT * FROM {table} WHERE advisor_id = 'lawyer-z'")
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    found = {(row["region_code"], row["period"], row["advisor_id"]): row["records"] for row in rows}
    expected = activity_totals(
        [
            (villages[0], ["2026-03"], "lawyer-z", -1),
            (villages[0], ["2026-03", "2026-Q1", "2026"], "lawyer-z", 1),
        ]
    )
    assert (villages[0], "2026-03", "lawyer-z") not in expected
    assert found == expected
