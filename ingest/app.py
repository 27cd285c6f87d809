"""The receiver's aiohttp application: routes, the callback handler and its clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import web

from common.config import KafkaSettings
from common.topics import Topics
from ingest.accept import Answer, Ingest, accept, admit, callback_kind, error
from ingest.durable import DurableWriter, Producer, PublishError
from ingest.openapi import OPENAPI
from ingest.rdkafka import RdkafkaProducer, rdkafka_config
from ingest.settings import IngestSettings
from ingest.spool import Spool
from yunhu.tenants import Tenant

log = logging.getLogger(__name__)

JSON_CONTENT: Final = {"Content-Type": "application/json"}
INGEST: Final = web.AppKey("ingest", Ingest)


def response(ingest: Ingest, answer: Answer) -> web.Response:
    headers = JSON_CONTENT
    if answer.retry_after:
        headers = {**JSON_CONTENT, "Retry-After": str(ingest.settings.retry_after)}
    return web.Response(status=answer.status, body=answer.body, headers=headers)


async def callback(request: web.Request) -> web.Response:
    """Callbacks the fast path leaves to aiohttp (gzip, chunked, unusual headers) and every
    callback when the app is served without `ingest.runner.IngestRunner`."""
    ingest = request.app[INGEST]
    tenant = request.match_info["companycode"]
    kind = callback_kind(request.match_info["kind"])
    source = ingest.sources.resolve(request.remote, request.headers.get("X-Forwarded-For"))
    refused = admit(ingest, tenant, kind, request.query.get("key"), source)
    if refused is not None:
        return response(ingest, refused)
    content_type = request.headers.get("Content-Type", "").encode()
    body = _read_body(ingest.settings, request)
    answer = await accept(ingest, tenant, kind, source=source, content_type=content_type, body=body)
    return response(ingest, answer)


async def _read_body(settings: IngestSettings, request: web.BaseRequest) -> bytes | Answer:
    length = request.content_length
    if length is not None and length > settings.body_limit:
        return error(413, "body too large", limit=str(settings.body_limit))
    try:
        body = await request.read()  # aiohttp inflates gzip, bounded by client_max_size
    except web.HTTPRequestEntityTooLarge:
        return error(413, "body too large", limit=str(settings.decompressed_limit))
    if len(body) > settings.body_limit and "Content-Encoding" not in request.headers:
        return error(413, "body too large", limit=str(settings.body_limit))
    return body


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    writer = ingest.writer
    ready = writer.ready and not ingest.closing
    body = {
        "ready": ready,
        "kafka": "direct" if not writer.spooling else "spooling",
        "spool_records": writer.spool.records,
        "spool_bytes": writer.spool.stored_bytes,
    }
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[INGEST].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def build_app(
    settings: IngestSettings,
    tenants: dict[str, Tenant],
    topics: Topics,
    spool: Spool,
    connect: Callable[[], AsyncIterator[Producer | None]],
) -> web.Application:
    """The app. `connect` is a cleanup-context generator yielding the producer (or None)."""
    app = web.Application(client_max_size=settings.decompressed_limit)
    writer = DurableWriter(None, spool, ack_timeout=settings.ack_timeout)
    app[INGEST] = Ingest(settings, tenants, topics, writer)
    app.router.add_post(r"/callbacks/{companycode}/{kind:callstate|cdr}", callback)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.on_shutdown.append(_stop_accepting)
    app.cleanup_ctx.append(_spool_ctx)
    app.cleanup_ctx.append(_producer_ctx(connect))
    return app


async def _stop_accepting(app: web.Application) -> None:
    app[INGEST].closing = True


async def _spool_ctx(app: web.Application) -> AsyncIterator[None]:
    spool = app[INGEST].writer.spool
    await asyncio.to_thread(spool.open)
    app[INGEST].writer.spooling = app[INGEST].writer.spooling or spool.records > 0
    yield
    await spool.close()


def _producer_ctx(
    connect: Callable[[], AsyncIterator[Producer | None]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        writer = app[INGEST].writer
        shutdown_timeout = app[INGEST].settings.shutdown_timeout
        async with contextlib.AsyncExitStack() as stack:
            drainer = asyncio.create_task(writer.drain_forever())
            others = [
                asyncio.create_task(_attach(writer, stack, connect)),
                asyncio.create_task(writer.expire_forever()),
            ]
            yield
            others[0].cancel()  # still connecting: too late now
            # Handlers have finished: what the spool still holds goes to Kafka now, if
            # Kafka takes it within the shutdown timeout; otherwise the next start drains it.
            writer.stop_draining()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(drainer), shutdown_timeout)
            for task in [drainer, *others]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Leaving the stack flushed and stopped the producer.

    return ctx


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
