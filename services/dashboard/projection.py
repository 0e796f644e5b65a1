"""Events → the dashboard's statistics, in the batch transaction of the projection runtime."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from contracts.approval import STEP_OF_TYPE, ApprovalStatus, after, refusal
from contracts.events import (
    COUNTRY_CODE,
    DEFAULT_ZONE,
    AdvisorAssigned,
    AdvisorRegistered,
    AdvisorReleased,
    ApprovalEvent,
    AssessmentGraded,
    GradesAccepted,
    GradesReturned,
    GradesSubmitted,
    MonthClosed,
    RecordVoided,
    RegionLevel,
    RegionRegistered,
    RegionRetired,
    ServiceRecord,
    TeamAssigned,
    TeamRegistered,
    TeamReleased,
    void_permitted,
)
from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES
from plumbing.handlers import BatchContext, Handlers, advisor_registrations, last_of_each
from plumbing.postgres import Connection
from plumbing.projection import ConsumedEvent, Projection
from services.dashboard import coverage
from services.dashboard.rules import (
    ACTIVE_ADVISORS,
    LEVEL_PREFIXES,
    METRICS,
    Activity,
    Change,
    Part,
    counting_village,
    counts_as_activity,
    grade_figures,
    month_closed_figures,
    parts_from_json,
    parts_json,
    periods,
    record_parts,
    rehoming,
    stored_rows,
    village_activity,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Rows written for the assessment topic's partitions use their own slots, apart from village-services';
# active-advisor changes go to one slot of their own (the one migration 004 used).
ASSESSMENT_SLOT_BASE = 100
ACTIVITY_SLOT = 200
SCHEMA = "dashboard"
# Read once in every batch of records: an index on the few merged regions (migration 013), not a scan of
# the country's 680,000 regions.
MERGED_VILLAGES = (
    "SELECT code, successor_code FROM regions WHERE level = 'village' AND successor_code IS NOT NULL"
)


@dataclass
class Pending:
    """What a batch changes, per partition (slot), summed before anything is written."""

    figures: dict[int, list[Change]] = field(default_factory=lambda: defaultdict(list))
    activity: dict[int, list[Activity]] = field(default_factory=lambda: defaultdict(list))
    # The merged villages (village → successor), read once in a batch and kept by its retirements, so that a
    # merge or a record later in the batch follows the merges before it.
    successors: dict[str, str] | None = None
    # The villages whose coverage may have changed (registered, retired, a term or a release): their spans
    # are computed again at the end of the batch (`services.dashboard.coverage`).
    coverage: set[str] = field(default_factory=set)


# A batch's context: what it changes, summed before anything is written.
DashboardContext = BatchContext[Pending]


# A large batch's deltas are loaded with COPY into a temporary table of the connection, a small one's are
# sent as arrays (`unnest`); the figures are carried to the regions above by one INSERT ... SELECT ... GROUP
# BY ... ON CONFLICT, the activity by one statement a level at a time (`_write_activity_sql`) (issue 17).
# Measured with `python -m bench.dashboard_apply` (bench/README.md: 79,350 events in rebuild-sized
# batches), the staged form took the figures' statement from 6.75 s to 5.78 s; a small
# batch pays less for the arrays than for the statements around a COPY. The staging table is emptied
# after each use: a batch isolated event by event (the runtime's poison isolation) applies several in one
# transaction (tests/integration/test_dashboard_batches.py).
STAGE_FROM_ROWS = 5_000
FIGURE_DELTAS = "figure_row_deltas"
ACTIVITY_DELTAS = "activity_deltas"
DELTA_COLUMNS = {
    # One row per (village, period, deepest level, slot) with a column per metric, as `figures` keeps them.
    FIGURE_DELTAS: (
        ("village", "text"),
        ("period", "text"),
        ("deepest", "int"),
        ("slot", "int"),
        *((metric, "float8") for metric in METRICS),
    ),
    ACTIVITY_DELTAS: (("village", "text"), ("period", "text"), ("advisor_id", "text"), ("records", "int")),
}
# A row of `figures` whose every metric is 0 is deleted, as if it had never been written.
EMPTIED = " AND ".join(f"{metric} = 0" for metric in METRICS)
WRITE_FIGURES = """WITH written AS (
       INSERT INTO figures (region_code, period, kafka_partition, {metrics})
       SELECT CASE l.digits WHEN 0 THEN $1 ELSE left(v.village, l.digits) END, v.period, v.slot, {sums}
       FROM {source}
       CROSS JOIN unnest($2::int[]) AS l(digits)
       WHERE l.digits <= v.deepest
       GROUP BY 1, 2, 3 HAVING NOT ({sums_zero})
       ORDER BY 1, 2, 3
       ON CONFLICT (region_code, period, kafka_partition)
       DO UPDATE SET {added}
       RETURNING region_code, period, kafka_partition, {emptied} AS emptied)
   SELECT region_code, period, kafka_partition FROM written WHERE emptied"""
WRITE_ACTIVE_ADVISORS = f"""WITH written AS (
       INSERT INTO figures (region_code, period, kafka_partition, {ACTIVE_ADVISORS})
       SELECT region, period, $3, value
       FROM unnest($1::text[], $2::text[], $4::float8[]) AS v(region, period, value)
       ON CONFLICT (region_code, period, kafka_partition)
       DO UPDATE SET {ACTIVE_ADVISORS} = figures.{ACTIVE_ADVISORS} + EXCLUDED.{ACTIVE_ADVISORS}
       RETURNING region_code, period, kafka_partition, {EMPTIED} AS emptied)
   SELECT region_code, period, kafka_partition FROM written WHERE emptied"""  # noqa: S608 - column names from METRICS
FORGET_EMPTIED = f"""DELETE FROM figures WHERE (region_code, period, kafka_partition) IN
       (SELECT * FROM unnest($1::text[], $2::text[], $3::int[])) AND {EMPTIED}"""  # noqa: S608 - column names from METRICS


# `_write_activity_sql`'s parts: the village's deltas; a level's upsert and the rows whose presence turned
# (`f<level>`, +1 or -1 in `turned`) or that are back at 0 (to be deleted: a village at -1, a void whose
# record was counted elsewhere, then +1); the next level's deltas from those.
ACTIVITY_VILLAGE = """d12 (region_code, period, advisor_id, delta) AS (
       SELECT v.village, v.period, v.advisor_id, v.records FROM {source})"""
ACTIVITY_LEVEL_WRITE = """w{level} AS (
       INSERT INTO advisor_activity_total AS t (region_code, period, advisor_id, records)
       SELECT * FROM d{level} ORDER BY 1, 2, 3
       ON CONFLICT (region_code, period, advisor_id) DO UPDATE SET records = t.records + EXCLUDED.records
       RETURNING region_code, period, advisor_id, records),
   f{level} AS (
       SELECT region_code, period, advisor_id, w.records, d.delta,
              CASE WHEN (w.records > 0) = (w.records - d.delta > 0) THEN 0
                   WHEN w.records > 0 THEN 1 ELSE -1 END AS turned
       FROM w{level} w JOIN d{level} d USING (region_code, period, advisor_id)
       WHERE (w.records > 0) <> (w.records - d.delta > 0) OR w.records = 0)"""
ACTIVITY_TURNED = "SELECT region_code, period, advisor_id, records, delta FROM f{level}"
ACTIVITY_LEVEL_DELTAS = """d{level} (region_code, period, advisor_id, delta) AS (
       SELECT {code}, f.period, f.advisor_id, sum(f.turned)::int
       FROM f{below} f GROUP BY 1, 2, 3 HAVING sum(f.turned) <> 0)"""


def _write_figures_sql(source: str) -> str:
    """The figures' upsert from the staged deltas `source`: one row per region, period and slot, each metric
    added to its column."""
    return WRITE_FIGURES.format(
        metrics=", ".join(METRICS),
        sums=", ".join(f"sum(v.{metric})" for metric in METRICS),
        sums_zero=" AND ".join(f"sum(v.{metric}) = 0" for metric in METRICS),
        added=", ".join(f"{metric} = figures.{metric} + EXCLUDED.{metric}" for metric in METRICS),
        emptied=EMPTIED,
        source=source,
    )


async def _deltas(
    conn: Connection, table: str, rows: list[tuple[Any, ...]], first_parameter: int
) -> tuple[str, list[list[Any]]]:
    """The FROM item `v` of the rows and the statement's parameters for it: the temporary table `table`
    (made on first use, emptied at commit) filled with COPY when there are many, else `unnest` of arrays
    passed from `$first_parameter` on."""
    columns = DELTA_COLUMNS[table]
    if len(rows) >= STAGE_FROM_ROWS:
        shape = ", ".join(f"{name} {kind}" for name, kind in columns)
        await conn.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({shape}) ON COMMIT DELETE ROWS")
        await conn.copy_records_to_table(
            table, records=rows, columns=[name for name, _ in columns], schema_name="pg_temp"
        )
        return f"pg_temp.{table} AS v", []
    arrays = ", ".join(f"${first_parameter + index}::{kind}[]" for index, (_, kind) in enumerate(columns))
    return f"unnest({arrays}) AS v({', '.join(name for name, _ in columns)})", _columns(rows, len(columns))


async def _clear_staging(conn: Connection, table: str, arrays: list[list[Any]]) -> None:
    """The staging table emptied after its statement (nothing to do for arrays)."""
    if not arrays:
        await conn.execute(f"TRUNCATE pg_temp.{table}")


async def _write(conn: Connection, pending: Pending) -> None:
    """One statement per table for the whole batch. Python sums each village's deltas; PostgreSQL carries
    them to the regions above (the prefixes of the code, and the country above the provinces): the figures
    summed again, the activity as presence (`_write_activity_sql`); rows in key order so that concurrent
    writers lock in one order."""
    # Each change goes to its own partition's slot: consumers holding disjoint partitions write disjoint
    # rows, and the rows do not depend on how the events were cut into batches (a live consumer's small
    # batches and a rebuild's large ones leave the same table: tests/integration/test_dashboard_batches.py).
    # Summing a batch into its lowest partition's slot instead saved 3 % of a province-year rebuild, but
    # left rows that differ with the batching.
    rows = [
        (village, period, deepest, slot, *values)
        for slot, changes in sorted(pending.figures.items())
        for (village, period, deepest), values in stored_rows(changes).items()
    ]
    if rows:
        source, arrays = await _deltas(conn, FIGURE_DELTAS, rows, 3)
        emptied = await conn.fetch(_write_figures_sql(source), COUNTRY_CODE, [0, *LEVEL_PREFIXES], *arrays)
        await _clear_staging(conn, FIGURE_DELTAS, arrays)
        await _forget_emptied(conn, emptied)
    if pending.activity:
        await _write_activity(conn, pending.activity)


async def _forget_emptied(conn: Connection, emptied: list[Any]) -> None:
    """A row whose every figure went back to 0 (a void in a later batch) is removed, as if it had never been
    written: so the table is the same whether the record and its void came in one batch or two."""
    if emptied:
        await conn.execute(FORGET_EMPTIED, *_columns([tuple(row) for row in emptied], 3))


async def _write_activity(conn: Connection, activity: dict[int, list[Activity]]) -> None:
    """Records per (village, period, advisor); above the village, the number of regions one level down
    where the advisor is active (`_write_activity_sql`); and +1 / -1 to `active_advisors` wherever an
    advisor went from inactive to active or back. Only the rows whose presence changed, or that are back
    at 0 (removed here), come back."""
    summed = village_activity(change for changes in activity.values() for change in changes)
    if not summed:
        return
    source, arrays = await _deltas(conn, ACTIVITY_DELTAS, [(*key, value) for key, value in summed.items()], 2)
    # The planner expects one row from each level's changes (it cannot tell how many turned) and joins a
    # level's upsert to its deltas in a nested loop: 24 s a batch where a hash join takes milliseconds.
    rows = await _planned_with(
        conn, "enable_nestloop", "off", _write_activity_sql(source), COUNTRY_CODE, *arrays
    )
    await _clear_staging(conn, ACTIVITY_DELTAS, arrays)
    became: dict[tuple[str, str], int] = defaultdict(int)
    gone = []
    for row in rows:
        after = row["records"]
        before = after - row["delta"]
        became[(row["region_code"], row["period"])] += (after > 0) - (before > 0)
        if after == 0:
            gone.append((row["region_code"], row["period"], row["advisor_id"]))
    if gone:
        await conn.execute(
            """DELETE FROM advisor_activity_total WHERE (region_code, period, advisor_id) IN
                   (SELECT * FROM unnest($1::text[], $2::text[], $3::text[])) AND records = 0""",
            *_columns(gone, 3),
        )
    changed = sorted((key, value) for key, value in became.items() if value)
    if changed:
        # One slot for every consumer: whether an advisor is active in a region is known only from the
        # shared totals above, so the change is the batch's, not one partition's; a slot of its own per
        # batch would leave rows that depend on the batching.
        emptied = await conn.fetch(
            WRITE_ACTIVE_ADVISORS,
            [key[0] for key, _ in changed],
            [key[1] for key, _ in changed],
            ACTIVITY_SLOT,
            [float(value) for _, value in changed],
        )
        await _forget_emptied(conn, emptied)


def _write_activity_sql(source: str) -> str:
    """One statement, a level at a time from the village up: the village's rows count records; a region
    above counts its regions one level down where the advisor is active, so it changes only when one of
    them goes from inactive to active or back (`activity_totals` in rules.py is the model). Most of a
    batch's records change nothing above the village: carrying every village delta to all five regions
    above made two thirds of the rows this statement wrote
    (bench/results/2026-12-07-dashboard-statements.txt). Rows are upserted level by level and in key order
    within a level, one order for every consumer: concurrent ones wait for each other's row locks instead of
    deadlocking, and each sees the other's committed count. Returns every row whose presence changed or
    that is back at 0, with its count after the batch and the batch's delta."""
    levels = [*reversed(LEVEL_PREFIXES), 0]  # the village (12 digits), 9, 6, 4, 2, then the country
    steps = [ACTIVITY_VILLAGE.format(source=source)]
    for below, digits in itertools.pairwise(levels):
        steps.append(ACTIVITY_LEVEL_WRITE.format(level=below))
        code = "$1::text" if digits == 0 else f"left(f.region_code, {digits})"
        steps.append(ACTIVITY_LEVEL_DELTAS.format(level=digits, below=below, code=code))
    steps.append(ACTIVITY_LEVEL_WRITE.format(level=levels[-1]))
    changed = " UNION ALL ".join(ACTIVITY_TURNED.format(level=digits) for digits in levels)
    return "WITH " + ",\n".join(steps) + "\n" + changed


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns, for `unnest`."""
    return [[row[index] for row in rows] for index in range(width)] if rows else [[] for _ in range(width)]


async def _successors(conn: Connection, pending: Pending) -> dict[str, str]:
    if pending.successors is None:
        rows = await conn.fetch(MERGED_VILLAGES)
        pending.successors = {row["code"]: row["successor_code"] for row in rows}
    return pending.successors


async def _register_regions(conn: Connection, items: list[ConsumedEvent], context: DashboardContext) -> None:
    """A run of region registrations in one statement; the last of a code wins, as one by one. A run, in
    the registry's order, not the whole batch's registrations first: a retirement that comes before a
    region's registration finds no region, one event at a time, and the region stays unretired."""
    regions = last_of_each(items, RegionRegistered, lambda data: data.code)
    context.state.coverage.update(r.code for _, r in regions if r.level is RegionLevel.village)
    await conn.execute(
        """INSERT INTO regions (code, name, level, parent_code)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
           ON CONFLICT (code) DO UPDATE
           SET name = EXCLUDED.name, level = EXCLUDED.level, parent_code = EXCLUDED.parent_code""",
        *_columns([(r.code, r.name, str(r.level), r.parent_code) for _, r in regions], 4),
    )


