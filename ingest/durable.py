"""Makes each accepted callback durable: in Kafka when the broker acknowledges in time,
otherwise in the local spool, which a background task drains once Kafka is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Literal, Protocol

from common.retry import Backoff
from ingest.spool import Spool, SpoolRecord

log = logging.getLogger(__name__)

Where = Literal["kafka", "spool"]


class PublishError(Exception):
    """A record Kafka did not take; `retriable` says whether the next try may work."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class Producer(Protocol):
    """What the writer needs of a producer: `send` queues a record and returns a future
    resolved by the broker's acknowledgement; both raise PublishError on failure."""

    def send(
        self, topic: str, value: bytes, key: bytes | None = ..., headers: Any = ...
    ) -> asyncio.Future[Any]: ...


class DurableWriter:
    def __init__(
        self,
        producer: Producer | None,
        spool: Spool,
        *,
        ack_timeout: float = 5.0,
    ) -> None:
        self.producer = producer
        self.spool = spool
        self.ack_timeout = ack_timeout
        # Spool mode: while the spool holds records (or Kafka just failed us), new records
        # queue behind them, so per-call order survives an outage.
        self.spooling = producer is None or spool.records > 0
        self.abandoned_sends = 0  # sends that may still land after we spooled their record
        # Acknowledgements being waited for, oldest first (one timeout for all, so a deque
        # and one watchdog task replace a timer per request).
        self._waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._stopping = asyncio.Event()
        # Hand-over: under steady traffic the spool would never be empty when the drainer
        # looks, so after a pass that reached Kafka new events wait (not append) while the
        # drainer publishes what is left; then they go to Kafka, still behind the spool.
        self.handing_over = False
        self._handover_ended = asyncio.Event()

    def attach(self, producer: Producer) -> None:
        """The producer connected after start-up (Kafka was down when we started)."""
        self.producer = producer

    @property
    def ready(self) -> bool:
        """True while an event can be made durable somewhere."""
        return (self.producer is not None and not self.spooling) or self.spool.has_room()

    async def write(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Where:
        if self.handing_over:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handover_ended.wait(), self.ack_timeout)
        future = self.send(topic, key, value, headers)
        if future is not None:
            try:
                await future
            except Exception as err:  # noqa: BLE001 - whatever it was, the spool keeps the event
                self.kafka_failed(err)
            else:
                return "kafka"
        await self.spool.append(SpoolRecord(topic, key, value, headers, time.time()))
        return "spool"

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any] | None:
        """Kafka's acknowledgement to wait for, or None when the event must go to the spool
        (spooling, handing over, no producer yet, or the producer refused it at once).

        A failed acknowledgement must be reported with `kafka_failed`; `write` does all of it.
        """
        if self.spooling or self.handing_over or self.producer is None:
            return None
        try:
            future = self.producer.send(topic, value, key=key, headers=headers)
        except Exception as err:  # noqa: BLE001 - whatever it was, the spool keeps the event
            self.kafka_failed(err)
            return None
        self._waiting.append((time.monotonic() + self.ack_timeout, future))
        return future

    def kafka_failed(self, err: BaseException) -> None:
        """Kafka did not take an event in time: new events go to the spool until it drains."""
        if not isinstance(err, (PublishError, TimeoutError)):
            log.error("publishing failed unexpectedly; spooling", exc_info=err)
        elif not self.spooling:
            log.warning("kafka did not acknowledge in time, spooling: %r", err)
        self.spooling = True
        self.abandoned_sends += 1

    async def expire_forever(self, every: float = 0.05) -> None:
        """Fails acknowledgements that took longer than `ack_timeout` with TimeoutError.

        The producer checks `done()` before resolving a record's future, so failing it
        here only ends our wait; the record may still be delivered later (a duplicate)."""
        waiting = self._waiting
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
                _, future = waiting.popleft()
                if not future.done():
                    future.set_exception(TimeoutError("kafka did not acknowledge in time"))

    async def publish_batch(self, records: list[SpoolRecord]) -> None:
        producer = self.producer
        if producer is None:
            raise PublishError("no producer yet", retriable=True)
        async with asyncio.timeout(2 * self.ack_timeout):
            futures = [
                producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in records
            ]
            await asyncio.gather(*futures)

    async def drain_forever(self, idle: float = 0.5) -> None:
        """The background drainer: empties the spool whenever Kafka takes records again.

        After `stop_draining()` it makes one last pass (so a graceful shutdown leaves the
        spool empty when Kafka is up) and returns; a failing pass then ends it too."""
        backoff = Backoff(first=0.5, most=5.0)
        while True:
            wait: float | None = None  # how long to pause before the next look
            appended = None
            if self.spool.stored_bytes == 0:  # nothing stored, nothing being appended
                if self.spooling and self.producer is not None:
                    self.spooling = False
                    log.info("spool drained; publishing to kafka directly again")
                self._end_handover()
                self.spool.appended.clear()
                wait, appended = idle, self.spool.appended
            elif self.spool.records == 0:
                # Appends have reserved their bytes but none is written yet: nothing to
                # drain, and a pass that finds nothing would never yield to the loop.
                self.spool.appended.clear()
                wait, appended = idle, self.spool.appended
            elif self.producer is None:
                wait = idle
            else:
                wait = await self._drain_once(backoff)
            if wait is None:
                continue
            if self._stopping.is_set():
                self._end_handover()
                return
            await self._pause(wait, appended)

    async def _drain_once(self, backoff: Backoff) -> float | None:
        """One pass over the spool; how long to pause before the next (None: go on)."""
        try:
            drained = await self.spool.drain(self.publish_batch)
        except (PublishError, TimeoutError) as err:
            log.info("spool drain paused, kafka not ready: %r", err)
            self._end_handover()  # those waiting go to the spool
            return backoff.next()
        except Exception:
            log.exception("spool drain failed unexpectedly; retrying")
            self._end_handover()
            return 5.0
        if drained:
            log.info("spool: %d records published to kafka", drained)
        if not self.handing_over:
            self.handing_over = True
            self._handover_ended.clear()
        backoff.reset()
        return None

    def _end_handover(self) -> None:
        self.handing_over = False
        self._handover_ended.set()

    def stop_draining(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float, until: asyncio.Event | None = None) -> None:
        """Sleeps `seconds`, or less when `until` is set or the drainer is told to stop."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(until.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
