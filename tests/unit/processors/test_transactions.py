"""RdTransactions with a fake librdkafka producer: a call that overruns its own timeout
is given up on, so the pipe can go back to polling (and renew the producer)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from processors.transactions import Output, RdTransactions, TransactionFailed


class Member:
    def group_metadata(self) -> object:
        return object()


class StuckProducer:
    """send_offsets_to_transaction blocks well past its timeout, as seen after a broker
    restart followed by a rebalance (and init_transactions or flush too, when told to)."""

    def __init__(self, config: dict[str, Any], *, stuck: frozenset[str]) -> None:
        self.calls: list[str] = []
        self.unstuck = threading.Event()
        self.stuck = stuck

    def init_transactions(self, timeout: float) -> None:
        self.calls.append("init")
        if "init" in self.stuck:
            self.unstuck.wait(5)

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("produce")

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self.calls.append("send_offsets")
        if "send_offsets" in self.stuck:
            self.unstuck.wait(5)
        self.calls.append("send_offsets returned")

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")

    def purge(self) -> None:
        self.calls.append("purge")

    def flush(self, timeout: float) -> int:
        self.calls.append("flush")
        if "flush" in self.stuck:
            self.unstuck.wait(5)
        return 0


def stuck_transactions(
    grace: float, *, also: frozenset[str] = frozenset()
) -> tuple[RdTransactions, list[StuckProducer]]:
    """Transactions whose producers' `send_offsets_to_transaction` (and, if told,
    `init_transactions` or `flush`) blocks until unstuck, and the producers they made."""
    built: list[StuckProducer] = []

    def factory(config: dict[str, Any]) -> Any:
        built.append(StuckProducer(config, stuck=also | {"send_offsets"}))
        return built[-1]

    return RdTransactions({}, Member(), timeout=0.1, grace=grace, factory=factory), built


async def asks_nothing_more_once_unstuck(producer: StuckProducer) -> None:
    """Lets the stuck send_offsets return; no call follows it (a commit, say)."""
    producer.unstuck.set()
    deadline = time.monotonic() + 5
    while "send_offsets returned" not in producer.calls and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # time enough for the thread to make a further call, were it to
    assert producer.calls == ["init", "begin", "produce", "send_offsets", "send_offsets returned"]


async def test_a_call_that_overruns_its_timeout_fails_the_transaction_in_time() -> None:
    transactions, built = stuck_transactions(grace=0.2)
    await transactions.start()
    started = time.monotonic()
    # The offsets and the commit each have their timeout: 2 x 0.1 s, and the grace.
    with pytest.raises(TransactionFailed, match=r"did not return within 0\.4s"):
        await transactions.commit([Output("out", b"k", b"v")], {("raw", 0): 1})
    assert time.monotonic() - started < 1.5, "not waited for the stuck call"
    assert built[0].calls == ["init", "begin", "produce", "send_offsets"], "no commit, no abort"
    await transactions.renew()
    assert len(built) == 2
    assert built[0].calls[-1] == "purge"
    assert built[1].calls == ["init"]
    built[0].unstuck.set()


async def test_a_producer_given_up_on_is_not_asked_to_commit_when_its_call_returns() -> None:
    transactions, built = stuck_transactions(grace=0.1)
    await transactions.start()
    with pytest.raises(TransactionFailed):
        await transactions.commit([Output("out", b"k", b"v")], {("raw", 0): 1})
    await asks_nothing_more_once_unstuck(built[0])


async def test_a_transaction_cancelled_mid_call_asks_its_producer_nothing_more() -> None:
    transactions, built = stuck_transactions(grace=5.0)  # a stop, well before the timeout
    await transactions.start()
    committing = asyncio.create_task(
        transactions.commit([Output("out", b"k", b"v")], {("raw", 0): 1})
    )
    while "send_offsets" not in built[0].calls:
        await asyncio.sleep(0.01)
    committing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await committing
    await asks_nothing_more_once_unstuck(built[0])


async def test_a_start_that_overruns_its_timeout_fails_in_time_and_leaves_no_producer() -> None:
    transactions, built = stuck_transactions(grace=0.2, also=frozenset({"init"}))
    started = time.monotonic()
    with pytest.raises(TransactionFailed, match=r"init_transactions did not return within 0\.3s"):
        await transactions.start()
    assert time.monotonic() - started < 1.5, "not waited for the stuck start"
    built[0].unstuck.set()
    with pytest.raises(TransactionFailed):
        await transactions.commit([Output("out", b"k", b"v")], {("raw", 0): 1})
    assert len(built) == 1, "a commit does not start a producer"


async def test_a_close_whose_flush_overruns_its_timeout_returns_in_time() -> None:
    transactions, built = stuck_transactions(grace=0.2, also=frozenset({"flush"}))
    await transactions.start()
    started = time.monotonic()
    await transactions.close()
    assert time.monotonic() - started < 1.5, "not waited for the stuck flush"
    assert built[0].calls == ["init", "flush"]
    built[0].unstuck.set()
