"""TransactionalPipe's batch overlap with fakes: the next batch is transformed while the
previous one's transaction runs, and a batch that must not commit never does."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from processors.consumer import Record, TopicPartition
from processors.enrich.dedupe import Deduper
from processors.runtime import PipeMetrics, RevokeAfterBatch, TransactionalPipe
from processors.transactions import Output, TransactionFailed

TP0, TP1 = ("raw", 0), ("raw", 1)
Batch = dict[TopicPartition, list[Record]]


def records(tp: TopicPartition, *offsets: int) -> list[Record]:
    return [Record(tp[0], tp[1], o, b"k", b"%d" % o, [], 0) for o in offsets]


@dataclass
class FakeConsumer:
    """Hands out `batches` in turn (None: nothing fetched yet), then sets `stop` (with
    `stop_after_rewind`, only once the pipe has sought: a failure settled while running,
    not as it stops); `group` holds the offsets committed."""

    batches: deque[Batch | None]
    stop: asyncio.Event
    group: dict[TopicPartition, int]
    stop_after_rewind: bool = False
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    assigned: set[TopicPartition] = field(default_factory=lambda: {TP0, TP1})

    async def getmany(self, timeout_ms: int, max_records: int) -> Batch:
        if not self.batches:
            if self.seeks or not self.stop_after_rewind:
                self.stop.set()
        elif (batch := self.batches.popleft()) is not None:
            return batch
        await asyncio.sleep(0)
        return {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def lag(self) -> dict[TopicPartition, int]:
        return {}

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.group[tp] for tp in tps if tp in self.group}


@dataclass
class FakeTransactions:
    """Transactions that wait at `gates[n]` (the n-th transaction) and fail if n is in
    `fail`; if n is in `lost`, it commits, offsets into `group`, and then fails."""

    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    fail: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)
    group: dict[TopicPartition, int] = field(default_factory=dict)
    committed: list[tuple[list[bytes], dict[TopicPartition, int]]] = field(default_factory=list)
    started: int = 0
    renewals: int = 0
    broker_gone: bool = False  # renew() fails

    async def commit(self, outputs: Sequence[Output], offsets: dict[TopicPartition, int]) -> None:
        number = self.started
        self.started += 1
        gate = self.gates.get(number)
        if gate is not None:
            await asyncio.wait_for(gate.wait(), 5)
        if number in self.fail:
            raise TransactionFailed("broker gone")
        self.committed.append(([o.value for o in outputs], dict(offsets)))
        self.group.update(offsets)
        if number in self.lost:
            raise TransactionFailed("the commit's answer was lost")

    async def renew(self) -> None:
        self.renewals += 1
        if self.broker_gone:
            raise TransactionFailed("transactions could not start: broker gone")


def pipe(
    batches: Sequence[Batch | None],
    transactions: FakeTransactions,
    on_record: Callable[[Record], None],
    hooks: Deduper | None = None,
    *,
    stop_after_rewind: bool = False,
) -> tuple[TransactionalPipe, FakeConsumer]:
    consumer = FakeConsumer(deque(batches), asyncio.Event(), transactions.group, stop_after_rewind)

    def transform(record: Record) -> list[Output]:
        on_record(record)
        if hooks is not None and not hooks.admit(TP0, (record.value or b"").decode()):
            return []
        return [Output("out", record.key, record.value or b"")]

    runner = TransactionalPipe(
        consumer,
        transactions,
        service="test",
        deadletter_topic="dlq",
        transform=transform,
        listener=RevokeAfterBatch(asyncio.Lock()),
        hooks=hooks,
    )
    return runner, consumer


def first_held_until(
    offset: int, *, fail: set[int] | None = None
) -> tuple[FakeTransactions, Callable[[Record], None]]:
    """Transactions whose first stays with the broker until record `offset` is
    transformed, and the transform's hook that lets it go."""
    transformed = asyncio.Event()
    transactions = FakeTransactions(gates={0: transformed}, fail=fail or set())

    def on_record(record: Record) -> None:
        if record.offset == offset:
            transformed.set()

    return transactions, on_record


async def test_the_next_batch_is_transformed_while_the_transaction_runs() -> None:
    transactions, on_record = first_held_until(2)  # batch 0 commits only after that
    runner, consumer = pipe(
        [{TP0: records(TP0, 0, 1)}, {TP0: records(TP0, 2)}], transactions, on_record
    )
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.committed == [([b"0", b"1"], {TP0: 2}), ([b"2"], {TP0: 3})]
    assert consumer.seeks == []


