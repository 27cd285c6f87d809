"""The receiver's producer on librdkafka (confluent-kafka): idempotent, acks=all.

The receiver answers each callback only after the broker has acknowledged it, so the
producer's cost per record is paid on every request. aiokafka builds and sends batches in
Python on the event loop; librdkafka does both in its own C threads, and the loop only
hands records over and resolves their futures. A thread of ours waits in librdkafka's
`poll()`, so a delivery report is served as soon as it arrives; the reports each wait
gathers are handed to the loop in one `call_soon_threadsafe`, and the loop resolves
their futures (no other thread touches an asyncio object).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from common.config import KafkaSettings
from ingest.durable import PublishError

log = logging.getLogger(__name__)

POLL_WAIT: Final = 0.2  # longest the reports thread waits in poll() before looking up
_Headers = list[tuple[str, str | bytes | None]]


def rdkafka_config(
    settings: KafkaSettings, *, ack_timeout: float, linger_ms: float
) -> dict[str, Any]:
    """librdkafka's settings for `settings`, with the receiver's durability choices."""
    config: dict[str, Any] = {
        **settings.rdkafka_settings(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        # The Java client's partitioner: a call's events land where any other client
        # (aiokafka, Kafka Streams) would put the same key.
        "partitioner": "murmur2_random",
        # A record librdkafka still holds after this is reported failed; the receiver has
        # spooled it long before (after `ack_timeout`), so a late delivery is a duplicate.
        "message.timeout.ms": max(int(ack_timeout * 1000) * 6, 30_000),
        # librdkafka's own log lines go to Python logging (JSON like ours), served by poll().
        "logger": logging.getLogger("librdkafka"),
    }
    return config


class RdkafkaProducer:
    """`send()` queues a record and returns a future resolved by its delivery report.

    A fatal error (an idempotent producer whose sequence the broker lost, say) makes
    librdkafka's producer refuse everything from then on; the next `send()` then builds
    a new one, so the receiver spools only the records the old one failed."""

    def __init__(
        self, config: dict[str, Any], factory: Callable[[dict[str, Any]], Producer] = Producer
    ) -> None:
        self._config = config
        self._factory = factory
        self._producer = factory(config)
        self._fatal = False
        # The loop `start` ran on, where every send happens (Python 3.11's
        # get_running_loop() makes a getpid() system call each time).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: deque[tuple[asyncio.Future[None], PublishError | None]] = deque()
        self._wake_pending = False
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    async def start(self, wait: float) -> None:
        """Returns once a broker answered a metadata request; raises PublishError if none did."""
        self._loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve_reports, name="rdkafka-reports", daemon=True
            )
            self._thread.start()
        try:
            await asyncio.to_thread(self._producer.list_topics, timeout=wait)
        except KafkaException as err:
            raise PublishError(f"kafka not reachable: {err}", retriable=True) from err

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[None]:
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._fatal:
            self._replace()
        try:
            self._producer.produce(
                topic,
                value,
                key,
                headers=cast("_Headers", headers),
                on_delivery=functools.partial(self._report, future),
            )
        except BufferError as err:  # librdkafka's queue is full: Kafka is not keeping up
            raise PublishError(f"producer queue full: {err}", retriable=True) from err
        except KafkaException as err:
            raise self._failure(err.args[0]) from err
        return future

    def _report(
        self, future: asyncio.Future[None], err: RdKafkaError | None, _msg: Message
    ) -> None:
        """A delivery report, in whichever thread called poll(): kept for the loop."""
        self._reports.append((future, None if err is None else self._failure(err)))

    def _serve_reports(self) -> None:
        """The reports thread: waits in poll(), then wakes the loop once per batch."""
        while not self._stopping.is_set():
            self._producer.poll(POLL_WAIT)
            if self._reports and not self._wake_pending and self._loop is not None:
                self._wake_pending = True
                try:
                    self._loop.call_soon_threadsafe(self._settle)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _settle(self) -> None:
        """On the loop: resolves the futures of every report gathered so far."""
        self._wake_pending = False  # first: a report added while settling wakes us again
        reports = self._reports
        while reports:
            future, failure = reports.popleft()
            if future.done():  # the writer stopped waiting (timeout): nothing to tell
                continue
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(failure)

    def _failure(self, err: RdKafkaError) -> PublishError:
        """The error to raise; a fatal one also retires this producer at the next send."""
        self._fatal = self._fatal or err.fatal()
        return PublishError(str(err), retriable=err.retriable() or not err.fatal())

    def _replace(self) -> None:
        log.error("kafka producer hit a fatal error; starting a new one")
        old = self._producer
        self._producer = self._factory(self._config)
        self._fatal = False
        old.purge()  # its queued records can never be delivered: report them failed now
        old.poll(0)
        self._settle()

    async def stop(self, within: float = 10.0) -> None:
        """Delivers what is queued (for up to `within` seconds), then stops the reports thread."""
        await asyncio.to_thread(self._producer.flush, within)
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._producer.poll(0)
        self._settle()
