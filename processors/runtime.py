"""The consume → transform → produce loop shared by callstream's consumers.

`TransactionalPipe` reads a batch (read_committed), turns each record into zero or more
output records, and publishes them together with the batch's offsets in one Kafka
transaction: a crash before the commit aborts both, so the committed output holds each
input once. A record the transform rejects goes to the dead-letter topic in the same
transaction, with headers naming the service, the error and the source position: the
group never stops on a poison record. After any failed commit call the producer is
renewed (a new one with the same transactional id, whose start fences the old one and
settles what it left open: a producer left in a fatal state by a broker restart would
otherwise refuse every later transaction), and each partition goes back to the group's
committed offset, with backoff. Not to the batch's first offset: a commit whose answer
was lost may still have landed. Once told to stop it tries nothing again: a failed
transaction's batches are left to whoever reads the partitions next.

The consumer and the transactions are librdkafka's (`processors.consumer`,
`processors.transactions`): offsets are committed with the group's generation, so a
member that lost its partitions cannot commit for them (KIP-447).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError

from common.metrics import ServiceMetrics
from common.retry import Backoff, until_done
from common.stopping import Stopped, unless_stopped
from common.topics import dead_letter_headers
from processors.consumer import Rebalance, Record, TopicPartition
from processors.transactions import Output

log = logging.getLogger(__name__)

YIELD_EVERY = 100  # records transformed between turns of the event loop
# While a transaction is out and nothing new is fetched, how long to wait for it before
# looking for records again: what comes meanwhile then rides in the next transaction.
LOOK_AGAIN_SECONDS = 0.005


class BatchHooks(Protocol):
    """Follows the batches: one is `started` before its records are transformed; each
    `committed` is the oldest started one's; `aborted` drops every batch not committed."""

    def started(self) -> None: ...

    def committed(self) -> None: ...

    def aborted(self) -> None: ...


class Rejected(Exception):
    """The transform refuses this record for good: it goes to the dead-letter topic."""


Transform = Callable[[Record], list[Output]]


class Consumer(Protocol):
    """What the pipe needs of a group consumer (`processors.consumer.RdConsumer`)."""

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Record]]: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    def lag(self) -> dict[TopicPartition, int]: ...

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]: ...


class Transactions(Protocol):
    """What the pipe needs of a transactional producer (`processors.transactions`)."""

    async def commit(
        self, outputs: Sequence[Output], offsets: dict[TopicPartition, int]
    ) -> None: ...

    async def renew(self) -> None: ...


class PipeMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.consumed = self.counter("callstream_consumed_records", "Records read", ["topic"])
        self.produced = self.counter("callstream_produced_records", "Records written", ["topic"])
        self.deadletters = self.counter(
            "callstream_deadletters", "Records sent to the dead-letter topic", ["topic"]
        )
        self.aborts = self.counter("callstream_aborted_batches", "Batches rolled back")
        self.lag = self.gauge(
            "callstream_consumer_lag", "High-water mark minus position", ["topic", "partition"]
        )

    def set_lag(self, lags: dict[tuple[str, str], int]) -> None:
        """The lag of the partitions assigned now; those given up since are dropped (a
        stale figure would read as lag that nobody will ever consume)."""
        self.lag.clear()
        for (topic, partition), lag in lags.items():
            self.lag.labels(topic, partition).set(lag)


class RevokeAfterBatch:
    """Rebalance listener: partitions are given up only between transactions, and a batch
    transformed before the revocation is never committed (its records are read again)."""

    def __init__(self, lock: asyncio.Lock, on_assigned: Rebalance | None = None) -> None:
        self.lock = lock
        self.generation = 0
        self._on_assigned = on_assigned  # e.g. loading per-partition state
        # What the group gave us last; read this rather than call the consumer, which
        # blocks while librdkafka runs a rebalance callback.
        self.assigned: frozenset[TopicPartition] = frozenset()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:  # let the transaction in flight commit (or abort) first
            self.generation += 1
            self.assigned = self.assigned.difference(revoked)
            log.info("partitions revoked", extra={"partitions": [str(tp) for tp in revoked]})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": [str(tp) for tp in assigned]})
        if self._on_assigned is not None:
            await self._on_assigned(assigned)
        self.assigned = frozenset(assigned)


Batch = dict[TopicPartition, list[Record]]


class Stale(Exception):
    """The batch was read before a rebalance: its partitions' positions were reset."""


@dataclass
class InFlight:
    """A transaction running: what it sends, and its task."""

    sent: Pending
    task: asyncio.Task[None]


