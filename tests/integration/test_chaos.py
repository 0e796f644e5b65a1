"""The acknowledged-write audit's short round (`python -m devstack.chaos`, a stack of its own): kill -9 of
the ledger, of the broker and of PostgreSQL under load lose, double and strand nothing intake acknowledged,
and each recovers within 15 s. The longer run writes bench/results/chaos.md (`bin/chaos --rounds 3`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devstack.chaos import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_round_of_every_scenario_loses_doubles_and_strands_nothing() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "devstack.chaos", "--seconds", "8", "--rate", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    rows = [line for line in finished.stdout.splitlines() if line.startswith("| ") and "|---" not in line]
    table = {row.split("|")[1].strip(): row for row in rows[1:]}
    assert set(table) == set(SCENARIOS), finished.stdout[-3000:] + finished.stderr[-3000:]
    assert finished.returncode == 0, finished.stdout[-3000:]
    for scenario, row in table.items():
        acknowledged = int(row.split("|")[3])
        assert acknowledged > 0, scenario
