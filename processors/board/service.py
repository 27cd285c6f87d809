"""The board service: `callstream.callstate` and `callstream.cdr` in, extension states,
minute metrics and anomalies out, exactly once (the enrich pipe's transactions).

Its state is rebuilt at start: the extensions from their compacted topic, the rest by
applying the input records of the last `horizon` up to the group's committed offsets
(with their outputs dropped: they were published before). It runs as one replica: a
tenant's minutes need all of its calls, whichever partition they are on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from aiokafka.errors import KafkaError

from common.config import KafkaSettings
from common.http_serving import Listen
from common.kafka import (
    committed_reader,
    kafka_admin,
    partitions_of,
    read_records,
    records_to_end,
)
from common.records import CallStateRecord, CdrRecord, ExtensionRecord
from common.retry import until_done
from common.settings import load
from common.topics import Header, Topics
from processors.board.state import MINUTE_MS, Board, BoardSettings, Output
from processors.consumer import Record
from processors.pipe import PipeSpec, transactional_pipe
from processors.runtime import PipeMetrics, Rejected, TransactionalPipe
from processors.transactions import Output as Produced

log = logging.getLogger(__name__)

SERVICE: Final = "board"
_CALLSTATE: Final = msgspec.json.Decoder(CallStateRecord)
_CDR: Final = msgspec.json.Decoder(CdrRecord)
_EXTENSION: Final = msgspec.json.Decoder(ExtensionRecord)


@dataclass(frozen=True, slots=True)
class BoardServiceSettings:
    group_id: str = "callstream-board"
    instance: str = "0"
    lateness_seconds: float = 120.0
    reconcile_seconds: float = 900.0
    max_call_seconds: float = 14_400.0
    stall_seconds: float = 600.0
    keep_minutes: int = 60
    metrics_port: int = 9104
    http_port: int = 8090
    http_host: str = "0.0.0.0"  # noqa: S104 - the page is for the call centre's screens
    # Open connections to the page; past it the oldest are closed (common.connections).
    http_max_connections: int = 256
    session_timeout_ms: int = 45_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BoardServiceSettings:
        """`CALLSTREAM_BOARD_{FIELD}` (`common.settings`)."""
        return load(cls, env, "CALLSTREAM_BOARD_", {"instance": "CALLSTREAM_INSTANCE"})

    def page_listen(self) -> Listen:
        """Where the page listens, and its bound."""
        return Listen(
            "board.page",
            self.http_host,
            self.http_port,
            self.http_max_connections,
            "CALLSTREAM_BOARD_HTTP_MAX_CONNECTIONS",
        )

    def board(self, partitions: Mapping[str, int]) -> BoardSettings:
        return BoardSettings(
            lateness_ms=int(self.lateness_seconds * 1000),
            reconcile_ms=int(self.reconcile_seconds * 1000),
            max_call_ms=int(self.max_call_seconds * 1000),
            keep_minutes=self.keep_minutes,
            stall_ms=int(self.stall_seconds * 1000),
            partitions=partitions,
        )

    @property
    def horizon_ms(self) -> int:
        """How far back a start re-reads: whatever may still change the state."""
        keep = self.keep_minutes * MINUTE_MS
        return int((self.lateness_seconds + self.reconcile_seconds) * 1000) + keep


class BoardTransform:
    """The pipe's transform: one input record in, what it changes out."""

    def __init__(self, topics: Topics, board: Board) -> None:
        self.topics = topics
        self.board = board
        self.where = {
            "extensions": topics.extensions,
            "metrics": topics.metrics_minute,
            "anomalies": topics.anomalies,
        }

    def apply(self, topic: str, partition: int, value: bytes) -> list[Output]:
        try:
            if topic == self.topics.cdr:
                return self.board.apply_cdr(_CDR.decode(value), partition)
            return self.board.apply_callstate(_CALLSTATE.decode(value), partition)
        except msgspec.DecodeError as err:
            raise Rejected(f"not a {topic} record: {err}") from None

    def __call__(self, record: Record) -> list[Produced]:
        tenant = dict(record.headers).get(Header.TENANT, b"")
        return [
            Produced(self.where[which], key.encode(), value, [(Header.TENANT, tenant)])
            for which, key, value in self.apply(record.topic, record.partition, record.value or b"")
        ]


async def rebuild(
    kafka: KafkaSettings, topics: Topics, transform: BoardTransform, group: str, horizon_ms: int
) -> int:
    """The state as the last commit left it; returns how many records were applied."""
    board = transform.board
    for record in await read_records(kafka, [topics.extensions]):
        if record.value is not None:  # a tombstone would be a deleted extension
            state = _EXTENSION.decode(record.value)
            board.extensions[state.tenant, state.extnumber] = state
    async with kafka_admin(kafka) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    stops = {
        tp: m.offset for tp, m in committed.items() if tp.topic in {topics.callstate, topics.cdr}
    }
    if not stops:
        return 0
    records: list[Any] = []
    async with committed_reader(kafka) as consumer:
        since = int(time.time() * 1000) - horizon_ms
        found = await consumer.offsets_for_times(dict.fromkeys(stops, since))
        starts = {tp: found[tp].offset if found.get(tp) else stops[tp] for tp in stops}
        todo = [tp for tp in stops if starts[tp] < stops[tp]]
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, starts[tp])
        async for batch in records_to_end(consumer, todo, stops=stops):
            records += batch
    # In the order they were written, near enough (the results do not depend on it).
    records.sort(key=lambda r: r.timestamp)
    for record in records:
        transform.apply(record.topic, record.partition, record.value or b"")
    return len(records)


def watch(board: Board, metrics: PipeMetrics) -> None:
    """What the board did with late CDRs, beside the pipe's own metrics."""
    metrics.gauge(
        "callstream_board_late_calls",
        "CDRs that came after their minute was published (minutes kept)",
    ).set_function(lambda: sum(m.flags.get("late", 0) for m in board.minutes.values()))
    metrics.gauge(
        "callstream_board_too_late_calls",
        "CDRs older than every minute kept: counted here, in no minute",
    ).set_function(lambda: sum(board.dropped.values()))


@contextlib.asynccontextmanager
async def board_pipe(
    kafka: KafkaSettings, topics: Topics, settings: BoardServiceSettings
) -> AsyncIterator[tuple[TransactionalPipe, Board]]:
    """The board, its state rebuilt, and its pipe, started; closed on leaving."""
    inputs = {"callstate": topics.callstate, "cdr": topics.cdr}
    found = await until_done(
        lambda: partitions_of(kafka, inputs.values()), "listing partitions", retry_on=(KafkaError,)
    )
    partitions = {kind: sum(tp.topic == topic for tp in found) for kind, topic in inputs.items()}
    board = Board(settings.board(partitions))
    transform = BoardTransform(topics, board)
    applied = await until_done(
        lambda: rebuild(kafka, topics, transform, settings.group_id, settings.horizon_ms),
        "rebuilding the board",
        retry_on=(KafkaError,),
    )
    log.info("board rebuilt", extra={"records": applied, "extensions": len(board.extensions)})
    spec = PipeSpec(
        service=SERVICE,
        group_id=settings.group_id,
        transactional_id=f"{settings.group_id}-{settings.instance}",
        inputs=[topics.callstate, topics.cdr],
        deadletter_topic=topics.deadletter,
        session_timeout_ms=settings.session_timeout_ms,
    )
    async with transactional_pipe(kafka, spec, transform, board) as runner:
        watch(board, runner.metrics)
        yield runner, board
