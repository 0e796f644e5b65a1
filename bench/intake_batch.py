"""`python -m bench.intake_batch`: the benchmark's intake batch stage alone (issue 17), for comparing
versions of intake in one session: intake's `POST /v1/batch` (1,000 records per request, 4 at a time)
beside a bare producer sending records of the same kind with the same acknowledgements, as `bench/run.py`
measures them.

Starts the devstack's `bench` profile (Kafka 21092, PostgreSQL 21432) unless it is running. For each round
and each `--tree` in turn it starts intake from that tree's code (one uvicorn worker, as the benchmark
runs it), warms it up, then `--repeats` times measures the producer and intake one after the other, each
with records of its own (the committed Zaozhuang extract's villages, the three months before this one),
and stops intake. It prints each tree's ratio (intake's records/s over the producer's, summed over the
repeats); `--out` writes every measurement as JSON.

    python -m bench.intake_batch --tree /path/to/main --tree .   # main's intake and this checkout's
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import stages
from bench.province import province_regions
from bench.run import EXTRACT, recent_events
from contracts.envelope import to_kafka_record
from devstack.stack import PROFILES, status, up

PROVINCE = "37"
MONTHS = 3  # the months before this one the records are of: the extract's villages give ~10,000 a month


def start_intake(stack: stages.Stack, tree: Path) -> subprocess.Popen[bytes]:
    """Intake from `tree`'s code on the benchmark's port, ready."""
    port = stages.SERVICES["intake"]
    env = stack.env("intake", VC_HTTP_PORT=str(port), PYTHONPATH=str(tree))
    process = subprocess.Popen(
        [sys.executable, "-m", "services.intake"],
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"intake from {tree} did not get ready")
        time.sleep(0.3)


def commit_of(tree: Path) -> str:
    """The tree's commit, `-dirty` when its tracked files differ from it."""
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"],  # noqa: S607 - git from PATH, fixed arguments
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    return described.stdout.strip() or "(not a git checkout)"


def stop_intake(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def measure(stack: stages.Stack, tree: Path, records: int, repeats: int, seed: int) -> dict[str, Any]:
    """Intake from `tree` started once; then `repeats` times the producer and intake in turn, each with
    records of its own, so that both see the same moments of a shared machine."""
    regions = province_regions(EXTRACT, PROVINCE)
    url = f"http://127.0.0.1:{stages.SERVICES['intake']}"
    process = start_intake(stack, tree)
    producer: list[dict[str, Any]] = []
    intake: list[dict[str, Any]] = []
    try:
        # A warm-up: the first batches open the key store's pool and start the producer.
        await stages.intake_batch(url, recent_events(regions, 2000, seed, MONTHS))
        for repeat in range(repeats):
            anchor_events = recent_events(regions, records, seed + 2 * repeat + 1, MONTHS)
            intake_events = recent_events(regions, records, seed + 2 * repeat + 2, MONTHS)
            producer.append(await stages.produce(stack.kafka, [to_kafka_record(e) for e in anchor_events]))
            intake.append(await stages.intake_batch(url, intake_events))
    finally:
        stop_intake(process)
    producer_rate = sum(found["records"] for found in producer) / sum(found["seconds"] for found in producer)
    intake_rate = sum(found["accepted"] for found in intake) / sum(found["seconds"] for found in intake)
    return {
        "tree": str(tree),
        "producer": producer,
        "intake_batch": intake,
        "producer_per_second": round(producer_rate, 1),
        "intake_per_second": round(intake_rate, 1),
        "accepted": sum(found["accepted"] for found in intake),
        "rejected": sum(found["rejected"] for found in intake),
        "ratio": round(intake_rate / producer_rate, 3),
        "ratios": [
            round(ours["per_second"] / anchor["per_second"], 3)
            for ours, anchor in zip(intake, producer, strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake_batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tree", type=Path, action="append", help="a checkout whose intake to run (repeat to alternate)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--records", type=int, default=20_000, help="records per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="producer, then intake, this many times")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    trees = [tree.resolve() for tree in (args.tree or [stages.ROOT])]
    profile = PROFILES["bench"]
    if not all(status(profile).values()):
        up(profile)
    stack = stages.Stack(profile)
    found = []
    seed = args.seed
    for round_number in range(1, args.rounds + 1):
        for tree in trees:
            result = asyncio.run(measure(stack, tree, args.records, args.repeats, seed))
            seed += 100
            found.append({"round": round_number, "commit": commit_of(tree), **result})
            print(  # noqa: T201 - the command's output
                f"round {round_number} {found[-1]['commit']} ({tree}): "
                f"intake {result['intake_per_second']:,.0f} records/s "
                f"(accepted {result['accepted']}, rejected {result['rejected']}), "
                f"producer {result['producer_per_second']:,.0f} records/s, "
                f"ratio {result['ratio']} (each repeat: {result['ratios']})",
                flush=True,
            )
    if args.out is not None:
        args.out.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