async def _region_retired(
    conn: Connection, item: ConsumedEvent, data: RegionRetired, context: DashboardContext
) -> None:
    level = await conn.fetchval(
        "UPDATE regions SET retired_on = $2, successor_code = $3 WHERE code = $1 RETURNING level",
        data.code,
        data.effective_date,
        data.successor_code,
    )
    successors = await _successors(conn, context.state)
    if level == "village":  # what `_successors` reads from the table
        context.state.coverage.add(data.code)
        if data.successor_code is None:
            successors.pop(data.code, None)
        else:
            successors[data.code] = data.successor_code
    if data.successor_code is not None and len(data.code) == 12:
        # A village merged into one merged already: its records go on to the end of the chain.
        destination = counting_village(data.successor_code, successors)
        await _move_history(conn, data.code, destination, context.state)


async def _advisors_registered(
    conn: Connection, items: list[ConsumedEvent], _context: DashboardContext
) -> None:
    """A run of registrations in one statement, as one by one: a registration the advisor's owner may not
    make is refused (`registrations_permitted`), the last permitted one of an advisor wins."""
    # The card on the village's notice page (公示): the phone is only the contact the advisor chose to
    # publish, never the registry's (personal) phone.
    written, _refused = await advisor_registrations(conn, items)
    contacts = [data.public_contact for data, _ in written]
    await conn.execute(
        """INSERT INTO advisors (advisor_id, name, kind, organisation, phone, contact_consented_on,
                                 owner_region)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[],
                                $7::text[])
           ON CONFLICT (advisor_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
               organisation = EXCLUDED.organisation, phone = EXCLUDED.phone,
               contact_consented_on = EXCLUDED.contact_consented_on, owner_region = EXCLUDED.owner_region""",
        [data.advisor_id for data, _ in written],
        [data.name for data, _ in written],
        [str(data.kind) for data, _ in written],
        [data.organisation for data, _ in written],
        [contact.phone if contact else None for contact in contacts],
        [contact.consented_on if contact else None for contact in contacts],
        [owner for _, owner in written],
    )


