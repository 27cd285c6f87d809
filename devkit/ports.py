from __future__ import annotations

import contextlib
import random
import socket

from callstream.dev.stack.process import port_free
from callstream.dev.stack.settings import StackSettings


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all held open while choosing, so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]


def free_seaweed_block(tries: int = 50) -> int:
    """A port base for a private SeaweedFS whose ports are all free now: S3 at base+1,
    its servers around base, and every gRPC twin 10000 above (all below 65536)."""
    for _ in range(tries):
        base = random.randint(20_000, 30_000)
        stack = StackSettings(s3_port=base + 1, seaweed_port_base=base)
        ports = [stack.s3_port, *stack.seaweed_ports.values()]
        if all(port_free(port + twin) for port in ports for twin in (0, 10_000)):
            return base
    raise OSError("no free block of ports for SeaweedFS")
