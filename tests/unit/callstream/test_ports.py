from __future__ import annotations

import socket
from pathlib import Path

from callstream.dev.ports import LINUX_DEFAULT, chosen_range, ephemeral_range, free_port, free_ports
from callstream.dev.stack.process import port_free


def test_ports_are_free_distinct_and_below_the_range_outgoing_connections_use() -> None:
    low = ephemeral_range()[0]
    ports = free_ports(40)
    assert len(set(ports)) == 40
    assert all(port < low and port in chosen_range() for port in ports)
    assert all(map(port_free, ports))


def test_a_preferred_port_is_given_when_free_and_passed_over_when_taken() -> None:
    wanted = free_port()
    assert free_port(wanted) == wanted
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", wanted))
        holder.listen()
        other = free_port(wanted)
    assert other != wanted
    assert other in chosen_range()


def test_the_range_ends_at_the_kernels_ephemeral_range(tmp_path: Path) -> None:
    narrow = tmp_path / "ip_local_port_range"
    narrow.write_text("15000\t60999\n")
    assert ephemeral_range(narrow) == (15000, 60999)
    assert chosen_range(narrow) == range(10_000, 15_000)
    assert ephemeral_range(tmp_path / "missing") == LINUX_DEFAULT
    assert chosen_range(tmp_path / "missing") == range(10_000, 19_000)
