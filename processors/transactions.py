"""Kafka transactions on librdkafka (confluent-kafka): a batch's outputs and its input
offsets, committed together with the consumer group's metadata.

The offsets carry the group's generation and member id (KIP-447), so a member that lost
its partitions (frozen past the session timeout, say) and then resumes cannot commit
output or offsets for them: the broker refuses, and the transaction is aborted. The
blocking calls run in worker threads; a failed transaction is aborted, and after any
failure the producer can be renewed (`renew`): a new one with the same transactional
id, whose start fences the old one and aborts what it left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import msgspec
from confluent_kafka import KafkaException, Producer
from confluent_kafka import TopicPartition as RdPartition

from common.config import KafkaSettings

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


class Output(msgspec.Struct, frozen=True, gc=False):
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


class TransactionFailed(Exception):
    """The transaction was aborted (or never began); nothing of it is visible."""


class Stuck(Exception):
    """A blocking librdkafka call overran its own timeout."""


# Each blocking call's own timeout. A transaction takes milliseconds; one not committed in
# this time is given up on and its batch read again (from the group's committed offsets,
# so a commit that did land is not repeated). It also bounds how long a call that does
# not heed its timeout (below) holds the pipe up after a broker restart.
CALL_TIMEOUT = 10.0
GRACE = 5.0  # how long past its own timeout a blocking call is waited for


def _settle(done: asyncio.Future[None], failure: BaseException | None) -> None:
    if done.done():  # given up on already: its outcome interests nobody
        return
    if failure is None:
        done.set_result(None)
    else:
        done.set_exception(failure)


class GroupMember(Protocol):
    def group_metadata(self) -> object: ...


def producer_config(kafka: KafkaSettings, transactional_id: str) -> dict[str, Any]:
    return {
        **kafka.rdkafka_settings(),
        "transactional.id": transactional_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        # The next transaction's AddOffsetsToTxn can reach the coordinator before it has
        # finished committing the one before (CONCURRENT_TRANSACTIONS). librdkafka retries
        # that after retry.backoff.ms, 100 ms by default, doubling up to
        # retry.backoff.max.ms; it retries AddPartitionsToTxn's after 20 ms, as the Java
        # client does. 20 ms here too (docs/benchmarks.md, Enrich, session 24).
        "retry.backoff.ms": 20,
        # The Java client's partitioner: outputs land where any other client would put them.
        "partitioner": "murmur2_random",
        # No re-bootstrap when every broker is down: librdkafka 2.16 then drops the broker
        # objects but keeps one cached as group coordinator, and send_offsets_to_transaction
        # waits for it past its own timeout (librdkafka #5511, #5456). Should the brokers
        # not come back where they were, the next transaction fails and the renewed
        # producer bootstraps afresh.
        "metadata.recovery.strategy": "none",
        "logger": logging.getLogger("librdkafka"),
    }


class RdTransactions:
    def __init__(
        self,
        config: dict[str, Any],
        member: GroupMember,
        *,
        timeout: float = CALL_TIMEOUT,
        grace: float = GRACE,
        factory: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self._config = config
        self._member = member
        self._timeout = timeout
        self._grace = grace
        self._factory = factory
        self._producer: Producer | None = None

    async def start(self) -> None:
        """A producer with the transactional id, initialised (fencing any predecessor)."""
        producer = self._factory(self._config)
        try:
            await self._blocking(partial(producer.init_transactions, self._timeout))
        except (KafkaException, Stuck) as err:
            raise TransactionFailed(f"transactions could not start: {err}") from err
        self._producer = producer

    async def renew(self) -> None:
        """Drop the producer and start a new one with the same transactional id."""
        old, self._producer = self._producer, None
        if old is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                old.purge()
        await self.start()
        log.info("transactional producer renewed")

    async def commit(self, outputs: Sequence[Output], offsets: dict[TopicPartition, int]) -> None:
        """Outputs and offsets in one transaction; TransactionFailed if it did not commit."""
        producer = self._producer
        if producer is None:
            raise TransactionFailed("no transactional producer (it failed to start)")
        try:
            producer.begin_transaction()
        except KafkaException as err:
            raise TransactionFailed(f"begin: {err}") from err
        try:
            for output in outputs:
                try:
                    producer.produce(
                        output.topic, output.value, output.key, headers=list(output.headers)
                    )
                except BufferError:  # librdkafka's queue is full
                    await self._produce_when_room(producer, output)
            positions = [RdPartition(t, p, offset) for (t, p), offset in offsets.items()]
            metadata = self._member.group_metadata()
            # One thread for both: one hand-over each way between the loop and the thread.
            await self._blocking(
                partial(producer.send_offsets_to_transaction, positions, metadata, self._timeout),
                partial(producer.commit_transaction, self._timeout),
            )
        except Stuck as err:  # nothing more to ask of this producer: renew() replaces it
            raise TransactionFailed(str(err)) from err
        except (KafkaException, BufferError) as err:
            await self._abort(producer)
            raise TransactionFailed(str(err)) from err

    async def _blocking(self, *calls: partial[Any]) -> None:
        """`calls`, one after the other in a daemon thread of their own, each with its own
        timeout; given up on when together they overrun their timeouts (and the grace),
        and then those not yet made are not made.

        librdkafka's coordinator requests do not heed the call's timeout (librdkafka
        #5456): `send_offsets_to_transaction`, and `init_transactions` when the broker
        restarted mid-start, have waited far past it. Given up on, the call is left to
        finish in its thread (the renewed producer fences it); a daemon thread, not the
        loop's executor, so a call that never returns cannot keep the process from
        exiting."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        given_up = threading.Event()

        def work() -> None:
            failure: BaseException | None = None
            try:
                for call in calls:
                    if given_up.is_set():  # the producer is being replaced: ask it nothing more
                        return
                    call()
            except BaseException as err:  # noqa: BLE001 - handed to the waiting coroutine
                failure = err
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_settle, done, failure)

        threading.Thread(target=work, name="rdkafka-transaction", daemon=True).start()
        waited = len(calls) * self._timeout + self._grace
        try:
            await asyncio.wait_for(asyncio.shield(done), waited)
        except TimeoutError:
            names = " and ".join(getattr(call.func, "__name__", "call") for call in calls)
            raise Stuck(f"{names} did not return within {waited:.1f}s") from None
        finally:
            if not done.done():  # timed out, or the caller was cancelled (a stop)
                given_up.set()
                done.cancel()  # what the thread reports later is dropped

    async def _produce_when_room(self, producer: Producer, output: Output) -> None:
        """Deliver what is queued (off the loop), then produce."""
        await self._blocking(partial(producer.flush, self._timeout))
        producer.produce(output.topic, output.value, output.key, headers=list(output.headers))

    async def _abort(self, producer: Producer) -> None:
        try:
            await self._blocking(partial(producer.abort_transaction, self._timeout))
        except (KafkaException, Stuck) as err:  # a fatal state: renew() is the way out
            log.warning("abort failed: %s", err.args[0] if err.args else err)

    async def close(self) -> None:
        """Deliver what is queued, bounded like every other blocking call."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await self._blocking(partial(producer.flush, self._timeout))
        except Stuck as err:
            log.warning("close: %s", err)
