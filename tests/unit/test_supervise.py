"""bin/supervise starts a command again whenever it exits, and stops it with itself (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


async def test_a_command_that_exits_is_started_again_and_ends_with_its_supervisor(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    script = (
        "import os, pathlib, signal, sys, time\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "runs.open('a').write(f'{os.getpid()}\\n')\n"
        "if len(runs.read_text().split()) < 2:\n"
        "    sys.exit(70)\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "time.sleep(120)\n"
    )
    supervisor = subprocess.Popen([ROOT / "bin" / "supervise", sys.executable, "-c", script], cwd=ROOT)
    try:

        async def started() -> list[str]:
            return runs.read_text().split() if runs.exists() else []

        pids = await eventually(started, lambda found: len(found) == 2, seconds=30, what="a second start")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(int(pids[1]), 0)  # the command ended with its supervisor, which waited for it
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
