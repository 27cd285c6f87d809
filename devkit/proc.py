"""A local process's resources, read from /proc (benchmarks and tests)."""

from __future__ import annotations

import os
from pathlib import Path


def status_kib(pid: int, field: str) -> int:
    """A size from /proc/PID/status (`VmRSS`, `VmHWM`, …), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} for process {pid}")


def open_files(pid: int) -> int:
    """The descriptors the process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))
