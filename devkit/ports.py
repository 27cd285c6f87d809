from __future__ import annotations

import random

from callstream.dev.ports import ephemeral_range, free_port, free_ports
from callstream.dev.stack import s3
from callstream.dev.stack.process import port_free
from callstream.dev.stack.settings import StackSettings

__all__ = ["free_port", "free_ports", "free_seaweed_block", "seaweed_block"]


def seaweed_block(base: int) -> StackSettings:
    """A private SeaweedFS's settings for a port base: S3 at base+1, its servers around it."""
    return StackSettings(s3_port=base + 1, seaweed_port_base=base)


def free_seaweed_block(tries: int = 50) -> int:
    """A port base for a private SeaweedFS whose ports (`s3.ports`, gRPC twins included) are
    all free now and below the kernel's ephemeral range (`callstream.dev.ports` says why)."""
    reach = max(s3.ports(seaweed_block(0)).values())
    top = max(20_000, ephemeral_range()[0] - reach - 1)
    for _ in range(tries):
        base = random.randint(20_000, top)
        if all(map(port_free, s3.ports(seaweed_block(base)).values())):
            return base
    raise OSError("no free block of ports for SeaweedFS")
