"""`python -m bench.ceiling [--decode]`: how fast one Python process can read the projections' input
topics from offset 0 to their end, as a rebuild's runner reads them (no group, every partition assigned,
read-committed, a rebuild's batch size), and with `--decode` also decode every batch with the runtime's
own `decode_records` (each record validated against its contract, its values and fingerprint computed),
writing nothing; with the cyclic collector tuned as a rebuild's process tunes it. Prints {"events",
"poison", "seconds", "per_second"} as JSON.

This is the ceiling of any projection in this runtime: a projection does all of this and then writes. The
benchmark runs it in a process of its own beside the rebuilds (bench/stages.py `consumer_ceiling`), so
the issue's "each projection alone ≥ 0.2 of COPY" can be read against what reading and decoding alone
reach on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiokafka import TopicPartition

from contracts.topics import REGISTRY, VILLAGE_SERVICES
from plumbing.kafka import create_consumer, topic_partitions
from plumbing.projection import decode_records
from plumbing.service import tune_collector
from plumbing.settings import ProjectionSettings

# What every projection reads (the ledger, the assessment and the dashboard all consume both).
TOPICS = (VILLAGE_SERVICES, REGISTRY)


async def read_to_end(decode: bool) -> dict[str, float]:
    settings = ProjectionSettings()
    kafka = settings.kafka_connection()
    partitions = await topic_partitions(kafka, TOPICS)
    consumer = create_consumer(
        kafka,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max(settings.batch_max_records, settings.rebuild_batch_max_records),
    )
    await consumer.start()
    events = poison = 0
    try:
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            fetched = await consumer.getmany(timeout_ms=settings.poll_timeout_ms)
            for tp, records in fetched.items():
                events += len(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if decode and fetched:
                poison += len(decode_records(fetched)[1])
            for tp in list(remaining):  # a transaction's marker may be the partition's last offset
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {
        "events": events,
        "poison": poison,
        "seconds": round(seconds, 3),
        "per_second": round(events / seconds, 1) if seconds > 0 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--decode", action="store_true", help="decode each batch as the projections do")
    args = parser.parse_args(argv)
    tune_collector()  # as a rebuild's process does (plumbing/service.py) before its work
    print(json.dumps(asyncio.run(read_to_end(args.decode))), file=sys.stdout)  # noqa: T201 - the result
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
