"""`python -m bench.decode`: the projections' decoding alone, part by part, beside `orjson.loads` of the
same values in the same run. No broker, no database.

The load is the benchmark's (`bench.province` over the committed Zaozhuang extract: its registry, then its
records), encoded as intake encodes them (`to_kafka_record`), cut into a rebuild's batches and decoded with
the runtime's own `decode_records`, which the consumer ceiling (`bench.ceiling`) and every projection run.
Then each part of it alone over the same records, so a change to decoding can be measured side by side:

    python -m bench.decode               # the mix of a month: registry and records
    python -m bench.decode --gc default  # the same with Python's default collector (the runtime tunes it)

Prints one JSON object: µs per record of the whole and of each part, and the ratio to `orjson.loads`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from bench.province import Load, province_regions, record_events, registry_events
from bench.run import EXTRACT
from contracts.envelope import content_fingerprint, from_kafka_record, payload_values
from plumbing.projection import consumer_record, decode_records
from plumbing.service import tune_collector
from plumbing.tracing import from_kafka_headers

BATCH = 10_000


def consumer_records(months: int, seed: int) -> list[ConsumerRecord[bytes, bytes]]:
    load = Load(province_regions(EXTRACT, "37"), date(2025, 1, 1), months, seed)
    events = [*registry_events(load), *record_events(load)]
    return [consumer_record(event, event.topic, 0, offset) for offset, event in enumerate(events)]


def best_of(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def measure(months: int, seed: int, repeat: int, tuned: bool) -> dict[str, Any]:
    records = consumer_records(months, seed)
    if tuned:
        tune_collector()
    batches: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = []
    for start in range(0, len(records), BATCH):
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for record in records[start : start + BATCH]:
            batch.setdefault(TopicPartition(record.topic, 0), []).append(record)
        batches.append(batch)
    decoded = [decode_records(batch) for batch in batches]
    if any(poison for _, poison in decoded):
        raise RuntimeError("the load has records its contracts refuse: the measurement would not be of them")
    events = [item.event for found, _ in decoded for item in found]
    values = [payload_values(event.data) for event in events]
    count = len(records)
    parts: dict[str, Callable[[], object]] = {
        "decode_records": lambda: [decode_records(batch) for batch in batches],
        "from_kafka_record": lambda: [
            from_kafka_record(r.topic, r.key, r.value, list(r.headers or ())) for r in records
        ],
        "payload_values": lambda: [payload_values(event.data) for event in events],
        "content_fingerprint": lambda: [
            content_fingerprint(event, value) for event, value in zip(events, values, strict=True)
        ],
        "from_kafka_headers": lambda: [from_kafka_headers(r.headers) for r in records],
        "orjson.loads (anchor)": lambda: [orjson.loads(r.value) for r in records if r.value],
    }
    micros = {name: round(best_of(repeat, work) / count * 1e6, 2) for name, work in parts.items()}
    anchor = micros["orjson.loads (anchor)"]
    by_type: dict[str, list[ConsumerRecord[bytes, bytes]]] = {}
    for record in records:
        kind = dict(record.headers)["ce_type"].decode()
        by_type.setdefault(kind, []).append(record)
    per_type = {
        kind: {
            "records": len(found),
            "from_kafka_record_us": round(
                best_of(
                    repeat,
                    lambda found=found: [  # type: ignore[misc]
                        from_kafka_record(r.topic, r.key, r.value, list(r.headers or ())) for r in found
                    ],
                )
                / len(found)
                * 1e6,
                2,
            ),
        }
        for kind, found in sorted(by_type.items(), key=lambda item: -len(item[1]))
    }
    return {
        "records": count,
        "gc": "tuned as the runtime's processes" if tuned else "default",
        "us_per_record": micros,
        "from_kafka_record_by_type": per_type,
        "decode_records_per_second": round(1e6 / micros["decode_records"], 1),
        "decode_records_vs_anchor": round(micros["decode_records"] / anchor, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode")
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gc", choices=("tuned", "default"), default="tuned")
    args = parser.parse_args(argv)
    found = measure(args.months, args.seed, args.repeat, args.gc == "tuned")
    print(json.dumps(found, indent=2, ensure_ascii=False), file=sys.stdout)  # noqa: T201 - the result
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
