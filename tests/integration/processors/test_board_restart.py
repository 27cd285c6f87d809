"""The board SIGKILLed mid-stream and started again: its state is rebuilt (the compacted
extensions, a bounded re-read of its input up to its committed offsets), so what its
topics end with is what one uninterrupted board makes of the same records."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import msgspec

from common.records import CdrRecord
from devkit.enriched import enriched_records, publish_enriched
from processors.board.state import Board, BoardSettings
from tests.integration.conftest import TopicSetFactory
from tests.support.kafka import read_topic
from tests.support.processes import start_service, stop_service
from tests.support.services import Services

LATENESS_S, RECONCILE_S = 30, 120
SETTINGS = BoardSettings(
    lateness_ms=LATENESS_S * 1000, reconcile_ms=RECONCILE_S * 1000, stall_ms=3_600_000
)


def table(records: list[Any]) -> dict[bytes, Any]:
    out = {}
    for record in records:
        value = msgspec.json.decode(record.value)
        value.pop("late_calls", None)  # depends on arrival
        out[record.key] = value
    return out


async def test_a_restarted_board_ends_where_an_uninterrupted_one_would(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    # Three waves of calls, each ten event-time minutes after the one before.
    waves = [enriched_records(150, seed=70 + w, shift_ms=w * 600_000) for w in range(3)]
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_BOARD_GROUP_ID": f"board-{suffix}",
        "CALLSTREAM_BOARD_LATENESS_SECONDS": str(LATENESS_S),
        "CALLSTREAM_BOARD_RECONCILE_SECONDS": str(RECONCILE_S),
        "CALLSTREAM_BOARD_STALL_SECONDS": "3600",
        "CALLSTREAM_BOARD_HTTP_PORT": "0",
        "CALLSTREAM_INSTANCE": "restart",
    }
    log = tmp_path / "board.log"
    await publish_enriched(services.kafka, topics, waves[0] + waves[1])
    first = start_service("board", env, log)
    try:
        async with asyncio.timeout(60):
            while not await read_topic(services.kafka, topics.metrics_minute):
                assert first.poll() is None, log.read_text()[-3000:]
                await asyncio.sleep(0.5)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    await publish_enriched(services.kafka, topics, waves[2])
    second = start_service("board", env, log)
    try:
        expected = _uninterrupted(waves)
        deadline = asyncio.get_running_loop().time() + 120
        while asyncio.get_running_loop().time() < deadline:  # a slow machine takes longer
            assert second.poll() is None, log.read_text()[-3000:]
            minutes = table(await read_topic(services.kafka, topics.metrics_minute))
            states = table(await read_topic(services.kafka, topics.extensions))
            if minutes == expected["metrics"] and states == expected["extensions"]:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # anything more (an anomaly, say) would show by now
    finally:
        code = stop_service(second)
    assert code == 0, log.read_text()[-3000:]
    assert "board rebuilt" in log.read_text()
    assert table(await read_topic(services.kafka, topics.metrics_minute)) == expected["metrics"]
    assert table(await read_topic(services.kafka, topics.extensions)) == expected["extensions"]
    anomalies = await read_topic(services.kafka, topics.anomalies)
    found = sorted(r.key for r in anomalies)
    assert found == sorted(expected["anomalies"]), [r.value for r in anomalies]


def _uninterrupted(waves: list[list[Any]]) -> dict[str, Any]:
    board = Board(SETTINGS)
    found: dict[str, Any] = {"metrics": {}, "extensions": {}, "anomalies": []}
    for record in (r for wave in waves for r in wave):
        apply = board.apply_cdr if isinstance(record, CdrRecord) else board.apply_callstate
        for which, key, value in apply(record):
            decoded = msgspec.json.decode(value)
            decoded.pop("late_calls", None)
            if which == "anomalies":
                found["anomalies"].append(key.encode())
            else:
                found[which][key.encode()] = decoded
    return found
