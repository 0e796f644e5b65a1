"""The benchmark's stages, each measured beside its anchor (the raw tool underneath) in the same run.

Every stage returns a plain dict (numbers and counts) that goes into the JSON result; the counts are what
the small-scale test asserts (correctness), the numbers are what the report compares (speed).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka.admin import NewTopic

from contracts.envelope import Event, KafkaRecord
from contracts.events import COUNTRY_CODE, DEFAULT_ZONE, ConsultationRecorded, ServiceRecord
from contracts.topics import INPUT_TOPICS, TOPIC_BY_NAME
from devstack.stack import Profile
from plumbing.auth import Role, mint_token
from plumbing.kafka import KafkaConnection, create_admin, create_consumer, create_producer, ensure_topics
from plumbing.settings import TokenSettings
from services.intake.rules import KINDS, SERVER_SET_FIELDS

ROOT = Path(__file__).resolve().parents[1]
PROJECTIONS = ("ledger", "assessment", "dashboard")
SERVICES = {"intake": 21800, "ledger": 21801, "assessment": 21802, "dashboard": 21803}


@dataclass(frozen=True)
class Stack:
    """The benchmark's devstack profile: a closed broker where each service runs as its own Kafka user."""

    profile: Profile

    @property
    def database(self) -> str:
        return self.profile.database_url

    @property
    def kafka(self) -> KafkaConnection:
        """The load's way in: intake's user, the writer of the input topics (as intake's batches are)."""
        return self.profile.kafka_as("intake")

    def kafka_as(self, user: str) -> KafkaConnection:
        return self.profile.kafka_as(user)

    def env(self, user: str, **extra: str) -> dict[str, str]:
        """A process of the service `user`, with its own Kafka user."""
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("VC_KAFKA_")}
        return {
            **inherited,
            **self.profile.environment(user),
            "VC_LOG_LEVEL": "WARNING",
            "VC_CLOSE_INTERVAL_SECONDS": "1000000",  # the closer is not what this measures
            **extra,
        }


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else float("nan"),
    }


def token(region: str = "37", role: Role = Role.province_department) -> str:
    return mint_token(
        TokenSettings(), subject=f"bench-{region}", role=role, region_code=region, now=datetime.now(UTC)
    )


# -- Kafka -------------------------------------------------------------------------------------------


async def produce(
    kafka: KafkaConnection, records: Iterable[KafkaRecord], chunk: int = 5000
) -> dict[str, Any]:
    """The anchor of intake's batch endpoint and the way the load reaches the topics: a bare producer with
    the same settings as intake's (idempotent, acks=all, intake's Kafka user). `records` may be a
    generator: a province-year is encoded a chunk at a time (all of it at once would not fit in memory)."""
    await ensure_topics(kafka, [TOPIC_BY_NAME[topic] for topic in INPUT_TOPICS])
    producer = create_producer(kafka, "bench")
    await producer.start()
    sent = 0
    try:
        started = time.perf_counter()
        pending = iter(records)
        while batch := list(itertools.islice(pending, chunk)):
            futures = [
                await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in batch
            ]
            await asyncio.gather(*futures)
            sent += len(batch)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return {
        "records": sent,
        "seconds": round(seconds, 3),
        "per_second": round(sent / seconds, 1),
    }


async def kafka_hop(kafka: KafkaConnection, probes: int = 200) -> dict[str, Any]:
    """The end-to-end anchor: produce one message, see it consumed, no database (as the devstack's super
    user: the topic is the benchmark's own, in no service's ACLs)."""
    topic = "bench.kafka-hop"  # a topic of its own: the projections never see these messages
    admin = create_admin(kafka)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    consumer = create_consumer(
        kafka,
        topic,
        group_id=f"bench-hop-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="latest",
    )
    producer = create_producer(kafka, "bench-hop")
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        await consumer.seek_to_end()
        seconds: list[float] = []
        for number in range(probes):
            marker = f"hop-{number}-{uuid.uuid4().hex}".encode()
            started = time.perf_counter()
            await (await producer.send(topic, value=b"{}", key=b"370000000000", headers=[("bench", marker)]))
            seen = False
            while not seen:
                batches = await consumer.getmany(timeout_ms=50)
                seen = any(
                    dict(record.headers).get("bench") == marker
                    for batch in batches.values()
                    for record in batch
                )
            seconds.append(time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
    return latency_summary(seconds)


# -- PostgreSQL --------------------------------------------------------------------------------------


async def copy_anchor(database: str, events: Sequence[Event]) -> dict[str, Any]:
    """The projections' anchor: COPY as many rows as there are events into a table shaped like theirs (an
    id, a village, a time, a jsonb of figures, a partition)."""
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_copy")
        await conn.execute(
            """CREATE UNLOGGED TABLE bench_copy (event_id uuid PRIMARY KEY, village_code text NOT NULL,
               occurred_at timestamptz NOT NULL, figures jsonb NOT NULL, kafka_partition integer NOT NULL)"""
        )
        rows = [
            (event.id, getattr(event.data, "village_code", ""), event.time, '{"records": 1}', 0)
            for event in events
        ]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=rows)
        seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_copy")
    finally:
        await conn.close()
    return {"rows": len(rows), "seconds": round(seconds, 3), "per_second": round(len(rows) / seconds, 1)}


