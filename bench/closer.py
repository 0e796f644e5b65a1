"""`python -m bench.closer --now ISO`: one pass of the assessment's closer over every (advisor, village)
pair in the database, with the clock at `--now`; prints {"pairs", "outputs", "seconds"} as JSON.
The benchmark runs it in a process of its own (bench/stages.py `closer_pass`) to read its peak memory."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime

from contracts.topics import ASSESSMENT, TOPIC_BY_NAME
from plumbing.clock import ManualClock
from plumbing.kafka import create_producer, ensure_topics
from plumbing.postgres import create_pool
from services.assessment import queries
from services.assessment.closing import Closer
from services.assessment.settings import AssessmentSettings


async def one_pass(now: datetime) -> dict[str, float]:
    settings = AssessmentSettings()
    kafka = settings.kafka_connection()
    await ensure_topics(kafka, [TOPIC_BY_NAME[ASSESSMENT]])
    pool = await create_pool(settings.database_url, "assessment", 2)
    producer = create_producer(kafka, "bench-closer")
    await producer.start()
    try:
        async with pool.acquire() as conn:
            pairs = len(await queries.all_pairs(conn))
        closer = Closer(
            pool, producer, ManualClock(now), settings.kafka_timeout_seconds, settings.close_chunk_pairs
        )
        started = time.perf_counter()
        outputs = await closer.run()
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
        await pool.close()
    return {"pairs": pairs, "outputs": outputs, "seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.closer")
    parser.add_argument("--now", required=True, type=datetime.fromisoformat, help="the clock, with a zone")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(one_pass(args.now))), file=sys.stdout)  # noqa: T201 - the result
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
