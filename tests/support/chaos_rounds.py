"""The chaos tests' two short rounds (tests/integration/test_chaos.py: one broker; test_chaos_cluster.py:
three brokers) run side by side, each on its stack of its own (devstack/chaos.py gives each its own ports
and data), while no other test runs: they wait mostly on brokers and services coming back, so side by side
they take little longer than the longer one, where one after the other took both (about 5 minutes of the
suite's 20 on a 2-core machine). Each round's time limits are generous (recovery within 90 s); the 15 s
target is the soak's.

The overload scenario runs after them, alone: it checks that intake refuses what it cannot take, and
beside another round its load generator is starved of the cores and does not overload intake (seen on
CI: "intake never answered 429/503 under overload")."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.chaos import SUITE_ROUND
from devstack.stack import ROOT

LIMIT_SECONDS = 900
ALONE = ("overload",)
SHORT = ["--seconds", "5", "--rate", "8", "--scenarios"]
# Phases one after the other; the rounds of a phase side by side.
PHASES: tuple[dict[str, list[str]], ...] = (
    {
        "single": [*SHORT, ",".join(name for name in SUITE_ROUND if name not in ALONE)],
        "cluster": ["--short-cluster", "--seconds", "4", "--rate", "5"],
    },
    {"alone": [*SHORT, ",".join(ALONE)]},
)


@dataclass(frozen=True)
class Round:
    returncode: int | None  # None: killed at the limit
    stdout: str
    stderr: str

    def output(self) -> str:
        """The ends of what it printed, for an assertion's message."""
        return self.stdout[-3000:] + self.stderr[-3000:]

    def table(self) -> dict[str, dict[str, str]]:
        """The report's table: scenario → column → cell."""
        rows = [line for line in self.stdout.splitlines() if line.startswith("| ") and "|---" not in line]
        if not rows:
            return {}
        header = [cell.strip() for cell in rows[0].strip("|").split("|")]
        return {
            cells[0]: dict(zip(header, cells, strict=True))
            for cells in ([cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:])
        }


def run_rounds(
    phases: tuple[dict[str, list[str]], ...] = PHASES, limit: float = LIMIT_SECONDS
) -> dict[str, Round]:
    """Each phase's rounds started at once, each writing to files of its own (a pipe read after another
    process's end could fill and stall the round writing to it), all waited for before the next phase;
    every round within `limit` seconds of the first's start."""
    deadline = time.monotonic() + limit
    rounds: dict[str, Round] = {}
    with tempfile.TemporaryDirectory(prefix="chaos-rounds-") as folder:
        for commands in phases:
            started: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
            for name, arguments in commands.items():
                out, err = Path(folder) / f"{name}.out", Path(folder) / f"{name}.err"
                with out.open("wb") as stdout, err.open("wb") as stderr:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "devstack.chaos", *arguments],
                        cwd=ROOT,
                        stdout=stdout,
                        stderr=stderr,
                    )
                started[name] = (process, out, err)
            for name, (process, out, err) in started.items():
                try:
                    code: int | None = process.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    code = None
                rounds[name] = Round(code, out.read_text(errors="replace"), err.read_text(errors="replace"))
    return rounds