FLAT_COLUMNS = (
    "country",
    "province",
    "prefecture",
    "county",
    "township",
    "village",
    "month",
    "metric",
    "value",
)


async def flat_table(database: str, events: Iterable[Event], chunk: int = 200_000) -> int:
    """The query anchor's table: one row per figure of every counted record, no rollup (copied a chunk at a
    time: a province-year is some 15 million rows)."""
    from services.dashboard.rules import contributions  # the same figures the projection counts

    def rows() -> Iterator[tuple[str, str, str, str, str, str, str, str, float]]:
        for event in events:
            if not isinstance(event.data, ServiceRecord):
                continue
            code = event.data.village_code
            month = event.data.occurred_at.astimezone(DEFAULT_ZONE).strftime("%Y-%m")
            for metric, value in contributions(event.data).items():
                yield (
                    COUNTRY_CODE,
                    code[:2],
                    code[:4],
                    code[:6],
                    code[:9],
                    code,
                    month,
                    metric,
                    float(value),
                )

    copied = 0
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_flat")
        await conn.execute(
            """CREATE TABLE bench_flat (country text, province text, prefecture text, county text,
               township text, village text, month text, metric text, value double precision)"""
        )
        pending = rows()
        while batch := list(itertools.islice(pending, chunk)):
            await conn.copy_records_to_table("bench_flat", records=batch, columns=list(FLAT_COLUMNS))
            copied += len(batch)
        await conn.execute("CREATE INDEX ON bench_flat (province, month)")
        await conn.execute("ANALYZE bench_flat")
    finally:
        await conn.close()
    return copied


async def group_by_anchor(
    database: str, level: str, code: str, months: list[str], repeat: int
) -> list[float]:
    """What the API answers for a region (its figures and its children's), as a plain GROUP BY."""
    columns = ["country", "province", "prefecture", "county", "township", "village"]
    here = columns.index(level)
    child = columns[min(here + 1, len(columns) - 1)]
    query = (
        f"SELECT {child}, metric, sum(value) FROM bench_flat "  # noqa: S608 - column names from the list above
        f"WHERE {level} = $1 AND month = ANY($2::text[]) GROUP BY {child}, metric"
    )
    conn = await asyncpg.connect(database)
    try:
        await conn.fetch(query, code, months)
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            await conn.fetch(query, code, months)
            seconds.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return seconds