async def _advisors_assigned(conn: Connection, items: list[ConsumedEvent], context: DashboardContext) -> None:
    """A run of assignments in one statement; the last of a key (advisor, village, term start) wins, as one
    by one."""
    rows = last_of_each(
        items, AdvisorAssigned, lambda data: (data.advisor_id, data.village_code, data.term_start)
    )
    context.state.coverage.update(data.village_code for _, data in rows)
    await conn.execute(
        """INSERT INTO assignments (advisor_id, village_code, term_start, term_end)
           SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::date[])
           ON CONFLICT (advisor_id, village_code, term_start) DO UPDATE SET term_end = EXCLUDED.term_end""",
        [data.advisor_id for _, data in rows],
        [data.village_code for _, data in rows],
        [data.term_start for _, data in rows],
        [data.term_end for _, data in rows],
    )


async def _advisor_released(
    conn: Connection, item: ConsumedEvent, data: AdvisorReleased, context: DashboardContext
) -> None:
    context.state.coverage.add(data.village_code)
    await conn.execute(
        """UPDATE assignments SET released_on = $3
           WHERE advisor_id = $1 AND village_code = $2 AND term_start <= $3 AND released_on IS NULL""",
        data.advisor_id,
        data.village_code,
        data.effective_date,
    )


async def _move_history(conn: Connection, retired: str, destination: str, pending: Pending) -> None:
    """A merged village's records count where its successor's do from now on, all of them (as the event
    says); its voided records move with them, taking nothing, so that a void of one that comes after the
    merge finds it where it would had the merge come first (in the same batch, a merge applies before the
    records)."""
    if retired == destination:
        return
    rows = await conn.fetch(
        """UPDATE counted_records SET village_code = $2 WHERE village_code = $1
           RETURNING occurred_at, figures, kafka_partition, advisor_id, active, voided""",
        retired,
        destination,
    )
    for row in rows:
        figures, activity = rehoming(
            retired,
            destination,
            parts_from_json(row["occurred_at"], orjson.loads(row["figures"])),
            (row["occurred_at"], row["advisor_id"]) if row["active"] else None,
            row["voided"],
        )
        pending.figures[row["kafka_partition"]] += figures
        pending.activity[row["kafka_partition"]] += activity


