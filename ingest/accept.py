"""What accepting a callback means: who may post, what goes to Kafka, the answer.

Free of aiohttp: `ingest.app` reads the request and renders the `Answer`.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from common.topics import RAW_SCHEMA_VERSION, Header, Topics
from ingest.auth import Authenticator, SourceResolver
from ingest.body import Body, Refusal, Unreadable
from ingest.durable import DurableWriter, Where
from ingest.metrics import UNKNOWN, IngestMetrics
from ingest.settings import IngestSettings
from ingest.spool import SpoolFullError
from yunhu.callbacks import CallbackKind, DecodeError, decode
from yunhu.tenants import Tenant

log = logging.getLogger(__name__)

_JSON: Final = msgspec.json.Encoder()
SERVICE: Final = b"ingest"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    retry_after: bool = False  # 503s say when to come back
    close: bool = False  # the body was not read to its end: the connection cannot be reused


def error(status: int, message: str, *, retry_after: bool = False, **extra: str) -> Answer:
    return Answer(status, _JSON.encode({"error": message, **extra}), retry_after)


OK: Final = Answer(200, b'{"status":"ok"}')
SHUTTING_DOWN: Final = error(503, "shutting down", retry="later")
BUSY: Final = error(503, "busy", retry_after=True)
SPOOL_FULL: Final = error(503, "cannot store more events now", retry_after=True)
SPOOL_FAILED: Final = error(503, "cannot store events now", retry_after=True)


@dataclass
class Ingest:
    """Everything a callback needs; built once by the entry point."""

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
        self._id_prefix = os.urandom(8).hex().encode()
        self._id_counter = itertools.count()
        self.auth = Authenticator(self.tenants)
        self.sources = SourceResolver(self.settings.trusted_proxies)
        self.metrics.watch(self.writer)
        self.metrics.in_flight.set_function(lambda: self.in_flight)

    def next_event_id(self) -> bytes:
        return self._id_prefix + b"%016x" % next(self._id_counter)


@dataclass(slots=True)
class Event:
    """An accepted callback, ready to be made durable."""

    tenant: str
    kind: CallbackKind
    topic: str
    key: bytes | None
    body: bytes
    headers: list[tuple[str, bytes]]
    problem: DecodeError | None  # a body that did not decode goes to the dead-letter topic
    started: float = field(default_factory=time.perf_counter)  # publish latency counts from here


def callback_kind(name: str) -> CallbackKind:
    return "cdr" if name == "cdr" else "callstate"


def admit(
    ingest: Ingest, tenant: str, kind: CallbackKind, key: str | None, source: str
) -> Answer | None:
    """The refusal to send at once (shutting down, busy, not authorised), or None."""
    if ingest.closing:
        return SHUTTING_DOWN
    if ingest.in_flight >= ingest.settings.max_in_flight:
        return BUSY
    denied = ingest.auth.check(tenant, key, source)
    if denied is None:
        return None
    ingest.metrics.auth_failures.labels(denied.reason).inc()
    known = tenant if tenant in ingest.tenants else UNKNOWN
    ingest.metrics.count_request(known, kind, denied.status)
    return error(denied.status, denied.reason)


def prepare(
    ingest: Ingest,
    tenant: str,
    kind: CallbackKind,
    *,
    source: str,
    content_type: bytes,
    body: bytes,
    problem: DecodeError | None = None,
) -> Event:
    """Decodes once (validation and key); the exact bytes received are what gets published."""
    event = decode(kind, body) if problem is None else problem
    if not isinstance(event, DecodeError) and event.companycode not in {"", tenant}:
        detail = f"the body's companycode {event.companycode[:40]!r} is not the tenant {tenant}"
        event = DecodeError("tenant_mismatch", detail)
    headers = [
        (Header.TENANT, tenant.encode()),
        (Header.KIND, kind.encode()),
        (Header.RECEIVED_AT, b"%d" % (time.time_ns() // 1_000_000)),
        (Header.SOURCE, source.encode()),
        (Header.CONTENT_TYPE, content_type),
        (Header.EVENT_ID, ingest.next_event_id()),
        (Header.SCHEMA_VERSION, RAW_SCHEMA_VERSION),
    ]
    if isinstance(event, DecodeError):
        headers += [
            (Header.DLQ_REASON, event.reason.encode()),
            (Header.DLQ_DETAIL, event.detail.encode()),
            (Header.DLQ_SERVICE, SERVICE),
            (Header.DLQ_SOURCE_TOPIC, ingest.topics.raw(kind).encode()),
        ]
        return Event(tenant, kind, ingest.topics.deadletter, None, body, headers, event)
    return Event(tenant, kind, ingest.topics.raw(kind), event.uuid.encode(), body, headers, None)


def durable(ingest: Ingest, event: Event, where: Where) -> Answer:
    """The answer once `event` is durable in `where`; counts it."""
    ingest.metrics.observe_publish(where, time.perf_counter() - event.started)
    problem = event.problem
    if problem is None:
        return OK
    ingest.metrics.deadletters.labels(event.tenant, event.kind, problem.reason).inc()
    status = 415 if problem.reason == "unsupported_encoding" else 400
    return error(status, "invalid callback", reason=problem.reason, detail=problem.detail)


def refused(refusal: Refusal) -> Answer:
    """The body was not read to its end: the answer closes the connection."""
    body: dict[str, str] = {"error": refusal.error}
    if refusal.setting:
        body["setting"] = refusal.setting
    if refusal.limit:
        body["limit"] = str(refusal.limit)
    return Answer(refusal.status, _JSON.encode(body), close=True)


async def store(ingest: Ingest, event: Event) -> Answer:
    """Makes `event` durable (Kafka, or the spool) and answers; 503 if neither can take it."""
    try:
        where = await ingest.writer.write(event.topic, event.key, event.body, event.headers)
    except SpoolFullError:
        return SPOOL_FULL
    except OSError:
        log.exception("spool write failed")
        return SPOOL_FAILED
    return durable(ingest, event, where)


async def accept(
    ingest: Ingest,
    tenant: str,
    kind: CallbackKind,
    *,
    source: str,
    content_type: bytes,
    body: Body | Awaitable[Body],
) -> Answer:
    """Reads the body (counted in flight), stores it and answers; the request is counted."""
    ingest.in_flight += 1
    try:
        read = body if isinstance(body, (bytes, Refusal, Unreadable)) else await body
        if isinstance(read, Refusal):
            answer = refused(read)
        else:
            raw, problem = (
                (read.body, read.problem) if isinstance(read, Unreadable) else (read, None)
            )
            event = prepare(
                ingest,
                tenant,
                kind,
                source=source,
                content_type=content_type,
                body=raw,
                problem=problem,
            )
            answer = await store(ingest, event)
    finally:
        ingest.in_flight -= 1
    ingest.metrics.count_request(tenant, kind, answer.status)
    return answer
