"""The receiver's producer on librdkafka (confluent-kafka): idempotent, acks=all.

The receiver answers each callback only after the broker has acknowledged it, so the
producer's cost per record is paid on every request. aiokafka builds and sends batches in
Python on the event loop; librdkafka does both in its own C threads, and the loop only
hands records over and resolves their futures. Delivery reports are served on the loop
(no thread touches asyncio objects): while records are outstanding, one task polls
every `POLL_EVERY` seconds and each report resolves its record's future.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, Final, cast

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from common.config import KafkaSettings
from ingest.durable import PublishError

log = logging.getLogger(__name__)

POLL_EVERY: Final = 0.001
IDLE_POLL_EVERY: Final = 0.5  # serves librdkafka's log lines and late reports when idle
_Headers = list[tuple[str, str | bytes | None]]


def rdkafka_config(
    settings: KafkaSettings, *, ack_timeout: float, linger_ms: float
) -> dict[str, Any]:
    """librdkafka's settings for `settings`, with the receiver's durability choices."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "security.protocol": settings.security_protocol,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        # The Java client's partitioner: a call's events land where any other client
        # (aiokafka, Kafka Streams) would put the same key.
        "partitioner": "murmur2_random",
        # A record librdkafka still holds after this is reported failed; the receiver has
        # spooled it long before (after `ack_timeout`), so a late delivery is a duplicate.
        "message.timeout.ms": max(int(ack_timeout * 1000) * 6, 30_000),
        "socket.keepalive.enable": True,
        # librdkafka's own log lines go to Python logging (JSON like ours), served by poll().
        "logger": logging.getLogger("librdkafka"),
    }
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username or ""
        config["sasl.password"] = settings.sasl_password or ""
    if settings.ssl_cafile:
        config["ssl.ca.location"] = settings.ssl_cafile
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
        self._outstanding = 0
        self._poller: asyncio.Task[None] | None = None
        self._idle_poller: asyncio.Task[None] | None = None

    async def start(self, wait: float) -> None:
        """Returns once a broker answered a metadata request; raises PublishError if none did."""
        if self._idle_poller is None:
            self._idle_poller = asyncio.create_task(self._poll_while_idle())
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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._fatal:
            self._replace()
        try:
            self._producer.produce(
                topic,
                value,
                key,
                headers=cast("_Headers", headers),
                on_delivery=functools.partial(self._settle, future),
            )
        except BufferError as err:  # librdkafka's queue is full: Kafka is not keeping up
            raise PublishError(f"producer queue full: {err}", retriable=True) from err
        except KafkaException as err:
            raise self._failure(err.args[0]) from err
        self._outstanding += 1
        if self._poller is None:
            self._poller = loop.create_task(self._poll())
        return future

    def _settle(
        self, future: asyncio.Future[None], err: RdKafkaError | None, _msg: Message
    ) -> None:
        self._outstanding -= 1
        failure = None if err is None else self._failure(err)
        if future.done():  # the writer stopped waiting (timeout): nothing to tell
            return
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
        old.purge()  # its queued records can never be delivered: report them failed now
        old.poll(0)
        self._producer = self._factory(self._config)
        self._fatal = False

    async def _poll(self) -> None:
        try:
            while self._outstanding > 0:
                await asyncio.sleep(POLL_EVERY)
                self._producer.poll(0)
        finally:
            self._poller = None

    async def _poll_while_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_POLL_EVERY)
            self._producer.poll(0)

    async def stop(self, within: float = 10.0) -> None:
        """Delivers what is queued (for up to `within` seconds), serving its reports on the loop."""
        if self._idle_poller is not None:
            self._idle_poller.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self._producer) > 0 and loop.time() < deadline:
            self._producer.poll(0)
            await asyncio.sleep(0.01)
        self._producer.poll(0)
        if self._poller is not None:  # reports still due will never come now
            self._poller.cancel()