async def _apply_service_records(
    conn: Connection, items: list[ConsumedEvent], context: DashboardContext
) -> None:
    """Each record's figures where it counts (a merged village's for its successor), voids taking them back,
    and each record in its village's log."""
    successors = await _successors(conn, context.state)
    await _apply_records(conn, items, successors, context.state)
    await _log_entries(conn, items)


async def _write_figures(conn: Connection, context: DashboardContext) -> None:
    await _write(conn, context.state)
    await _write_coverage(conn, context.state.coverage)


async def _write_coverage(conn: Connection, villages: set[str]) -> None:
    """The touched villages' coverage computed again, and what changed written to the steps of the village
    and the regions above it (`services.dashboard.coverage`)."""
    if not villages:
        return
    rows = await _planned_with(conn, *coverage.PLANNER, coverage.WRITE, sorted(villages))
    emptied = sorted({row["emptied"] for row in rows if row["emptied"] is not None})
    if emptied:
        await conn.execute(coverage.EMPTIED, emptied)


async def _planned_with(conn: Connection, setting: str, value: str, sql: str, *args: Any) -> list[Any]:
    """The statement's rows, planned with a planner setting (`enable_nestloop`, `enable_seqscan`) set for
    it alone: set for the transaction, and back to what it was after the statement (a rollback undoes it
    too)."""
    prior = await conn.fetchval(  # the row of `p` is read before the target list sets the new value
        """WITH p AS MATERIALIZED (SELECT current_setting($1) AS prior)
           SELECT p.prior, set_config($1, $2, true) FROM p""",
        setting,
        value,
    )
    rows: list[Any] = await conn.fetch(sql, *args)
    await conn.execute("SELECT set_config($1, $2, true)", setting, prior)
    return rows


