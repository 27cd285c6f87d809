"""callstream consumer services as real processes, for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.ports import free_port


def start_service(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`callstream NAME` with `env` added, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "callstream", name, "--metrics-port", str(free_port())],
            env={**os.environ, **env}, stdout=out, stderr=out,
        )  # fmt: skip


def run_callstream(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`callstream ARGS…` to completion with `env` added; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "callstream", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