async def test_what_is_read_while_a_transaction_runs_is_the_next_transaction() -> None:
    transactions, on_record = first_held_until(3)
    batches = [{TP0: records(TP0, 0, 1)}, {TP0: records(TP0, 2)}, {TP0: records(TP0, 3)}]
    runner, consumer = pipe(batches, transactions, on_record)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.committed == [([b"0", b"1"], {TP0: 2}), ([b"2", b"3"], {TP0: 4})]


async def test_what_arrives_after_a_read_found_nothing_still_joins_the_next_transaction() -> None:
    # Record 2, which lets transaction 0 go, is fetched after a read that found nothing.
    transactions, on_record = first_held_until(2)
    batches = [{TP0: records(TP0, 0)}, {TP0: records(TP0, 1)}, None, {TP0: records(TP0, 2)}]
    runner, consumer = pipe(batches, transactions, on_record)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.committed == [([b"0"], {TP0: 1}), ([b"1", b"2"], {TP0: 3})]


async def test_a_transaction_takes_at_most_max_transaction_records() -> None:
    # Transaction n is with the broker until record `after[n]` is transformed.
    after = {0: 2, 1: 4, 2: 5}
    gates = {n: asyncio.Event() for n in after}
    transactions = FakeTransactions(gates=gates)

    def on_record(record: Record) -> None:
        for n, offset in after.items():
            if record.offset == offset:
                gates[n].set()

    batches = [{TP0: records(TP0, o)} for o in range(6)]
    runner, consumer = pipe(batches, transactions, on_record)
    runner.max_transaction = 2
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert [values for values, _ in transactions.committed] == [
        [b"0"],
        [b"1", b"2"],
        [b"3", b"4"],
        [b"5"],
    ]


async def test_a_failed_transaction_drops_the_batch_transformed_meanwhile() -> None:
    transactions, on_record = first_held_until(2, fail={0})
    deduper = Deduper()
    batches = [{TP0: records(TP0, 0, 1)}, {TP0: records(TP0, 2), TP1: records(TP1, 7)}]
    runner, consumer = pipe(batches, transactions, on_record, hooks=deduper, stop_after_rewind=True)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.committed == []
    # Every partition back to its first record not committed, once: tp0 to batch 1's first.
    assert sorted(consumer.seeks) == [(TP0, 0), (TP1, 7)]
    assert all(deduper.admit(TP0, v) for v in ["0", "1", "2", "7"]), "nothing counts as published"


async def test_a_batch_read_before_a_revocation_is_not_committed() -> None:
    second_transformed = asyncio.Event()
    release = asyncio.Event()
    transactions = FakeTransactions(gates={0: release})
    deduper = Deduper()

    def on_record(record: Record) -> None:
        if record.offset == 2:
            second_transformed.set()

    batches = [{TP0: records(TP0, 0, 1)}, {TP0: records(TP0, 2)}]
    runner, consumer = pipe(batches, transactions, on_record, hooks=deduper, stop_after_rewind=True)
    running = asyncio.create_task(runner.run(consumer.stop))
    await asyncio.wait_for(second_transformed.wait(), 5)
    revoking = asyncio.create_task(runner.listener.on_partitions_revoked([TP0]))
    await asyncio.sleep(0.01)
    assert not revoking.done(), "a revocation waits for the transaction in flight"
    release.set()
    await asyncio.wait_for(asyncio.gather(running, revoking), 5)
    assert transactions.committed == [([b"0", b"1"], {TP0: 2})]
    assert consumer.seeks == [(TP0, 2)]
    assert not deduper.admit(TP0, "1"), "batch 1 committed"
    assert deduper.admit(TP0, "2"), "batch 2 did not"


async def test_a_batch_read_before_a_rebalance_resumes_from_the_group_s_committed_offset() -> None:
    second_transformed = asyncio.Event()
    release = asyncio.Event()
    transactions = FakeTransactions(gates={0: release})

    def on_record(record: Record) -> None:
        if record.offset == 2:
            second_transformed.set()

    batches = [{TP0: records(TP0, 0, 1)}, {TP0: records(TP0, 2)}]
    runner, consumer = pipe(batches, transactions, on_record, stop_after_rewind=True)
    running = asyncio.create_task(runner.run(consumer.stop))
    await asyncio.wait_for(second_transformed.wait(), 5)
    revoking = asyncio.create_task(runner.listener.on_partitions_revoked([TP0]))

    async def another_replica_reads_on() -> None:
        async with runner.lock:  # after the revocation, before batch 1 is tried
            transactions.group[TP0] = 9

    other = asyncio.create_task(another_replica_reads_on())
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.wait_for(asyncio.gather(running, revoking, other), 5)
    assert transactions.committed == [([b"0", b"1"], {TP0: 2})]
    assert consumer.seeks == [(TP0, 9)], "not back to batch 1's first record, 2"