async def _log_entries(conn: Connection, records: list[ConsumedEvent]) -> None:
    """Every service record in its village's log (kind, time, advisor), and a void marks a record that came
    before it there when its sender may void it (the rule in contracts). A void sent before its record marks
    nothing, in this batch or a later one, as it takes nothing back from the figures."""
    known: dict[UUID, tuple[str, str, str | None]] = {}
    void_targets = [
        data.target_event_id for item in records if isinstance(data := item.event.data, RecordVoided)
    ]
    if void_targets:
        known = {
            row["event_id"]: (row["village_code"], row["advisor_id"], row["recorded_by"])
            for row in await conn.fetch(
                """SELECT event_id, village_code, advisor_id, recorded_by FROM village_log
                   WHERE event_id = ANY($1::uuid[])""",
                void_targets,
            )
        }
    rows = []
    voided = []
    for item in records:
        data = item.event.data
        if isinstance(data, RecordVoided):
            target = known.get(data.target_event_id)
            if target is None:
                continue
            village_code, advisor_id, recorded_by = target
            if village_code == data.village_code and void_permitted(data, advisor_id, recorded_by):
                voided.append(data.target_event_id)
            continue
        assert isinstance(data, ServiceRecord)  # noqa: S101 - filtered by the caller
        known[item.event.id] = (data.village_code, data.advisor_id, data.recorded_by)
        rows.append(
            (
                item.event.id,
                data.village_code,
                data.occurred_at,
                item.event.type,
                data.advisor_id,
                data.recorded_by,
            )
        )
    if rows:
        # COPY: every record here is new (the runtime has dropped what was applied before).
        await conn.copy_records_to_table(
            "village_log",
            records=rows,
            columns=["event_id", "village_code", "occurred_at", "event_type", "advisor_id", "recorded_by"],
        )
    if voided:
        await conn.execute("UPDATE village_log SET voided = true WHERE event_id = ANY($1::uuid[])", voided)


