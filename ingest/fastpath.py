"""The callback fast path: a protocol in front of aiohttp that answers callback POSTs itself.

aiohttp's request machinery (request and response objects, the per-connection task,
header serialisation) costs about five times what reading a callback and handing it to
the producer does. Each connection starts here. Requests of the one shape the platform
sends (`ingest.head`) are answered by this protocol: parsed, admitted, published, and
answered from the producer's acknowledgement callback, with no task or coroutine per
request. The first request of any other shape (probes, metrics, gzip, chunked, a
malformed one) hands the connection, with every byte not yet answered, to aiohttp's own
protocol, which serves it from then on; so everything but the hot path is aiohttp's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ingest import head
from ingest.accept import Answer, Event, Ingest, admit, callback_kind, durable, prepare, store

log = logging.getLogger(__name__)

KEEPALIVE: Final = 75.0  # an idle connection is closed after this (aiohttp's default too)
INTERNAL_ERROR: Final = Answer(500, b'{"error":"internal error"}')


class CallbackServer(web.Server):
    """The server the site listens with: connections start on the fast path; `routed` is
    aiohttp's server for the app, which takes over connections the fast path hands off."""

    def __init__(self, routed: web.Server, ingest: Ingest) -> None:
        super().__init__(routed.request_handler, request_factory=routed.request_factory)
        self.routed = routed
        self.ingest = ingest
        self.fast: set[CallbackProtocol] = set()
        self._date = (0, b"")
        self._retry_after = str(ingest.settings.retry_after).encode()

    def __call__(self) -> CallbackProtocol:  # type: ignore[override]
        return CallbackProtocol(self)

    def render(self, answer: Answer, *, close: bool) -> bytes:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True).encode())
        return b"".join([
            _STATUS_LINES[answer.status],
            b"Content-Type: application/json\r\nContent-Length: ",
            b"%d" % len(answer.body),
            b"\r\nDate: ",
            self._date[1],
            b"\r\nRetry-After: " + self._retry_after if answer.retry_after else b"",
            b"\r\nConnection: close" if close else b"",
            b"\r\n\r\n",
            answer.body,
        ])  # fmt: skip

    def pre_shutdown(self) -> None:
        self.routed.pre_shutdown()
        for connection in list(self.fast):
            connection.close_when_idle()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - aiohttp's
        await asyncio.gather(self.routed.shutdown(timeout), self._finish_fast(timeout))

    async def _finish_fast(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Waits (up to `timeout`) for the callbacks in flight to be answered; closes all."""
        fast = list(self.fast)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(connection.answered() for connection in fast))
        for connection in fast:
            connection.abort()


_STATUS_LINES: Final = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus
}


class CallbackProtocol(asyncio.Protocol):
    """One connection, one request at a time; bytes that arrive meanwhile wait in a
    bounded buffer (reading pauses beyond it)."""

    def __init__(self, server: CallbackServer) -> None:
        self._server = server
        self._ingest = server.ingest
        self._body_limit = server.ingest.settings.body_limit
        self._buffer_limit = self._body_limit + head.MAX_HEAD
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._buffer = bytearray()
        self._wanted = 0  # bytes the buffer needs before the next parse can succeed
        self._event: Event | None = None  # the request being answered
        self._close_after = False
        self._closing = False
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self._activity = 0
        self._seen = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._answered: asyncio.Future[None] | None = None  # waited for at shutdown

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server's (uvloop's transports do not subclass asyncio's).
        self._transport = transport = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if peer else ""
        self._server.fast.add(self)
        self._idle_timer = asyncio.get_running_loop().call_later(KEEPALIVE, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()

    def data_received(self, data: bytes) -> None:
        self._activity += 1
        if self._event is not None or self._buffer:
            self._keep(data)
            if self._event is not None or len(self._buffer) < self._wanted:
                return
            data = bytes(self._buffer)
            self._buffer.clear()
        self._serve(data)

    def _serve(self, data: bytes) -> None:
        """Answers requests from the start of `data` until one must wait for Kafka."""
        while data and self._event is None and not self._closing:
            request = head.parse(data, self._body_limit)
            if isinstance(request, int):
                self._buffer += data
                self._wanted = request
                return
            if isinstance(request, head.Foreign):
                self._hand_off(data)
                return
            data = data[request.end :]
            try:
                self._begin(request)
            except Exception:  # noqa: BLE001 - logged by _internal_error; the client gets a 500
                self._answer(self._internal_error())
                return
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        """Holds bytes for later. While a request is being answered, reading pauses once
        the buffer passes its bound (`_finish` resumes it); otherwise the buffer holds at
        most one incomplete request, which `head.parse` bounds."""
        self._buffer += data
        if self._event is not None and not self._paused and len(self._buffer) > self._buffer_limit:
            self._pause(True)

    def _begin(self, request: head.Request) -> None:
        ingest = self._ingest
        fields = request.fields
        kind = callback_kind(request.kind)
        source = ingest.sources.resolve(self._peer, fields.forwarded_for)
        self._close_after = fields.close
        refused = admit(ingest, request.tenant, kind, request.key, source)
        if refused is not None:
            self._answer(refused)
            return
        event = prepare(
            ingest,
            request.tenant,
            kind,
            source=source,
            content_type=fields.content_type,
            body=request.body,
        )
        ingest.in_flight += 1
        self._event = event
        future = ingest.writer.send(event.topic, event.key, event.body, event.headers)
        if future is None:  # the spool's turn (or the hand-over's): the writer decides
            self._task = asyncio.get_running_loop().create_task(self._store(event))
        else:
            future.add_done_callback(self._acknowledged)

    def _acknowledged(self, future: asyncio.Future[Any]) -> None:
        event = self._event
        assert event is not None  # noqa: S101 - set until answered
        failure = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if failure is None:
            self._finish(event, durable(self._ingest, event, "kafka"))
            return
        self._ingest.writer.kafka_failed(failure)
        self._task = asyncio.get_running_loop().create_task(self._store(event))

    async def _store(self, event: Event) -> None:
        try:
            answer = await store(self._ingest, event)
        except Exception:  # noqa: BLE001 - logged by _internal_error; the client gets a 500
            answer = self._internal_error()
        self._finish(event, answer)

    def _internal_error(self) -> Answer:
        """Logs the exception being handled; the answer is a 500, then the connection closes."""
        log.exception("callback fast path failed")
        self._close_after = True
        return INTERNAL_ERROR

    def _finish(self, event: Event, answer: Answer) -> None:
        ingest = self._ingest
        ingest.in_flight -= 1
        ingest.metrics.count_request(event.tenant, event.kind, answer.status)
        self._event = None
        self._task = None
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)
        self._answer(answer)
        if self._buffer and not self._closing:
            data = bytes(self._buffer)
            self._buffer.clear()
            if self._paused:
                self._pause(False)
            self._serve(data)

    def _answer(self, answer: Answer) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        close = self._close_after or self._closing
        transport.write(self._server.render(answer, close=close))
        if close:
            self._closing = True
            transport.close()

    def _hand_off(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._paused:  # aiohttp's protocol expects a reading transport
            self._pause(False)
        self._forget()
        handler: RequestHandler = self._server.routed()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(data)

    def _pause(self, pause: bool) -> None:
        if self._transport is not None:
            self._paused = pause
            if pause:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _forget(self) -> None:
        self._server.fast.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._transport = None

    def _check_idle(self) -> None:
        if self._transport is None:
            return
        if self._activity == self._seen and self._event is None:
            self._transport.close()
            return
        self._seen = self._activity
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(KEEPALIVE, self._check_idle)

    def close_when_idle(self) -> None:
        """Shutting down: answer what is in flight, then close."""
        self._closing = True
        if self._event is None and self._transport is not None:
            self._transport.close()

    async def answered(self) -> None:
        """Returns once no request is in flight on this connection."""
        if self._event is not None:
            self._answered = asyncio.get_running_loop().create_future()
            await self._answered

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._task is not None:
            self._task.cancel()
