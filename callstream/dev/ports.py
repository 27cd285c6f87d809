"""Ports for local processes that bind them a moment later (tests, benches, `callstream run`).

A port the kernel hands out for `bind(port 0)` comes from its ephemeral range, the same
range it takes source ports from for outgoing connections. Between the choice and the
process's own bind, any connection made meanwhile (a Kafka client's, a browser's) can take
that port, and the process then fails with "address already in use". So ports are chosen
below the ephemeral range, where no outgoing connection gets one, and below the local
stack's own ports (SeaweedFS from 19000; private ones the tests start from 20000).
"""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path
from typing import Final

from callstream.dev.stack.process import port_free

EPHEMERAL_RANGE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_DEFAULT: Final = (32768, 60999)
LOWEST: Final = 10_000
STACK_PORTS: Final = 19_000  # the local stack's SeaweedFS ports start here
TRIES: Final = 200
_SYSTEM_RANDOM: Final = secrets.SystemRandom()


def ephemeral_range(path: Path = EPHEMERAL_RANGE) -> tuple[int, int]:
    """The kernel's range for source ports (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return LINUX_DEFAULT
    return low, high


def chosen_range(path: Path = EPHEMERAL_RANGE) -> range:
    """Where `free_ports` chooses: from LOWEST up to the stack's ports or the ephemeral
    range, whichever comes first."""
    return range(LOWEST, min(STACK_PORTS, ephemeral_range(path)[0]))


def free_ports(count: int, preferred: int = 0) -> list[int]:
    """`count` distinct ports free now; `preferred` first when it is free."""
    candidates = chosen_range()
    tries = [preferred] if preferred else []
    tries += _SYSTEM_RANDOM.sample(candidates, min(TRIES, len(candidates)))
    ports = list(itertools.islice(filter(port_free, dict.fromkeys(tries)), count))
    if len(ports) < count:
        raise OSError(f"no {count} free ports in {candidates}")
    return ports


def free_port(preferred: int = 0) -> int:
    """One port free now: `preferred` when it is free."""
    return free_ports(1, preferred)[0]
