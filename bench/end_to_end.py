"""`python -m bench.end_to_end`: the benchmark's end-to-end stage alone, in variants side by side, on the
stack a benchmark run left loaded (`VC_BENCH_KEEP_STACK=1 bin/bench ...`, with the same load options
here). The services are started once; each round runs every `--variant` in turn, each after the services
caught up, so the variants see the same stack, the same data and the machine of the same minutes. A
variant is `poll=MS,senders=N`: how often each probe asks the ledger and the dashboard, and how many of
the load's batches may be in flight (1: the next batch only once intake answered the one before). With
`--tree` (repeat), each round runs the services from each checkout's code in turn (started, the
variants, stopped; each tree first in turn): versions of the services compared on the same stack and
minutes.

    VC_BENCH_KEEP_STACK=1 bin/bench --national --villages 62074 --months 1 --growth '' \\
        --skip alone,closer --rebuild-workers 1
    python -m bench.end_to_end --national --villages 62074 --variant poll=10,senders=1 \\
        --variant poll=50,senders=8 --rounds 2 --out bench/results/DAY-end-to-end-probes/result.json
    python -m bench.end_to_end --national --villages 62074 --variant poll=10 --tree /tmp/before --tree .
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import stages
from bench.intake_batch import commit_of
from bench.live_batches import in_turn
from bench.province import Load
from bench.run import Config, load_regions, log, writing_regions
from devstack.stack import PROFILES

BATCHES = {"vc_projection_batch_seconds_bucket": "seconds", "vc_projection_batch_records_bucket": "records"}
PHASES = "vc_projection_batch_phase_seconds_sum"


def read_batches(text: str, found: dict[str, dict[str, dict[str, float]]]) -> None:
    """A projection's /metrics into `found`: projection → seconds|records → bucket → batches, and
    projection → phase_seconds → phase → seconds spent in it."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in BATCHES:
                what, key = BATCHES[sample.name], sample.labels["le"]
            elif sample.name == PHASES:
                what, key = "phase_seconds", sample.labels["phase"]
            else:
                continue
            found.setdefault(sample.labels["projection"], {}).setdefault(what, {})[key] = sample.value


async def batch_buckets() -> dict[str, dict[str, dict[str, float]]]:
    """Each projection's batches so far, from its /metrics (`read_batches`)."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name in stages.PROJECTIONS:
            read_batches((await client.get(f"http://127.0.0.1:{stages.SERVICES[name]}/metrics")).text, found)
    return found


def bucket_deltas(
    before: dict[str, dict[str, dict[str, float]]], after: dict[str, dict[str, dict[str, float]]]
) -> dict[str, dict[str, dict[str, float]]]:
    """What happened between two readings: batches per bucket (cumulative, as Prometheus counts them) and
    seconds per phase."""
    return {
        projection: {
            what: {
                key: round(value - before.get(projection, {}).get(what, {}).get(key, 0.0), 3)
                for key, value in values.items()
            }
            for what, values in kinds.items()
        }
        for projection, kinds in after.items()
    }


def variant(text: str) -> dict[str, float]:
    """`poll=MS,senders=N` as end_to_end's arguments; each part checked."""
    found: dict[str, float] = {"poll": stages.PROBE_POLL_SECONDS * 1000, "senders": stages.SENDERS}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in found or not value.strip().replace(".", "", 1).isdigit():
            raise SystemExit(f"--variant: {part!r} is not poll=MS or senders=N")
        found[name.strip()] = float(value)
    if found["poll"] <= 0 or found["senders"] < 1:
        raise SystemExit(f"--variant {text!r}: poll must be above 0 ms and senders at least 1")
    return found


async def rounds(
    services: stages.Services,
    villages: list[str],
    writer: str,
    variants: list[dict[str, float]],
    count: int,
    rate: int,
    seconds: float,
    burst: float,
    first: int = 1,
) -> list[dict[str, Any]]:
    """`count` rounds (numbered from `first`) of every variant on the running `services`."""
    measured: list[dict[str, Any]] = []
    for number in range(first - 1, first - 1 + count):
        for chosen in variants:
            before = await batch_buckets()  # (each round ends caught up: the next starts from rest)
            found = await stages.end_to_end(
                services,
                villages,
                rate,
                seconds,
                burst=burst,
                region=writer,
                poll_every=chosen["poll"] / 1000,
                senders=int(chosen["senders"]),
            )
            found["round"] = number + 1
            found["commit"] = commit_of(services.tree)
            await services.caught_up()  # the batches that drained this round's load belong to it
            found["batches"] = bucket_deltas(before, await batch_buckets())
            log(f"round {number + 1}, {chosen}: {found}")
            measured.append(found)
    return measured


def table(measured: list[dict[str, Any]]) -> str:
    lines = [
        "| round | commit | poll (ms) | senders | achieved of offered (records/s) | probes | polls/s "
        "| p50 / p99 to ledger (ms) | p50 / p99 to dashboard (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for found in measured:
        lines.append(
            f"| {found['round']} | {found.get('commit', '')} | {found['probe_poll_ms']} | {found['senders']} "
            f"| {found['achieved_per_second']} of {found['target_per_second']} | {found['probes']} "
            f"| {found['probe_polls_per_second']} "
            f"| {found['to_ledger']['p50_ms']} / {found['to_ledger']['p99_ms']} "
            f"| {found['to_dashboard']['p50_ms']} / {found['to_dashboard']['p99_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end", description=__doc__.split("\n\n")[0])
    parser.add_argument("--province", default="37")
    parser.add_argument("--villages", type=int, default=None)
    parser.add_argument("--national", action="store_true")
    parser.add_argument("--variant", action="append", type=variant, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=Config.steady_rate)
    parser.add_argument("--seconds", type=float, default=Config.steady_seconds)
    parser.add_argument("--burst", type=float, default=1.0)
    parser.add_argument(
        "--tree", type=Path, action="append", default=None, help="a checkout whose services to run (repeat)"
    )
    parser.add_argument("--out", type=Path, default=None, help="writes every measurement as JSON")
    args = parser.parse_args(argv)
    config = Config(province=args.province, villages=args.villages, national=args.national, months=1)
    regions = load_regions(config)
    writer, _ = writing_regions(regions)
    load = Load(regions, date(config.year, 1, 1), config.months, config.seed)
    villages = [village for village in load.villages if village.startswith(writer)]
    stack = stages.Stack(PROFILES["bench"])
    trees = [tree.resolve() for tree in (args.tree or [stages.ROOT])]
    measured: list[dict[str, Any]] = []
    # One tree: its services run through every round. Several: each round starts each tree's in turn.
    for first in [1] if len(trees) == 1 else range(1, args.rounds + 1):
        for tree in in_turn(trees, first):
            services = stages.Services(stack, tree=tree)
            services.start()
            try:
                measured += asyncio.run(
                    rounds(  # each round before ended caught up: these services start at rest
                        services,
                        villages,
                        writer,
                        args.variant,
                        args.rounds if len(trees) == 1 else 1,
                        args.rate,
                        args.seconds,
                        args.burst,
                        first,
                    )
                )
            finally:
                services.stop()
    print(table(measured))  # noqa: T201 - the command's answer
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(measured, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
