"""A projection that counts how often each event is applied: exactly once means every count is 1.

Run as a process (for crash tests): `python -m tests.support.counting NAME SCHEMA`; it reads the usual
settings from the environment (VC_FAILPOINTS, VC_BATCH_MAX_RECORDS, ...) and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from plumbing.clock import SystemClock
from plumbing.logs import configure_logging
from plumbing.postgres import Connection
from plumbing.projection import Batch, Projection
from plumbing.service import ProjectionHost
from plumbing.settings import ProjectionSettings
from tests.support.failpoints import Failpoints

MIGRATIONS = Path(__file__).resolve().parent / "counting_migrations"


async def apply_counts(conn: Connection, batch: Batch) -> None:
    if batch.events:
        await conn.executemany(
            """INSERT INTO applied (event_id, event_type, advisor_id, topic, partition, "offset")
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (event_id) DO UPDATE SET applications = applied.applications + 1""",
            [
                (
                    item.event.id,
                    item.event.type,
                    getattr(item.event.data, "advisor_id", ""),
                    item.topic,
                    item.partition,
                    item.offset,
                )
                for item in batch.events
            ],
        )
    if batch.conflicts:
        await conn.executemany(
            """INSERT INTO conflicts (event_id, topic, partition, "offset", first_offset)
               VALUES ($1, $2, $3, $4, $5)""",
            [
                (c.later.event.id, c.later.topic, c.later.partition, c.later.offset, c.first_offset)
                for c in batch.conflicts
            ],
        )


def counting_projection(
    name: str, schema: str, topics: tuple[str, ...] = ("village-services",)
) -> Projection:
    return Projection(name=name, schema=schema, topics=topics, migrations=MIGRATIONS, apply=apply_counts)


async def run_until_terminated(name: str, schema: str) -> None:
    settings = ProjectionSettings()
    configure_logging(f"counting-{name}", settings.log_level)
    host = ProjectionHost(counting_projection(name, schema), settings, SystemClock())
    host.hooks = Failpoints.from_environment()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    await host.start()
    try:
        while not stopping.is_set():
            if host.liveness().get("crashed"):
                raise SystemExit(3)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=0.5)
            except TimeoutError:
                continue
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(run_until_terminated(sys.argv[1], sys.argv[2]))