async def _apply_records(
    conn: Connection,
    records: list[ConsumedEvent],
    successors: dict[str, str],
    pending: Pending,
) -> None:
    counted: dict[UUID, CountedRecord] = {}
    # Records voided in the batch that counted them: kept, marked voided, as when the void comes later.
    voided_here: dict[UUID, CountedRecord] = {}
    void_targets = [
        item.event.data.target_event_id for item in records if isinstance(item.event.data, RecordVoided)
    ]
    earlier: dict[UUID, CountedRecord] = {}
    if void_targets:
        rows = await conn.fetch(
            """SELECT event_id, village_code, occurred_at, figures, kafka_partition, advisor_id, active,
                      recorded_village, recorded_by
               FROM counted_records WHERE event_id = ANY($1::uuid[]) AND NOT voided""",
            void_targets,
        )
        earlier = {
            row["event_id"]: CountedRecord(
                row["village_code"],
                row["occurred_at"],
                parts_from_json(row["occurred_at"], orjson.loads(row["figures"])),
                row["kafka_partition"],
                row["advisor_id"],
                row["active"],
                row["recorded_village"],
                row["recorded_by"],
            )
            for row in rows
        }
    voided: list[UUID] = []
    for item in records:
        data = item.event.data
        if isinstance(data, RecordVoided):
            target = counted.get(data.target_event_id) or earlier.get(data.target_event_id)
            if target is None or not target.may_be_voided_by(data):
                continue
            if counted.pop(data.target_event_id, None) is not None:
                voided_here[data.target_event_id] = target
            if earlier.pop(data.target_event_id, None) is not None:
                voided.append(data.target_event_id)
            for moment, figures in target.parts:
                pending.figures[target.partition].append((target.village, periods(moment), figures, -1))
            if target.active:
                pending.activity[target.partition].append(
                    (target.village, periods(target.when), target.advisor_id, -1)
                )
            continue
        assert isinstance(data, ServiceRecord)  # noqa: S101 - filtered by the caller
        parts = record_parts(data)
        if not any(figures for _, figures in parts):
            continue
        village = counting_village(data.village_code, successors)
        active = counts_as_activity(data)
        for moment, figures in parts:
            pending.figures[item.partition].append((village, periods(moment), figures, 1))
        if active:
            pending.activity[item.partition].append((village, periods(data.occurred_at), data.advisor_id, 1))
        counted[item.event.id] = CountedRecord(
            village,
            data.occurred_at,
            parts,
            item.partition,
            data.advisor_id,
            active,
            data.village_code,
            data.recorded_by,
        )
    if voided:
        await conn.execute(
            "UPDATE counted_records SET voided = true WHERE event_id = ANY($1::uuid[])", voided
        )
    if counted or voided_here:
        # COPY: every record here is new (the runtime has dropped what was applied before).
        await conn.copy_records_to_table(
            "counted_records",
            records=[
                (
                    event_id,
                    record.village,
                    record.when,
                    orjson.dumps(parts_json(record.parts)).decode(),
                    record.partition,
                    record.advisor_id,
                    record.active,
                    record.recorded_village,
                    record.recorded_by,
                    voided,
                )
                for voided, records in ((False, counted), (True, voided_here))
                for event_id, record in records.items()
            ],
            columns=[
                "event_id",
                "village_code",
                "occurred_at",
                "figures",
                "kafka_partition",
                "advisor_id",
                "active",
                "recorded_village",
                "recorded_by",
                "voided",
            ],
        )


