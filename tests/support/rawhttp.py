"""HTTP/1.1 over a raw socket, for tests that must send exactly the bytes they mean:
requests are written by hand; answers are read with the standard library's parser."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from prometheus_client.parser import text_string_to_metric_families


class _Unclosable:
    """The socket's reader, shared by every answer on the connection (an answer's
    `close` would otherwise end the reader for the ones pipelined behind it)."""

    def __init__(self, reader: io.BufferedReader) -> None:
        self._reader = reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def close(self) -> None:
        pass


class _Source:
    def __init__(self, reader: _Unclosable) -> None:
        self._reader = reader

    def makefile(self, *args: object, **kwargs: object) -> _Unclosable:
        return self._reader


class Connection:
    def __init__(self, address: tuple[str, int], timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self._file = self.sock.makefile("rb")
        self._reader = _Unclosable(self._file)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, size: int) -> bytes:
        """The next `size` bytes the server sent, as they came (an interim answer too)."""
        return self._file.read(size)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The next answer on the connection: status, headers, body."""
        response = http.client.HTTPResponse(_Source(self._reader))  # type: ignore[arg-type]
        response.begin()
        return response.status, dict(response.getheaders()), response.read()

    def closed_within(self, seconds: float) -> float | None:
        """Seconds until the server closed the connection, or None if it did not in time."""
        started = time.monotonic()
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return time.monotonic() - started

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), as a client that gave up does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        self._file.close()  # the socket closes only once its reader is closed too
        self.sock.close()


def exchange(address: tuple[str, int], request: bytes) -> tuple[int, bytes]:
    """`request` sent on a connection of its own: the answer's status and body."""
    connection = Connection(address)
    try:
        connection.send(request)
        status, _, body = connection.answer()
    finally:
        connection.close()
    return status, body


def metric(address: tuple[str, int], name: str) -> float:
    """A sample without labels from the /metrics served at `address`."""
    _, body = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    raise AssertionError(f"{name} is not in /metrics at {address}")


def post(path: str, body: bytes = b"", *headers: bytes, length: bool = True) -> bytes:
    """A POST; `headers` are whole header lines without line ends."""
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: receiver", *headers]
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(path: str, body: bytes, *headers: bytes, size: int = 16 << 10) -> bytes:
    """A POST whose body is sent in chunks of `size`."""
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    head = post(path, b"", b"Transfer-Encoding: chunked", *headers, length=False)
    return head + chunks + b"0\r\n\r\n"


def flooded(address: tuple[str, int], head: bytes, count: int) -> list[Connection]:
    """`count` connections that each sent `head` and wait, once the server has had a second."""
    flood: list[Connection] = []
    try:
        for _ in range(count):
            flood.append(Connection(address))
            flood[-1].send(head)
    except BaseException:
        close_all(flood)
        raise
    time.sleep(1)
    return flood


def close_all(flood: list[Connection]) -> None:
    for connection in flood:
        connection.close()


class Floods(NamedTuple):
    first: int  # connections in the flood that grew the heap (closed)
    second: list[Connection]  # the flood measured (open)
    rss_kib: int  # the server's RSS under the first flood


@contextlib.contextmanager
def flood_on_a_grown_heap(
    address: tuple[str, int], head: bytes, bound: int, rss_kib: Callable[[], int]
) -> Iterator[Floods]:
    """Connections that each sent `head` and wait: 32 bounds of them, opened after a first
    flood of 4 bounds has grown the server's heap to where a flood leaves it (freed, not
    given back). Measured from there, the second flood's growth is its own, not the
    heap's warm-up."""
    first = flooded(address, head, bound * 4)
    try:
        rss = rss_kib()
    finally:
        close_all(first)
    second = flooded(address, head, bound * 32)
    try:
        yield Floods(len(first), second, rss)
    finally:
        close_all(second)