def test_the_deduper_commits_batches_in_order() -> None:
    deduper = Deduper()
    deduper.started()
    assert deduper.admit(TP0, "a")
    deduper.started()
    assert deduper.admit(TP0, "b")
    assert not deduper.admit(TP0, "a"), "pending in an earlier batch"
    deduper.committed()  # the oldest: a
    deduper.aborted()  # b's batch
    assert not deduper.admit(TP0, "a")
    assert deduper.admit(TP0, "b")


async def test_a_failed_transaction_renews_the_producer_and_the_batch_is_read_again() -> None:
    transactions = FakeTransactions(fail={0})
    batch = {TP0: records(TP0, 0, 1)}
    # The batch, the next one read meanwhile (dropped with it), and the batch read again.
    runner, consumer = pipe([batch, batch, batch], transactions, lambda _: None)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.renewals == 1
    assert consumer.seeks == [(TP0, 0)]
    assert transactions.committed == [([b"0", b"1"], {TP0: 2})]


async def test_a_transaction_that_committed_though_its_commit_call_failed_is_not_read_again() -> (
    None
):
    transactions, on_record = first_held_until(2)
    transactions.lost = {0}
    deduper = Deduper()
    batches = [{TP0: records(TP0, 0, 1)}, {TP0: records(TP0, 2), TP1: records(TP1, 7)}]
    runner, consumer = pipe(batches, transactions, on_record, hooks=deduper, stop_after_rewind=True)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.committed == [([b"0", b"1"], {TP0: 2})]
    assert transactions.renewals == 1
    # tp0 from the group's committed offset, past batch 0; tp1 from batch 1's first.
    assert sorted(consumer.seeks) == [(TP0, 2), (TP1, 7)]
    assert not deduper.admit(TP0, "0"), "batch 0 counts as published"
    assert deduper.admit(TP0, "2"), "batch 1 does not"
    registry = runner.metrics.registry
    assert registry.get_sample_value("callstream_produced_records_total", {"topic": "out"}) == 2


async def test_a_transaction_failed_as_the_pipe_stops_is_left_to_the_next_reader() -> None:
    transactions = FakeTransactions(fail={0})
    deduper = Deduper()
    runner, consumer = pipe([{TP0: records(TP0, 0, 1)}], transactions, lambda _: None, deduper)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.committed == []
    assert transactions.renewals == 0, "nothing is retried"
    assert consumer.seeks == [], "nobody reads on here"
    assert deduper.admit(TP0, "0"), "nothing counts as published"


async def test_a_pipe_stopping_with_the_broker_gone_does_not_wait_for_it() -> None:
    transactions = FakeTransactions(fail={0}, broker_gone=True)
    runner, consumer = pipe([{TP0: records(TP0, 0, 1)}], transactions, lambda _: None)
    await asyncio.wait_for(runner.run(consumer.stop), 5)
    assert transactions.renewals == 0, "nothing is retried"
    assert transactions.committed == []


async def test_a_recovery_under_way_ends_when_the_pipe_is_told_to_stop() -> None:
    transactions = FakeTransactions(fail={0}, broker_gone=True)
    batches = [{TP0: records(TP0, 0, 1)}, None]
    runner, consumer = pipe(batches, transactions, lambda _: None, stop_after_rewind=True)
    running = asyncio.create_task(runner.run(consumer.stop))
    async with asyncio.timeout(5):
        while transactions.renewals == 0:  # the broker is gone: renewing until it is back
            await asyncio.sleep(0.01)
    consumer.stop.set()
    await asyncio.wait_for(running, 2)
    assert transactions.renewals == 1, "the recovery's first try, no more"
    assert consumer.seeks == []
    assert transactions.committed == []


def test_lag_is_exported_for_the_partitions_assigned_now_only() -> None:
    metrics = PipeMetrics()
    metrics.set_lag({("raw", "0"): 5, ("raw", "1"): 7})
    metrics.set_lag({("raw", "1"): 2})  # partition 0 went to another member
    registry = metrics.registry
    assert (
        registry.get_sample_value("callstream_consumer_lag", {"topic": "raw", "partition": "1"})
        == 2
    )
    assert (
        registry.get_sample_value("callstream_consumer_lag", {"topic": "raw", "partition": "0"})
        is None
    )
