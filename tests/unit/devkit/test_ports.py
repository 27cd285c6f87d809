from __future__ import annotations

from callstream.dev.ports import ephemeral_range
from callstream.dev.stack import s3
from devkit.ports import free_seaweed_block, seaweed_block


def test_a_private_seaweedfs_block_and_its_grpc_twins_stay_below_the_ephemeral_range() -> None:
    low = ephemeral_range()[0]
    for _ in range(20):
        ports = s3.ports(seaweed_block(free_seaweed_block())).values()
        assert max(ports) < low
        assert min(ports) >= 20_000  # above the ports `free_ports` hands out