@dataclass(frozen=True)
class CountedRecord:
    """What a counted record added (so that a void or a merge can take exactly that back), and who
    recorded it in which village (so that only a void its sender may send takes it back)."""

    village: str
    when: datetime
    parts: list[Part]  # where its figures count (a visit's minutes in each month it touched)
    partition: int
    advisor_id: str
    active: bool
    recorded_village: str | None
    recorded_by: str | None

    def may_be_voided_by(self, void: RecordVoided) -> bool:
        if self.recorded_village is not None and self.recorded_village != void.village_code:
            return False
        return void_permitted(void, self.advisor_id, self.recorded_by)


def _output_figures(item: ConsumedEvent) -> tuple[str, int, str, list[str], dict[str, float]] | None:
    """(key, revision, village, periods, figures) of a month close or a grade; None for anything else."""
    data = item.event.data
    if isinstance(data, MonthClosed):
        year, month = (int(part) for part in data.month.split("-"))
        anchor = datetime(year, month, 15, 12, 0, tzinfo=DEFAULT_ZONE)
        key = f"month:{data.advisor_id}:{data.village_code}:{data.month}"
        return key, data.revision, data.village_code, periods(anchor), month_closed_figures(data.met)
    if isinstance(data, AssessmentGraded):
        key = f"grade:{data.advisor_id}:{data.village_code}:{data.year}"
        figures = grade_figures(str(data.grade), data.subsidy_yuan)
        return key, data.revision, data.village_code, [str(data.year)], figures
    return None


async def _apply_assessment_outputs(
    conn: Connection, outputs: list[ConsumedEvent], context: DashboardContext
) -> None:
    pending = context.state
    """The latest revision of each close and grade counts; a newer one takes the older one's figures back."""
    found = [(item, described) for item in outputs if (described := _output_figures(item)) is not None]
    if not found:
        return
    rows = await conn.fetch(
        "SELECT * FROM assessment_figures WHERE output_key = ANY($1::text[])",
        [described[0] for _, described in found],
    )
    current: dict[str, dict[str, Any]] = {
        row["output_key"]: {**dict(row), "figures": orjson.loads(row["figures"])} for row in rows
    }
    for item, (key, revision, village, counted_in, figures) in found:
        held = current.get(key)
        if held is not None and held["revision"] >= revision:
            continue
        if held is not None:
            pending.figures[held["slot"]].append(
                (held["village_code"], list(held["periods"]), held["figures"], -1)
            )
        slot = ASSESSMENT_SLOT_BASE + item.partition
        pending.figures[slot].append((village, counted_in, figures, 1))
        current[key] = {
            "output_key": key,
            "revision": revision,
            "village_code": village,
            "periods": counted_in,
            "figures": figures,
            "slot": slot,
        }
    await conn.executemany(
        """INSERT INTO assessment_figures (output_key, revision, village_code, periods, figures, slot)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)
           ON CONFLICT (output_key) DO UPDATE
           SET revision = $2, village_code = $3, periods = $4, figures = $5::jsonb, slot = $6""",
        [
            (
                row["output_key"],
                row["revision"],
                row["village_code"],
                row["periods"],
                orjson.dumps(row["figures"]).decode(),
                row["slot"],
            )
            for row in current.values()
        ],
    )


