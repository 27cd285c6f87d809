"""The board's transform and metrics: records routed to their topics with the tenant
header, a record that is not one rejected (to the dead-letter topic), late and too-late
CDRs counted where Prometheus sees them."""

from __future__ import annotations

import msgspec
import pytest

from common.topics import Header, Topics
from processors.board.service import BoardTransform, watch
from processors.board.state import MINUTE_MS, Board, BoardSettings
from processors.consumer import Record
from processors.runtime import PipeMetrics, Rejected
from tests.unit.processors.test_board_state import T0, cdr, event

TOPICS = Topics()


def record(topic: str, value: bytes) -> Record:
    return Record(topic, 0, 1, b"k", value, [(Header.TENANT, b"9024")], 0)


def test_outputs_go_to_the_boards_topics_with_the_tenant() -> None:
    transform = BoardTransform(TOPICS, Board(BoardSettings()))
    [out] = transform(record(TOPICS.callstate, msgspec.json.encode(event("ring", T0))))
    assert (out.topic, out.key) == (TOPICS.extensions, b"9024/90240001")
    assert dict(out.headers) == {Header.TENANT: b"9024"}


def test_a_value_that_is_not_a_record_is_rejected() -> None:
    transform = BoardTransform(TOPICS, Board(BoardSettings()))
    with pytest.raises(Rejected, match=r"not a callstream\.cdr record"):
        transform(record(TOPICS.cdr, b'{"uuid": 1}'))


def test_late_and_too_late_cdrs_are_counted() -> None:
    board = Board(BoardSettings(lateness_ms=0, keep_minutes=2))
    metrics = PipeMetrics()
    watch(board, metrics)
    board.apply_cdr(cdr("a", T0 + 1000))
    board.apply_cdr(cdr("b", T0 + 5 * MINUTE_MS))
    board.apply_cdr(cdr("late", T0 + 4 * MINUTE_MS - 1000))
    board.apply_cdr(cdr("lost", T0 + 2000))
    sample = metrics.registry.get_sample_value
    assert sample("callstream_board_late_calls") == 1
    assert sample("callstream_board_too_late_calls") == 1