# -- processes ---------------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), while it runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def rebuild(
    stack: Stack,
    names: Sequence[str],
    workers: int = 1,
    tree: Path = ROOT,
    settings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`python -m services.<name> rebuild --drop-retired --workers N` for each name at once; seconds,
    events applied and peak memory of each (of the rebuild's own process: its parts are processes of
    their own). `tree`: the checkout whose code runs; `settings`: VC_ variables added to its environment."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        outputs = {name: Path(scratch) / f"{name}.out" for name in names}
        processes = {}
        for name in names:
            with outputs[name].open("wb") as sink:
                processes[name] = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                    [
                        *(sys.executable, "-m", f"services.{name}", "rebuild", "--drop-retired"),
                        *("--workers", str(workers)),
                    ],
                    env=stack.env(name, PYTHONPATH=str(tree), **(settings or {})),
                    cwd=tree,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
        # Peak memory is read from /proc while each runs (VmHWM starts afresh at exec; a child's rusage
        # would count the benchmark's own pages from before the exec).
        finished: dict[str, tuple[float, float, str]] = {}
        peaks: dict[str, float] = {}
        while len(finished) < len(processes):
            for name, process in processes.items():
                if name in finished:
                    continue
                peak = peak_rss_mb(process.pid)
                if peak is not None:
                    peaks[name] = max(peaks.get(name, 0.0), peak)
                if process.poll() is not None:
                    finished[name] = (
                        time.perf_counter() - started,
                        peaks.get(name, 0.0),
                        outputs[name].read_text(),
                    )
            time.sleep(0.1)
    found: dict[str, Any] = {}
    for name, (seconds, peak, out) in finished.items():
        if processes[name].returncode != 0:
            raise RuntimeError(f"{name} rebuild failed: {out[-2000:]}")
        reported = re.search(r"(\d+) events in ([\d.]+)s", out)
        if reported is None:
            raise RuntimeError(f"{name} rebuild said: {out[-500:]}")
        applied, inside = int(reported.group(1)), float(reported.group(2))
        found[name] = {
            "events": applied,
            "seconds": inside,  # the rebuild's own time, from its first poll to the switch-over
            "seconds_with_start_up": round(seconds, 2),
            "per_second": round(applied / inside, 1),
            "peak_rss_mb": peak,
            "workers": workers,
        }
    return found


def _bench_module(stack: Stack, user: str, what: str, *args: str) -> dict[str, Any]:
    """`python -m bench.<module> ARGS` in a process of its own as `user`: the JSON object it prints last,
    with the process's peak memory (read from /proc while it runs)."""
    with tempfile.TemporaryFile() as sink:
        process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", *args],
            env=stack.env(user),
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, peak_rss_mb(process.pid) or 0.0)
            time.sleep(0.1)
        sink.seek(0)
        out = sink.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed: {out[-2000:]}")
    return {**orjson.loads(out.strip().splitlines()[-1]), "peak_rss_mb": peak}


def consumer_ceiling(stack: Stack, decode: bool) -> dict[str, Any]:
    """`python -m bench.ceiling [--decode]` as the ledger's Kafka user: the projections' input topics read
    from offset 0 to their end by one process (and decoded as the runtime decodes them), nothing written;
    events, seconds, events/s and the process's peak memory."""
    flags = ("--decode",) if decode else ()
    return _bench_module(stack, "ledger", "the consumer ceiling", "bench.ceiling", *flags)


def closer_pass(stack: Stack, now: datetime) -> dict[str, Any]:
    """The assessment's closer once over every pair (`python -m bench.closer`), the clock at `now`:
    seconds, outputs published and the process's peak memory. As the assessment's user: the closer
    publishes the assessment's outputs."""
    return _bench_module(stack, "assessment", "the closer's pass", "bench.closer", "--now", now.isoformat())


@dataclass
class Services:
    """The four services as processes, as they run in production (one uvicorn worker each), from `tree`'s
    code."""

    stack: Stack
    tree: Path = ROOT
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        for name, port in SERVICES.items():
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", f"services.{name}"],
                env=self.stack.env(name, VC_HTTP_PORT=str(port), PYTHONPATH=str(self.tree)),
                cwd=self.tree,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 120
        for port in SERVICES.values():
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service on {port} did not get ready")
                time.sleep(0.3)

    def sample_memory(self) -> None:
        for name, process in self.processes.items():
            peak = peak_rss_mb(process.pid)
            if peak is not None:
                self.peaks[name] = max(self.peaks.get(name, 0.0), peak)

    async def caught_up(self, within: float = 1800) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5) as client:
            for name in PROJECTIONS:
                while True:
                    status = (await client.get(f"http://127.0.0.1:{SERVICES[name]}/healthz")).json()
                    if status.get("lag") == 0 and status.get("events_applied", 0) > 0:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not catch up: {status}")
                    await asyncio.sleep(0.5)

    def pause(self, names: Sequence[str]) -> None:
        """SIGSTOP: the stage measured next gets the cores, as it would on its own node."""
        for name in names:
            self.processes[name].send_signal(signal.SIGSTOP)

    def resume(self, names: Sequence[str]) -> None:
        for name in names:
            self.processes[name].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.sample_memory()
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


# -- HTTP stages -------------------------------------------------------------------------------------

