"""The acknowledged-write audit's short round (`python -m devstack.chaos`, a stack of its own): every
single-broker scenario of issue 14 (the three-broker cluster's: test_chaos_cluster.py) under a short load —
kill -9 and SIGTERM of each consumer, kill -9 of the broker and of PostgreSQL, PostgreSQL refusing writes,
latency, resets, a hang and half-open connections between the services and PostgreSQL, rebalances, a
blue-green rebuild and intake overloaded — loses, doubles, dead-letters and strands nothing intake
acknowledged in any projection, passes each scenario's checks, and recovers. The soak writes
bench/results/chaos.md with the recovery times against the 15 s target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devstack.chaos import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_round_of_every_scenario_loses_doubles_and_strands_nothing() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "devstack.chaos", "--seconds", "5", "--rate", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    rows = [line for line in finished.stdout.splitlines() if line.startswith("| ") and "|---" not in line]
    assert rows, finished.stdout[-3000:] + finished.stderr[-3000:]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    table = {
        cells[0]: dict(zip(header, cells, strict=True))
        for cells in ([cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:])
    }
    assert set(table) == set(SCENARIOS), finished.stdout[-3000:] + finished.stderr[-3000:]
    for scenario, figures in table.items():
        assert int(figures["acknowledged"]) > 0, scenario
        wrong = {
            column: figures[column]
            for column in ("lost", "doubled", "dead-lettered", "stuck", "other 5xx", "given up", "never sent")
            if figures[column] != "0"
        }
        assert wrong == {}, (scenario, finished.stdout[-3000:])
        assert figures["checks"] == "ok", (scenario, figures["checks"])
        # Recovered at all; the 15 s target is the soak's (bench/results/chaos.md): on a shared 2-core
        # machine a short round's timing is not a stable test.
        assert figures["recovery (s)"] != "not within 90", scenario
