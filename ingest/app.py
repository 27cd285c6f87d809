"""The receiver's HTTP side: aiohttp's low-level server with one handler that dispatches
by path, and the background work (spool, producer) that lives as long as it does.

aiohttp parses every request (llhttp), bounds pipelining and closes idle connections;
the handler authenticates a callback from its request line before reading its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import HttpVersion11, hdrs, web

from common.config import KafkaSettings
from ingest.accept import Answer, Ingest, accept, admit, callback_kind, error
from ingest.auth import ForwardedError
from ingest.body import body_at_hand, read_body
from ingest.durable import DurableWriter, Producer, PublishError
from ingest.openapi import OPENAPI
from ingest.rdkafka import RdkafkaProducer, rdkafka_config
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)

CALLBACKS: Final = "/callbacks/"
KINDS: Final = frozenset({"callstate", "cdr"})
JSON: Final = "application/json"
# After answering a request whose body was not read (refused, too large, too slow),
# aiohttp reads and drops what is still coming for at most this long, then closes.
LINGER_SECONDS: Final = 2.0
NOT_FOUND: Final = error(404, "not found")
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
Page = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


# aiohttp's server options of the receiver, besides every server's (common.http_serving).
RECEIVER_OPTIONS: Final = {
    "lingering_time": LINGER_SECONDS,
    "auto_decompress": False,  # `ingest.body` inflates, within its limits
}


class Receiver:
    """The handler aiohttp's `web.Server` calls for every request."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.in_flight = 0  # callbacks whose handler runs (their head is in; the body may not be)
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_after = {hdrs.RETRY_AFTER: str(ingest.settings.retry_after)}
        self._pages: dict[str, Page] = {
            "/healthz": self.healthz,
            "/readyz": self.readyz,
            "/metrics": self.metrics,
            "/openapi.json": self.openapi,
        }

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(CALLBACKS):
            self.in_flight += 1
            self._idle.clear()
            try:
                return await self.callback(request, path)
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self._idle.set()
        page = self._pages.get(path)
        if page is None:
            return self.respond(NOT_FOUND)
        if request.method != hdrs.METH_GET:
            return self.respond(error(405, "method not allowed"), allow=hdrs.METH_GET)
        return await page(request)

    async def drained(self) -> None:
        """Returns once no callback is in flight."""
        await self._idle.wait()

    async def callback(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        parts = path.split("/")  # "", "callbacks", companycode, kind
        if len(parts) != 4 or parts[3] not in KINDS:
            return self.respond(NOT_FOUND)
        if request.method != hdrs.METH_POST:
            return self.respond(error(405, "method not allowed"), allow=hdrs.METH_POST)
        ingest = self.ingest
        tenant, kind = parts[2], callback_kind(parts[3])
        headers = request.headers
        try:
            source = ingest.sources.resolve(
                request.remote, headers.getall(hdrs.X_FORWARDED_FOR, ())
            )
        except ForwardedError as err:
            return self.respond(error(400, "invalid X-Forwarded-For", detail=str(err)))
        refused = admit(ingest, tenant, kind, request.query.get("key"), source)
        if refused is not None:  # before a byte of the body is read
            return self.respond(refused)
        # Header values are decoded with surrogateescape: this gives back the bytes sent.
        content_type = headers.get(hdrs.CONTENT_TYPE, "").encode("utf-8", "surrogateescape")
        content, length = request.content, request.content_length
        encoding = headers.get(hdrs.CONTENT_ENCODING)
        settings = ingest.settings
        at_hand = body_at_hand(content, length, encoding, settings)
        if at_hand is None:
            send_continue(request)
        body = read_body(content, length, encoding, settings) if at_hand is None else at_hand
        answer = await accept(
            ingest, tenant, kind, source=source, content_type=content_type, body=body
        )
        return self.respond(answer)

    def respond(self, answer: Answer, *, allow: str | None = None) -> web.Response:
        headers = self._retry_after if answer.retry_after else None
        if allow is not None:
            headers = {hdrs.ALLOW: allow}
        response = web.Response(
            status=answer.status, body=answer.body, content_type=JSON, headers=headers
        )
        if answer.close:
            response.force_close()
        return response

    async def healthz(self, request: web.BaseRequest) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.BaseRequest) -> web.Response:
        writer = self.ingest.writer
        ready = writer.ready and not self.ingest.closing
        body = {
            "ready": ready,
            "kafka": "direct" if not writer.spooling else "spooling",
            "spool_records": writer.spool.records,
            "spool_bytes": writer.spool.stored_bytes,
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.BaseRequest) -> web.Response:
        body = self.ingest.metrics.render()
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: "text/plain; version=0.0.4"})

    async def openapi(self, request: web.BaseRequest) -> web.Response:
        return web.json_response(OPENAPI)


def send_continue(request: web.BaseRequest) -> None:
    """`100 Continue` to a client that waits for it before it sends the body: the callback
    was admitted and its body is wanted. As aiohttp's documentation writes it; aiohttp's
    low-level server, unlike its router, does not send it, and the client would wait (curl
    a second) before sending the body anyway."""
    expects = request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"
    if expects and request.version >= HttpVersion11 and request.transport is not None:
        request.transport.write(CONTINUE)


@contextlib.asynccontextmanager
async def running(
    ingest: Ingest, connect: Callable[[], AsyncIterator[Producer | None]]
) -> AsyncIterator[None]:
    """The spool open, the producer connecting in the background and the spool drained
    while it runs; on leaving, what the spool holds goes to Kafka if Kafka takes it within
    the shutdown timeout (otherwise the next start drains it), and the producer is flushed."""
    writer = ingest.writer
    await asyncio.to_thread(writer.spool.open)
    writer.spooling = writer.spooling or writer.spool.records > 0
    try:
        async with contextlib.AsyncExitStack() as stack:
            drainer = asyncio.create_task(writer.drain_forever())
            attach = asyncio.create_task(_attach(writer, stack, connect))
            expire = asyncio.create_task(writer.expire_forever())
            try:
                yield
            finally:
                attach.cancel()  # still connecting: too late now
                writer.stop_draining()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(drainer), ingest.settings.shutdown_timeout
                    )
                for task in (drainer, attach, expire):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            # Leaving the stack flushes and stops the producer.
    finally:
        await writer.spool.close()


async def _attach(
    writer: DurableWriter,
    stack: contextlib.AsyncExitStack,
    connect: Callable[[], AsyncIterator[Producer | None]],
) -> None:
    producer = await stack.enter_async_context(contextlib.asynccontextmanager(connect)())
    if producer is not None:
        writer.attach(producer)


def kafka_connector(
    kafka: KafkaSettings, settings: IngestSettings, retry_every: float = 2.0
) -> Callable[[], AsyncIterator[Producer | None]]:
    """Connects the idempotent producer, retrying until Kafka answers (the spool covers)."""

    async def connect() -> AsyncIterator[Producer | None]:
        ack_timeout = settings.ack_timeout
        config = rdkafka_config(kafka, ack_timeout=ack_timeout, linger_ms=settings.linger_ms)
        producer = RdkafkaProducer(config)
        try:
            while True:
                try:
                    await producer.start(wait=ack_timeout)
                except PublishError as err:
                    log.warning("kafka not reachable yet: %s", err)
                    await asyncio.sleep(retry_every)
                    continue
                break
            yield producer
        finally:
            await producer.stop()  # delivers what is still queued

    return connect