@dataclass
class Pending:
    """Batches transformed while a transaction was with the broker: the next transaction."""

    generation: int  # the rebalance generation when its first records were read
    batch: Batch = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    records: int = 0

    def add(self, batch: Batch, outputs: list[Output]) -> None:
        for tp, records in batch.items():
            self.batch.setdefault(tp, []).extend(records)
            self.records += len(records)
        self.outputs.extend(outputs)


class TransactionalPipe:
    """Transforms what comes next while a transaction is with the broker: the transform's
    CPU overlaps the transaction's round trips, and what was transformed meanwhile (up to
    `max_transaction` records) is the next transaction. So a transaction is as big as
    the backlog allows: small when records trickle in (low latency), large when there is
    a backlog (fewer round trips per record). While a transaction is out, the pipe keeps
    looking for records, so what arrives meanwhile joins the next transaction rather
    than the one after. Transactions still run one at a time, in order, so the output
    keeps each key's order."""

    def __init__(
        self,
        consumer: Consumer,
        transactions: Transactions,
        *,
        service: str,
        deadletter_topic: str,
        transform: Transform,
        listener: RevokeAfterBatch,
        hooks: BatchHooks | None = None,
        metrics: PipeMetrics | None = None,
        max_records: int = 500,
        max_transaction: int = 5000,
    ) -> None:
        self.consumer = consumer
        self.transactions = transactions
        self.service = service.encode()
        self.deadletter_topic = deadletter_topic
        self.transform = transform
        self.hooks = hooks
        self.metrics = metrics or PipeMetrics()
        self.max_records = max_records
        self.max_transaction = max_transaction
        self.listener = listener
        self.lock = listener.lock
        self._backoff = Backoff(first=0.2, most=10.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; returns once the last batch read is committed (or not)."""
        in_flight: InFlight | None = None
        pending: Pending | None = None
        while not stop.is_set():
            # While a transaction runs, take only what is already fetched.
            wait_ms = 0 if in_flight is not None else 500
            batch = await self.consumer.getmany(timeout_ms=wait_ms, max_records=self.max_records)
            if batch:
                pending = pending or self._pending()
                pending.add(batch, await self._transform(batch))
                if self._keep_reading(in_flight, pending):
                    continue
            elif in_flight is None:
                self._export_lag()
                continue
            elif not in_flight.task.done():
                await asyncio.wait({in_flight.task}, timeout=LOOK_AGAIN_SECONDS)
                continue
            if in_flight is not None and not await self._settle(in_flight, stop, pending):
                in_flight = pending = None
                continue
            in_flight = self._send(pending) if pending is not None else None
            pending = None
            await asyncio.sleep(0)  # the transaction starts (and sends) before the next transform
        if pending is not None:
            settled = in_flight is None or await self._settle(in_flight, stop, pending)
            in_flight = self._send(pending) if settled else None  # failed: settled already
        if in_flight is not None:
            await self._settle(in_flight, stop)

    def _pending(self) -> Pending:
        if self.hooks is not None:
            self.hooks.started()
        return Pending(self.listener.generation)

    def _keep_reading(self, in_flight: InFlight | None, pending: Pending) -> bool:
        """Transform more into `pending` rather than wait: the transaction in flight is
        still with the broker and `pending` has room."""
        if in_flight is None or in_flight.task.done():
            return False
        return pending.records < self.max_transaction

    def _send(self, pending: Pending) -> InFlight:
        return InFlight(pending, asyncio.create_task(self._transaction(pending)))

    async def _transform(self, batch: Batch) -> list[Output]:
        outputs: list[Output] = []
        done = 0
        for (topic, _), records in batch.items():
            self.metrics.consumed.labels(topic).inc(len(records))
            for record in records:
                try:
                    outputs.extend(self.transform(record))
                except Rejected as err:
                    outputs.append(self._dead_letter(record, err))
                done += 1
                if done % YIELD_EVERY == 0:
                    # The transaction in flight gets its broker's answers handled promptly.
                    await asyncio.sleep(0)
        return outputs

    async def _settle(
        self, in_flight: InFlight, stop: asyncio.Event, also: Pending | None = None
    ) -> bool:
        """Waits for `in_flight`'s transaction. If it failed, every batch not committed
        (it, and `also` if given) is dropped and its partitions rewound (or, once `stop`
        is set, left to the next reader); then False."""
        try:
            await in_flight.task
        except Exception as err:  # noqa: BLE001 - every failure is recovered from (and logged)
            sent = in_flight.sent
            batches = [sent.batch] if also is None else [also.batch, sent.batch]
            try:
                await unless_stopped(stop, self._recover(sent, batches, err))
            except Stopped:
                self._give_up(err)
            return False
        self._backoff.reset()
        self._export_lag()
        return True

    async def _recover(self, sent: Pending, batches: list[Batch], err: Exception) -> None:
        """After a failed commit call, a new producer (whose start settles the old one's
        transaction); then, as after a rebalance, each partition back to the group's
        committed offset. Not to the batches' first offsets: a commit whose answer was
        lost (a broker restart, a call given up on) may have landed, and a partition
        revoked and assigned back may have been read further by another replica."""
        stale = isinstance(err, Stale)
        if not stale:
            await asyncio.sleep(self._backoff.next())
            await until_done(
                self.transactions.renew, "a new transactional producer", (Exception,), self._backoff
            )
        committed = await until_done(
            partial(self.consumer.committed, {tp for batch in batches for tp in batch}),
            "reading the committed offsets",
            (Exception,),
            self._backoff,
        )
        landed = not stale and _landed(sent.batch, committed)
        if landed:
            # Its own commit landed (the answer was lost), or, in a replica that lost the
            # partitions, their new owner has read past it: published either way.
            log.warning("the batch is committed though its commit call failed: %r", err)
            self._count(sent.outputs)
        elif not stale:
            self.metrics.aborts.inc()
            log.warning("batch rolled back, will retry: %r", err, exc_info=err)
        if self.hooks is not None:
            if landed:
                self.hooks.committed()
            self.hooks.aborted()
        self._rewind(batches, committed)

    def _give_up(self, err: Exception) -> None:
        """A transaction failed as the pipe stops: what it held is read again by whoever
        reads the partitions next, from the group's committed offsets. Nothing is retried
        (the broker may be gone for good). A transaction the failed call left open ends
        when this replica's successor starts (the same transactional id), or times out."""
        log.warning("the last batch is left uncommitted as the pipe stops: %r", err)
        if not isinstance(err, Stale):
            self.metrics.aborts.inc()
        if self.hooks is not None:
            self.hooks.aborted()

    def _rewind(self, batches: list[Batch], committed: dict[TopicPartition, int]) -> None:
        """Each partition back to its first record not committed: the group's committed
        offset, else (none committed yet) the oldest batch's first (batches are given
        newest first). Partitions no longer ours are their new owner's."""
        starts = {tp: records[0].offset for batch in batches for tp, records in batch.items()}
        starts.update(committed)
        assigned = self.consumer.assignment()
        for tp, offset in starts.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)

    async def _transaction(self, sent: Pending) -> None:
        async with self.lock:
            if sent.generation != self.listener.generation:
                raise Stale
            await self._commit(sent.outputs, sent.batch)
        if self.hooks is not None:
            self.hooks.committed()
        self._count(sent.outputs)

    def _count(self, outputs: list[Output]) -> None:
        """Published: counted by topic."""
        produced = Counter(output.topic for output in outputs)
        for topic, count in produced.items():
            if topic == self.deadletter_topic:
                self.metrics.deadletters.labels(topic).inc(count)
            self.metrics.produced.labels(topic).inc(count)

    async def _commit(self, outputs: list[Output], batch: Batch) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        await self.transactions.commit(outputs, offsets)

    def _dead_letter(self, record: Record, err: Exception) -> Output:
        log.warning(
            "dead letter", extra={"topic": record.topic, "offset": record.offset, "error": str(err)}
        )
        headers = dead_letter_headers(
            record, service=self.service, reason=type(err).__name__, detail=str(err), attempts=1
        )
        return Output(self.deadletter_topic, record.key, record.value or b"", headers)

    def _export_lag(self) -> None:
        lags = {
            (topic, str(partition)): lag for (topic, partition), lag in self.consumer.lag().items()
        }
        self.metrics.set_lag(lags)


def _landed(batch: Batch, committed: dict[TopicPartition, int]) -> bool:
    """Whether the group's committed offsets already cover `batch`: its records are
    published (a transaction's offsets land with its outputs or not at all)."""
    return all(committed.get(tp, -1) > records[-1].offset for tp, records in batch.items())


async def export_lag(consumer: AIOKafkaConsumer, metrics: PipeMetrics) -> None:
    """Lag per assigned partition: the high-water mark minus our position."""
    lags = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = await consumer.position(tp)
        except IllegalStateError:  # given up in a rebalance since `assignment()`
            continue
        lags[(tp.topic, str(tp.partition))] = max(0, high - position)
    metrics.set_lag(lags)
