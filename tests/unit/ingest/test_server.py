"""`supervise`, in a process of its own: stopped by SIGTERM, it stops its workers and exits
0 however many more signals reach it on the way out (a process group signalled twice)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from callstream.dev.demo.procs import child_pids

SUPERVISOR = """
import sys
from ingest.server import supervise
worker = [sys.executable, "-c", "import time; time.sleep(600)"]
sys.exit(supervise([worker, worker]))
"""


def test_signals_during_the_stop_do_not_end_the_supervisor_by_signal() -> None:
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR],
        env={**os.environ, "PYTHONPATH": str(root)},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(child_pids(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.01)
        # Every millisecond until it is gone, so one lands while Python shuts down.
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the supervisor did not stop"
            os.killpg(proc.pid, signal.SIGTERM)
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == 0
