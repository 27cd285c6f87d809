from __future__ import annotations

import random

from callstream.dev.ports import ephemeral_range, free_port, free_ports
from callstream.dev.stack.process import port_free
from callstream.dev.stack.settings import StackSettings

__all__ = ["free_port", "free_ports", "free_seaweed_block"]


GRPC_TWIN = 10_000  # SeaweedFS serves gRPC this far above each server's port


def free_seaweed_block(tries: int = 50) -> int:
    """A port base for a private SeaweedFS whose ports are all free now: S3 at base+1,
    its servers around base, and every gRPC twin 10000 above, the twins too below the
    kernel's ephemeral range (`callstream.dev.ports` says why)."""
    span = max(StackSettings(seaweed_port_base=0).seaweed_ports.values())
    top = max(20_000, ephemeral_range()[0] - GRPC_TWIN - span - 1)
    for _ in range(tries):
        base = random.randint(20_000, top)
        stack = StackSettings(s3_port=base + 1, seaweed_port_base=base)
        ports = [stack.s3_port, *stack.seaweed_ports.values()]
        if all(port_free(port + twin) for port in ports for twin in (0, GRPC_TWIN)):
            return base
    raise OSError("no free block of ports for SeaweedFS")
