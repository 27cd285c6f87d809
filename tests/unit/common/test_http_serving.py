from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from common.http_serving import HEAD_LIMITS, Handler, Listen, ServerMetrics, serving_http


async def hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text="ok")


def an_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    return app


def listen(limit: int = 8, keepalive: float = 75.0) -> Listen:
    return Listen("tests.serving", "127.0.0.1", 0, limit, "CALLSTREAM_X", keepalive=keepalive)


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return answer


def samples(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.parametrize("handler", [an_app(), hello], ids=["application", "low-level"])
async def test_connections_past_the_bound_close_the_oldest(
    handler: web.Application | Handler,
) -> None:
    async with serving_http(handler, listen(limit=3)) as served:
        peers = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(5)]
        for _, writer in peers:
            writer.write(b"GET / HTTP/1.1\r\n")
            await asyncio.sleep(0.01)  # accepted in this order
        oldest = await asyncio.wait_for(peers[0][0].read(), 2)
        assert oldest == b"", "the oldest connection was closed without an answer"
        assert served.bound.open == 3
        assert await exchange(served.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") == (
            b"HTTP/1.1 200 OK\r\n"
        )
        for _, writer in peers:
            writer.close()


async def test_heads_over_the_limits_are_refused_counted_and_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    field = b"X: " + b"a" * (HEAD_LIMITS["max_field_size"] + 1) + b"\r\n"
    many = b"".join(b"X-%d: a\r\n" % i for i in range(HEAD_LIMITS["max_headers"] + 1))
    registry = CollectorRegistry()
    metrics = ServerMetrics("callstream_test", "CALLSTREAM_X")
    registry.register(metrics)
    with caplog.at_level(logging.DEBUG):
        async with serving_http(an_app(), listen()) as served:
            metrics.served = served
            for head in (field, many):
                request = b"GET / HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n"
                assert (await exchange(served.port, request)).startswith(b"HTTP/1.0 400")
            assert await exchange(served.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") == (
                b"HTTP/1.1 200 OK\r\n"
            )
            seen = samples(registry)
    assert seen["callstream_test_malformed_requests_total"] == 2
    assert seen["callstream_test_connections"] >= 0
    assert seen["callstream_test_connections_closed_at_bound_total"] == 0
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_options_given_win_over_the_defaults() -> None:
    wide = {"max_field_size": 8190}
    async with serving_http(an_app(), listen(), **wide) as served:
        request = b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 4000 + b"\r\n\r\n"
        assert await exchange(served.port, request) == b"HTTP/1.1 200 OK\r\n"


async def test_an_idle_connection_is_closed_after_the_keepalive() -> None:
    async with serving_http(an_app(), listen(keepalive=0.3)) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 3)  # until the server closes
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"ok")


async def test_the_socket_is_closed_on_leaving() -> None:
    async with serving_http(an_app(), listen()) as served:
        port = served.port
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
