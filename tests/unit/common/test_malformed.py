from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from common.malformed import MalformedRequests, http_log

HTTP_LOG = "tests.http"


async def answer(request: web.BaseRequest) -> web.Response:
    if request.path == "/fail":
        raise RuntimeError("a bug in the handler")
    return web.Response(text="ok")


async def status_of(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return line.split()[1]


async def test_a_request_the_parser_refuses_is_counted_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    malformed = MalformedRequests()
    with http_log(malformed, HTTP_LOG) as logger, caplog.at_level(logging.DEBUG, logger=HTTP_LOG):
        server = web.Server(answer, logger=logger)
        listener = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            assert (
                await status_of(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
                == b"400"
            )
            assert await status_of(port, b"GET / HTTP/1.1\nHost: t\n\n") == b"400"
            assert await status_of(port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") == b"200"
            assert await status_of(port, b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n") == b"500"
        finally:
            listener.close()
            await server.shutdown(1.0)
    assert malformed.count == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the handler's bug is still logged
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


def test_the_filter_is_removed_on_leaving() -> None:
    malformed = MalformedRequests()
    with http_log(malformed, HTTP_LOG) as logger:
        assert malformed in logger.filters
    assert malformed not in logger.filters
