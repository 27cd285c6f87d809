"""The receiver's aiohttp application: routes, the callback handler and its clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

import msgspec
from aiohttp import web

from common.config import KafkaSettings
from common.topics import RAW_SCHEMA_VERSION, Header, Topics
from ingest.auth import Authenticator, SourceResolver
from ingest.durable import DurableWriter, Producer, PublishError
from ingest.metrics import UNKNOWN, IngestMetrics
from ingest.openapi import OPENAPI
from ingest.rdkafka import RdkafkaProducer, rdkafka_config
from ingest.settings import IngestSettings
from ingest.spool import Spool, SpoolFullError
from yunhu.callbacks import CallbackKind, DecodeError, decode
from yunhu.tenants import Tenant

log = logging.getLogger(__name__)

_JSON: Final = msgspec.json.Encoder()
OK_BODY: Final = b'{"status":"ok"}'
JSON_CONTENT: Final = {"Content-Type": "application/json"}
SERVICE: Final = b"ingest"


@dataclass
class Ingest:
    """Everything a callback needs; built once per app, handed to handlers via `INGEST`."""

    settings: IngestSettings
    tenants: dict[str, Tenant]
    topics: Topics
    writer: DurableWriter
    metrics: IngestMetrics = field(default_factory=IngestMetrics)
    closing: bool = False
    in_flight: int = 0

    def __post_init__(self) -> None:
        # Event ids: a random per-process prefix and a counter (os.urandom per request is
        # a system call; this is unique across processes and restarts all the same).
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count()
        self.auth = Authenticator(self.tenants)
        self.sources = SourceResolver(self.settings.trusted_proxies)
        self.retry_after = {"Retry-After": str(self.settings.retry_after)}
        self.metrics.watch(self.writer)

    def next_event_id(self) -> bytes:
        return f"{self._id_prefix}{next(self._id_counter):016x}".encode()


INGEST: Final = web.AppKey("ingest", Ingest)


def _error(status: int, error: str, **extra: str) -> web.Response:
    return web.Response(
        status=status, body=_JSON.encode({"error": error, **extra}), content_type="application/json"
    )


async def callback(request: web.Request) -> web.Response:
    """The routed handler; `ingest.runner.IngestRunner` calls `handle_callback` directly."""
    info = request.match_info
    return await handle_callback(request.app[INGEST], request, info["companycode"], info["kind"])


async def handle_callback(
    ingest: Ingest, request: web.BaseRequest, code: str, kind_name: str
) -> web.Response:
    if ingest.closing:
        return _error(503, "shutting down", retry="later")
    if ingest.in_flight >= ingest.settings.max_in_flight:
        return _unavailable(ingest, "busy")[1]
    kind: CallbackKind = "cdr" if kind_name == "cdr" else "callstate"
    source = ingest.sources.resolve(request.remote, request.headers.get("X-Forwarded-For"))
    denied = ingest.auth.check(code, request.query.get("key"), source)
    if denied is not None:
        tenant = code if code in ingest.tenants else UNKNOWN
        ingest.metrics.auth_failures.labels(denied.reason).inc()
        ingest.metrics.count_request(tenant, kind, denied.status)
        return _error(denied.status, denied.reason)
    ingest.in_flight += 1
    try:
        status, response = await _durable(ingest, request, code, kind, source)
    finally:
        ingest.in_flight -= 1
    ingest.metrics.count_request(code, kind, status)
    return response


async def _read_body(settings: IngestSettings, request: web.BaseRequest) -> bytes | web.Response:
    length = request.content_length
    if length is not None and length > settings.body_limit:
        return _error(413, "body too large", limit=str(settings.body_limit))
    try:
        body = await request.read()  # aiohttp inflates gzip, bounded by client_max_size
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "body too large", limit=str(settings.decompressed_limit))
    if len(body) > settings.body_limit and "Content-Encoding" not in request.headers:
        return _error(413, "body too large", limit=str(settings.body_limit))
    return body


def _unavailable(ingest: Ingest, error: str) -> tuple[int, web.Response]:
    response = _error(503, error)
    response.headers.update(ingest.retry_after)
    return 503, response


async def _durable(
    ingest: Ingest, request: web.BaseRequest, code: str, kind: CallbackKind, source: str
) -> tuple[int, web.Response]:
    body = await _read_body(ingest.settings, request)
    if isinstance(body, web.Response):
        return body.status, body

    event = decode(kind, body)
    headers = [
        (Header.TENANT, code.encode()),
        (Header.KIND, kind.encode()),
        (Header.RECEIVED_AT, str(time.time_ns() // 1_000_000).encode()),
        (Header.SOURCE, source.encode()),
        (Header.CONTENT_TYPE, request.headers.get("Content-Type", "").encode()),
        (Header.EVENT_ID, ingest.next_event_id()),
        (Header.SCHEMA_VERSION, RAW_SCHEMA_VERSION),
    ]
    if isinstance(event, DecodeError):
        topic, key = ingest.topics.deadletter, None
        headers += [
            (Header.DLQ_REASON, event.reason.encode()),
            (Header.DLQ_DETAIL, event.detail.encode()),
            (Header.DLQ_SERVICE, SERVICE),
            (Header.DLQ_SOURCE_TOPIC, ingest.topics.raw(kind).encode()),
        ]
    else:
        topic, key = ingest.topics.raw(kind), event.uuid.encode()

    started = time.perf_counter()
    try:
        where = await ingest.writer.write(topic, key, body, headers)
    except SpoolFullError:
        return _unavailable(ingest, "cannot store more events now")
    except OSError:
        log.exception("spool write failed")
        return _unavailable(ingest, "cannot store events now")
    ingest.metrics.observe_publish(where, time.perf_counter() - started)

    if isinstance(event, DecodeError):
        ingest.metrics.deadletters.labels(code, kind, event.reason).inc()
        return 400, _error(400, "invalid callback", reason=event.reason, detail=event.detail)
    return 200, web.Response(body=OK_BODY, headers=JSON_CONTENT)


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