# Intake's own table of record kinds: event type → (name in a batch, path of its endpoint).
KIND_BY_TYPE = {kind.event_type: kind for kind in KINDS if not kind.is_registry}


def client_record(event: Event) -> dict[str, Any]:
    """The event as a client sends it to intake (the server sets recorded_by, its role and the seal)."""
    body = event.data.model_dump(mode="json", exclude=set(SERVER_SET_FIELDS), exclude_none=True)
    return {"id": str(event.id), **body}


async def intake_batch(
    url: str, events: Sequence[Event], size: int = 1000, concurrency: int = 4, region: str = "37"
) -> dict[str, Any]:
    """`events` of villages within `region`, sent by that province's department."""
    # Encoded before the clock starts, as the anchor's records are: a client encodes on its own device,
    # and the load generator shares this machine's 2 cores with intake.
    bodies = [
        orjson.dumps(
            {
                "records": [
                    {"kind": KIND_BY_TYPE[e.type].name, "record": client_record(e)}
                    for e in events[i : i + size]
                ]
            }
        )
        for i in range(0, len(events), size)
    ]
    headers = {"Authorization": f"Bearer {token(region)}", "Content-Type": "application/json"}
    accepted = rejected = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted, rejected
        while not queue.empty():
            body = queue.get_nowait()
            for _ in range(50):
                answer = await client.post(f"{url}/v1/batch", content=body, headers=headers)
                if answer.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            summary = orjson.loads(answer.content)
            accepted += summary.get("accepted", 0)
            rejected += summary.get("rejected", 0)

    async with httpx.AsyncClient(timeout=120) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {
        "records": len(events),
        "accepted": accepted,
        "rejected": rejected,
        "seconds": round(seconds, 3),
        "per_second": round(accepted / seconds, 1),
    }


LOADGEN = ROOT / "bench" / "loadgen"


def loadgen_binary() -> Path | None:
    """The compiled load generator (bench/loadgen, Go), built once into .local/bench; None without Go."""
    go = shutil.which("go")
    if go is None:
        return None
    target = ROOT / ".local" / "bench" / "loadgen"
    newest = max(path.stat().st_mtime for path in [*LOADGEN.glob("*.go"), LOADGEN / "go.mod"])
    if not target.exists() or target.stat().st_mtime < newest:
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - our own sources, fixed arguments
            [go, "build", "-buildvcs=false", "-o", str(target), "."], cwd=LOADGEN, check=True
        )
    return target


async def intake_single(
    url: str, events: Sequence[Event], concurrency: int = 16, dry_run: bool = False, region: str = "37"
) -> dict[str, Any]:
    """One record per request at a fixed concurrency; with dry_run, the same app validating only. The
    requests come from the compiled load generator when Go is there (a Python client would take a good
    part of the 2 cores it shares with intake), else from httpx; the result says which."""
    query = "?dry_run=true" if dry_run else ""
    requests = [(f"{url}{KIND_BY_TYPE[e.type].path}{query}", orjson.dumps(client_record(e))) for e in events]
    binary = loadgen_binary()
    if binary is not None:
        seconds, statuses, total = await _loadgen(binary, requests, concurrency, region)
        client = "bench/loadgen (Go)"
    else:
        seconds, statuses, total = await _httpx_load(requests, concurrency, region)
        client = "httpx (Python)"
    return {
        **latency_summary(seconds),
        "concurrency": concurrency,
        "per_second": round(len(seconds) / total, 1),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "client": client,
    }


