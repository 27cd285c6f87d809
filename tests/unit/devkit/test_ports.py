from __future__ import annotations

from callstream.dev.ports import ephemeral_range
from callstream.dev.stack.settings import StackSettings
from devkit.ports import GRPC_TWIN, free_seaweed_block


def test_a_private_seaweedfs_block_and_its_grpc_twins_stay_below_the_ephemeral_range() -> None:
    low = ephemeral_range()[0]
    for _ in range(20):
        base = free_seaweed_block()
        stack = StackSettings(s3_port=base + 1, seaweed_port_base=base)
        ports = [stack.s3_port, *stack.seaweed_ports.values()]
        assert max(ports) + GRPC_TWIN < low
        assert min(ports) >= 20_000  # above the ports `free_ports` hands out