async def _apply_approval(
    conn: Connection, item: ConsumedEvent, data: ApprovalEvent, _context: DashboardContext
) -> None:
    """Where the county's year stands after the step (a step that does not fit changes nothing)."""
    step = STEP_OF_TYPE[item.event.type]
    row = await conn.fetchrow(
        "SELECT status, submission FROM approvals WHERE county_code = $1 AND year = $2",
        data.county_code,
        data.year,
    )
    status = ApprovalStatus(row["status"]) if row else ApprovalStatus.not_started
    current = row["submission"] if row else 0
    submission: int = getattr(data, "submission")  # noqa: B009 - every step but an adjustment carries one
    if refusal(status, current, step, submission) is not None:
        return
    await conn.execute(
        """INSERT INTO approvals (county_code, year, status, submission, acted_by, acted_at, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (county_code, year) DO UPDATE
           SET status = $3, submission = $4, acted_by = $5, acted_at = $6, reason = $7""",
        data.county_code,
        data.year,
        str(after(status, step)),
        submission,
        data.acted_by,
        data.acted_at,
        data.reason if isinstance(data, GradesReturned) else None,
    )


async def _team_registered(
    conn: Connection, item: ConsumedEvent, data: TeamRegistered, _context: DashboardContext
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
    conn: Connection, item: ConsumedEvent, data: TeamAssigned, context: DashboardContext
) -> None:
    context.state.coverage.add(data.village_code)
    await conn.execute(
        """INSERT INTO team_assignments (team_id, village_code, term_start, term_end)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (team_id, village_code, term_start) DO UPDATE SET term_end = $4""",
        data.team_id,
        data.village_code,
        data.term_start,
        data.term_end,
    )


async def _team_released(
    conn: Connection, item: ConsumedEvent, data: TeamReleased, context: DashboardContext
) -> None:
    context.state.coverage.add(data.village_code)
    await conn.execute(
        """UPDATE team_assignments SET released_on = $3
           WHERE team_id = $1 AND village_code = $2 AND term_start <= $3 AND released_on IS NULL""",
        data.team_id,
        data.village_code,
        data.effective_date,
    )


# The dashboard, in the order it applies a batch: the registry (one total order, its stretches of
# registrations and assignments a statement each), what the assessment concluded, the year-end approval,
# the service records; then the batch's figures are written, a row per slot.
handlers: Handlers[Pending] = Handlers()
handlers.each(
    {
        RegionRetired: _region_retired,
        AdvisorReleased: _advisor_released,
    },
    topic=REGISTRY,
    runs={
        RegionRegistered: _register_regions,
        AdvisorRegistered: _advisors_registered,
        AdvisorAssigned: _advisors_assigned,
    },
)
handlers.each(
    {TeamRegistered: _team_registered, TeamAssigned: _team_assigned, TeamReleased: _team_released},
    topic=REGISTRY,
)
handlers.on(MonthClosed, AssessmentGraded, topic=ASSESSMENT)(_apply_assessment_outputs)
handlers.each(dict.fromkeys((GradesSubmitted, GradesReturned, GradesAccepted), _apply_approval))
handlers.on(ServiceRecord)(_apply_service_records)


def dashboard_projection() -> Projection:
    return Projection(
        name="dashboard",
        schema=SCHEMA,
        topics=(VILLAGE_SERVICES, REGISTRY, ASSESSMENT),
        migrations=MIGRATIONS,
        apply=handlers.apply(state=Pending, finish=_write_figures),
    )