async def _loadgen(
    binary: Path, requests: Sequence[tuple[str, bytes]], concurrency: int, region: str
) -> tuple[list[float], dict[int, int], float]:
    lines = b"".join(address.encode() + b"\t" + body + b"\n" for address, body in requests)
    process = await asyncio.create_subprocess_exec(
        str(binary),
        *("-c", str(concurrency), "-token", token(region)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(lines)
    if process.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.decode(errors='replace')[-500:]}")
    found = orjson.loads(out)
    if found["errors"]:
        raise RuntimeError(f"loadgen: {found['errors']} requests got no answer")
    statuses = {int(code): count for code, count in found["statuses"].items()}
    return list(found["seconds"] or []), statuses, float(found["total_seconds"])


async def _httpx_load(
    requests: Sequence[tuple[str, bytes]], concurrency: int, region: str
) -> tuple[list[float], dict[int, int], float]:
    headers = {"Authorization": f"Bearer {token(region)}", "Content-Type": "application/json"}
    seconds: list[float] = []
    statuses: dict[int, int] = {}
    pending = list(requests)

    async def worker(client: httpx.AsyncClient) -> None:
        while pending:
            address, body = pending.pop()
            started = time.perf_counter()
            answer = await client.post(address, content=body, headers=headers)
            seconds.append(time.perf_counter() - started)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        total = time.perf_counter() - started
    return seconds, statuses, total


_probes = iter(range(1, 1_000_000))

# How often a probe asks the ledger, and the dashboard, whether its record is there yet (each on its own
# schedule): the resolution of the latencies. Every request the probes send is counted and reported
# (`probe_polls_per_second`, `probe_requests_per_probe`), so that a reader can see they are few beside
# the load (bench/results/2026-12-07-national-62074x1-end-to-end/ANALYSIS.md).
PROBE_POLL_SECONDS = 0.01
# Batches in flight at once: the load is offered on its schedule (open loop), not only once intake has
# answered the one before (a closed loop offers less the slower intake is, and hides its queue).
SENDERS = 8


async def end_to_end(
    services: Services,
    villages: Sequence[str],
    rate: int,
    seconds: float,
    burst: float = 1.0,
    probe_every: float = 0.25,
    region: str = "37",
    poll_every: float = PROBE_POLL_SECONDS,
    senders: int = SENDERS,
) -> dict[str, Any]:
    """Records at `rate` per second (times `burst`) through intake's batch endpoint, a batch every 0.1 s
    with up to `senders` in flight, with probes: a consultation in a registered village no other probe is
    using, timed from intake's 202 to visible in the ledger's entry and in the dashboard's figures for that
    village (its count one higher), each asked every `poll_every` seconds. The villages are within
    `region` (a province), whose department sends and reads."""
    intake = f"http://127.0.0.1:{SERVICES['intake']}"
    ledger = f"http://127.0.0.1:{SERVICES['ledger']}"
    dashboard = f"http://127.0.0.1:{SERVICES['dashboard']}"
    headers = {"Authorization": f"Bearer {token(region)}"}
    now = datetime.now(UTC)
    month = now.astimezone(DEFAULT_ZONE).strftime("%Y-%m")
    to_ledger: list[float] = []
    to_dashboard: list[float] = []
    errors = 0
    sent = 0
    requests = 0

    def filler(count: int) -> list[dict[str, Any]]:
        return [
            {
                "kind": "consultation",
                "record": {
                    "id": str(uuid.uuid4()),
                    "advisor_id": "bench-load",
                    "village_code": f"{region}9{number % 900:03d}001{200 + number % 300:03d}",
                    "occurred_at": (now - timedelta(minutes=5)).isoformat(),
                    "channel": "phone",
                    "person_times": 1,
                    "topic": "land",
                },
            }
            for number in range(count)
        ]

    async def consultations(client: httpx.AsyncClient, village: str) -> float | None:
        figures = await client.get(
            f"{dashboard}/v1/regions/{village}/figures", params={"period": month}, headers=headers
        )
        return figures.json()["figures"].get("consultations", 0) if figures.status_code == 200 else None

    async def until_seen(ask: Callable[[], Awaitable[bool]], into: list[float], accepted: float) -> None:
        """Ask every `poll_every` seconds (or as soon as the answer before came, when it took longer) until
        `ask` says the record is there; its time since the 202 goes `into` the list."""
        nonlocal requests
        asked = accepted
        while time.perf_counter() < accepted + 120:
            requests += 1
            if await ask():
                into.append(time.perf_counter() - accepted)
                return
            asked += poll_every
            await asyncio.sleep(max(0.0, asked - time.perf_counter()))

    async def probe(client: httpx.AsyncClient) -> None:
        nonlocal requests
        village = villages[next(_probes) % len(villages)]
        requests += 2  # the village's count before, and the record
        before = await consultations(client, village)
        body = ConsultationRecorded(
            advisor_id="bench-probe",
            village_code=village,
            occurred_at=now - timedelta(minutes=5),
            recorded_by="bench",
            channel="phone",
            person_times=1,
            topic="land",
        ).model_dump(mode="json", exclude=set(SERVER_SET_FIELDS), exclude_none=True)
        body["id"] = str(uuid.uuid4())
        answer = await client.post(f"{intake}/v1/consultations", json=body, headers=headers)
        if answer.status_code != 202:
            return
        accepted = time.perf_counter()

        async def in_ledger() -> bool:
            return (await client.get(f"{ledger}/v1/entries/{body['id']}", headers=headers)).status_code == 200

        async def in_dashboard() -> bool:
            counted = await consultations(client, village)
            return counted is not None and before is not None and counted >= before + 1

        # Each service asked on its own schedule: one after the other, a slow answer from one delayed the
        # next question to the other (the dashboard's latencies held the ledger's request time).
        await asyncio.gather(
            until_seen(in_ledger, to_ledger, accepted), until_seen(in_dashboard, to_dashboard, accepted)
        )

    async def send(client: httpx.AsyncClient, records: list[dict[str, Any]]) -> None:
        nonlocal sent, errors
        try:
            answer = await client.post(f"{intake}/v1/batch", json={"records": records}, headers=headers)
            if answer.status_code == 200:
                sent += answer.json()["accepted"]
            else:
                errors += 1
        except httpx.HTTPError:
            errors += 1  # no answer (a timeout, a reset): counted, as a refusal is
        finally:
            in_flight.release()

    late: list[float] = []  # how late this process's own loop woke from a 10 ms sleep: the client's share

    async def watch_loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            late.append(time.perf_counter() - asked - 0.01)

    per_tick = max(1, int(rate * burst / 10))
    in_flight = asyncio.Semaphore(senders)
    stop_watching = asyncio.Event()
    watcher = asyncio.create_task(watch_loop(stop_watching))
    limits = httpx.Limits(max_connections=senders + 64, max_keepalive_connections=senders + 64)
    probes: list[asyncio.Task[None]] = []
    batches: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            started = time.perf_counter()
            next_probe = started
            tick = 0
            while time.perf_counter() - started < seconds:
                records = filler(per_tick)
                # All `senders` busy: the loop waits here, then sends the ticks it missed back to back (at
                # most `senders` at once), and the achieved rate shows what was not taken.
                await in_flight.acquire()
                batches.append(asyncio.create_task(send(client, records)))
                if time.perf_counter() >= next_probe:
                    probes.append(asyncio.create_task(probe(client)))
                    next_probe += probe_every
                services.sample_memory()
                tick += 1
                pause = started + tick * 0.1 - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            await asyncio.gather(*batches)
            offered = time.perf_counter() - started
            await asyncio.gather(*probes)
            drained = time.perf_counter() - started
    finally:
        for task in (*batches, *probes):
            task.cancel()  # (finished ones are left as they are; these are only left after a failure)
        stop_watching.set()
        await watcher
    return {
        "target_per_second": rate * burst,
        "achieved_per_second": round(sent / offered, 1),
        "records": sent,
        "errors": errors,
        "seconds_offered": round(offered, 1),
        "seconds_until_probes_seen": round(drained, 1),
        "probes": len(probes),
        "senders": senders,
        "probe_poll_ms": round(poll_every * 1000, 1),
        "probe_polls_per_second": round(requests / drained, 1),  # every request of the probes
        "probe_requests_per_probe": round(requests / max(1, len(probes)), 1),
        "to_ledger": latency_summary(to_ledger),
        "to_dashboard": latency_summary(to_dashboard),
        "client_loop_late": latency_summary(late),
    }


async def api_queries(
    url: str, targets: dict[str, str], period: str, repeat: int
) -> dict[str, dict[str, Any]]:
    """p50/p99 of a region's figures (with its children) at each level, through the dashboard's API."""
    found: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for level, code in targets.items():
            # the country is the Ministry's to read; every level below, the province's department
            caller = token(code, Role.ministry) if code == COUNTRY_CODE else token(code[:2])
            headers = {"Authorization": f"Bearer {caller}"}
            address = f"{url}/v1/regions/{code}/figures"
            await client.get(address, params={"period": period}, headers=headers)
            seconds = []
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await client.get(address, params={"period": period}, headers=headers)
                seconds.append(time.perf_counter() - started)
                answer.raise_for_status()
            found[level] = {"code": code, **latency_summary(seconds), "sample": answer.json()}
    return found
