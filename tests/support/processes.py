"""callstream consumer services as real processes, for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from devkit.ports import free_port


def start_service(
    name: str, env: dict[str, str], log: Path, *, metrics_port: int | None = None
) -> subprocess.Popen[bytes]:
    """`callstream NAME` with `env` added, its output appended to `log`; its probes on
    `metrics_port` (a free port if not given)."""
    port = metrics_port or free_port()
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "callstream", name, "--metrics-port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )


def run_callstream(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`callstream ARGS…` to completion with `env` added; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "callstream", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_service(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM (after SIGCONT, should a test have frozen it); SIGKILL after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGCONT)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
