"""The transactional pipe on the real broker: a transaction that committed though its
commit call failed (its answer lost, as when the broker restarts during EndTxn) is not
read and published again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from devkit.raw import publish
from processors.consumer import Record, TopicPartition
from processors.pipe import PipeSpec, transactional_pipe
from processors.runtime import Transactions
from processors.transactions import Output, TransactionFailed
from tests.integration.conftest import TopicFactory
from tests.support.kafka import read_topic
from tests.support.running import running
from tests.support.services import Services

COUNT = 10


@dataclass
class FirstAnswerLost:
    """The pipe's own transactions; the first commit lands, then fails as if its answer
    had never come back."""

    inner: Transactions
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    async def commit(self, outputs: Sequence[Output], offsets: dict[TopicPartition, int]) -> None:
        await self.inner.commit(outputs, offsets)
        if not self.lost.is_set():
            self.lost.set()
            raise TransactionFailed("the commit's answer was lost")

    async def renew(self) -> None:
        await self.inner.renew()


async def test_a_transaction_whose_answer_was_lost_is_not_published_again(
    services: Services, new_topic: TopicFactory
) -> None:
    source, out, dlq = [await new_topic(name, 1) for name in ("pipe-in", "pipe-out", "pipe-dlq")]
    first = [b"a%d" % n for n in range(COUNT)]
    then = [b"b%d" % n for n in range(COUNT)]
    await publish(services.kafka, [(source, b"key", value, []) for value in first])
    name = uuid.uuid4().hex
    spec = PipeSpec("test", f"g-{name}", f"t-{name}", [source], dlq)

    def forward(record: Record) -> list[Output]:
        return [Output(out, record.key, record.value or b"")]

    async with transactional_pipe(services.kafka, spec, forward, None) as pipe:
        pipe.transactions = answer_lost = FirstAnswerLost(pipe.transactions)
        async with running(pipe.run):
            await asyncio.wait_for(answer_lost.lost.wait(), 60)
            # Later records, in the same partition: once they are out, whatever the pipe
            # read again after the failure is out before them.
            await publish(services.kafka, [(source, b"key", value, []) for value in then])
            async with asyncio.timeout(60):
                while then[-1] not in (
                    values := [r.value for r in await read_topic(services.kafka, out)]
                ):
                    await asyncio.sleep(0.2)
    assert values == first + then, "each record once, in order"
