"""A local process's resources, read from /proc (benchmarks and tests)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil


def status_kib(pid: int, field: str) -> int:
    """A size from /proc/PID/status (`VmRSS`, `VmHWM`, …), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"no {field} for process {pid}")


def open_files(pid: int) -> int:
    """The descriptors the process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def connections_on(pid: int, port: int) -> int:
    """The TCP connections on `port` that the process holds a descriptor for, its
    listening socket aside (those it has not yet seen closed by the peer among them)."""
    return sum(
        1
        for connection in psutil.Process(pid).net_connections("tcp")
        if connection.laddr.port == port and connection.status != psutil.CONN_LISTEN
    )


def connections_settle(pid: int, port: int, at_most: int, within: float = 2.0) -> int:
    """The connections the process holds on `port` once they are `at_most` or fewer, or
    the last count seen when they are not within `within` seconds (a server closes
    connections on later turns of its loop than the one that accepted them)."""
    deadline = time.monotonic() + within
    held = connections_on(pid, port)
    while held > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
        held = connections_on(pid, port)
    return held
