"""Simulator traffic → ingest → enrich → board, as real processes: the board's topics hold
every extension's latest state, the closed minutes' counts of every call, and a
`missing_cdr` for each call whose CDR the simulator withheld on purpose — and nothing
else. The simulator's clock runs 40 times faster, so minutes close within the test."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import msgspec

from common.records import AnomalyRecord, CallStateRecord, CdrRecord, ExtensionRecord
from common.records import MinuteMetricsRecord as Minute
from common.schemas import topic_schemas
from common.topics import Topics
from devkit.ports import free_port
from devkit.sim import running_simulator
from processors.board.state import MINUTE_MS, PROGRESS, STATES, minute_of
from tests.integration.conftest import TopicSetFactory
from tests.support.browser import browsing
from tests.support.kafka import read_topic
from tests.support.processes import start_service, stop_service
from tests.support.receiver import start_receiver, wait_healthy
from tests.support.services import Services
from yunhu.sim.poster import TrafficSettings
from yunhu.sim.run import post_traffic

LATENESS_S, RECONCILE_S = 10, 300  # event-time seconds: 40 times faster than real


def latest(records: list[Any], cls: type[Any]) -> dict[bytes, Any]:
    """A compacted topic read as a table: the last value per key."""
    return {r.key: msgspec.json.decode(r.value, type=cls) for r in records}


async def wait_for(within: float, procs: dict[str, subprocess.Popen[bytes]], done: Any) -> None:
    async with asyncio.timeout(within):
        while not await done():
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited"
            await asyncio.sleep(1)


async def test_simulated_traffic_fills_the_boards_topics(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    suffix, topics = await topic_set()
    receiver = start_receiver(tmp_path, services.kafka, suffix)
    page_port = free_port()
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": services.kafka.bootstrap,
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_ENRICH_GROUP": f"enrich-{suffix}",
        "CALLSTREAM_BOARD_GROUP_ID": f"board-{suffix}",
        "CALLSTREAM_BOARD_LATENESS_SECONDS": str(LATENESS_S),
        "CALLSTREAM_BOARD_RECONCILE_SECONDS": str(RECONCILE_S),
        "CALLSTREAM_BOARD_STALL_SECONDS": "3600",
        "CALLSTREAM_BOARD_HTTP_PORT": str(page_port),
    }
    procs = {
        name: start_service(name, env, tmp_path / f"{name}.log") for name in ("enrich", "board")
    }
    procs["ingest"] = receiver.proc
    try:
        await wait_healthy(receiver)
        async with running_simulator() as sim:
            traffic = TrafficSettings(
                receiver.url, rate=20, calls=300, seed=31, speed=40, withhold_cdr=0.05
            )
            sending = asyncio.create_task(post_traffic(sim, traffic))
            await _watch_the_page(f"http://127.0.0.1:{page_port}/", tmp_path)
            report = await sending
        assert report.withheld, "the simulator withheld some CDRs"

        async def settled() -> bool:
            cdrs = await read_topic(services.kafka, topics.cdr)
            return len(cdrs) >= report.calls - len(report.withheld)

        await wait_for(120, procs, settled)
        await asyncio.sleep(5)  # the board's last transactions
        facts = await _read_all(services, topics)
    finally:
        codes = {name: stop_service(proc) for name, proc in procs.items()}
    assert codes == {"enrich": 0, "board": 0, "ingest": 0}, _logs(tmp_path)
    _check_extensions(facts)
    _check_minutes(facts)
    _check_anomalies(facts, set(report.withheld))
    await _every_record_fits_its_schema(services, topics)


SAMPLE = """JSON.stringify({
  updates: Number(document.body.dataset.updates || 0),
  offered: [...document.querySelectorAll("[data-figure=offered]")].map(e => e.textContent),
  tiles: [...document.querySelectorAll("[data-ext]")].map(e => e.dataset.state + e.textContent),
})"""


async def _watch_the_page(url: str, folder: Path) -> None:
    """Headless Chromium on the live page during the traffic: it is pushed updates, and
    its counters and extension tiles change; a screenshot is kept with the test's output."""
    async with browsing(url, folder / "chromium") as page:
        async with asyncio.timeout(60):
            # None while the page is still loading (its body not there yet to read).
            while not ((sample := await page.evaluate(SAMPLE)) and json.loads(sample)["tiles"]):
                await asyncio.sleep(0.5)
        before = json.loads(await page.evaluate(SAMPLE))
        await asyncio.sleep(6)
        after = json.loads(await page.evaluate(SAMPLE))
        await page.screenshot(folder / "board.png")
    assert after["updates"] >= before["updates"] + 3, "pushed about every second"
    assert after["tiles"] != before["tiles"], "extension states moved"
    assert after["offered"] != before["offered"], "the counters moved"
    assert (folder / "board.png").stat().st_size > 10_000


class Facts(msgspec.Struct):
    callstates: list[CallStateRecord]
    cdrs: list[CdrRecord]
    extensions: dict[bytes, ExtensionRecord]
    minutes: dict[bytes, Minute]
    anomalies: list[AnomalyRecord]


async def _read_all(services: Services, topics: Topics) -> Facts:
    def decoded(records: list[Any], cls: type[Any]) -> list[Any]:
        return [msgspec.json.decode(r.value, type=cls) for r in records]

    kafka = services.kafka
    return Facts(
        decoded(await read_topic(kafka, topics.callstate), CallStateRecord),
        decoded(await read_topic(kafka, topics.cdr), CdrRecord),
        latest(await read_topic(kafka, topics.extensions), ExtensionRecord),
        latest(await read_topic(kafka, topics.metrics_minute), Minute),
        decoded(await read_topic(kafka, topics.anomalies), AnomalyRecord),
    )


def _check_extensions(facts: Facts) -> None:
    newest: dict[tuple[str, str], CallStateRecord] = {}
    for event in facts.callstates:
        if event.b_leg or event.started is None:
            continue
        key = (event.tenant, event.extnumber)
        known = newest.get(key)
        if known is None or _order(event) >= _order(known):
            newest[key] = event
    shown = {(e.tenant, e.extnumber): e for e in facts.extensions.values()}
    assert set(shown) == set(newest)
    for key, event in newest.items():
        assert shown[key].state == STATES.get(event.status, event.status)
        assert shown[key].since_ms == event.started.epoch_ms  # type: ignore[union-attr]


def _order(event: CallStateRecord) -> tuple[int, int, str]:
    assert event.started is not None
    return (event.started.epoch_ms, PROGRESS.get(event.status, 1), event.uuid)


def _check_minutes(facts: Facts) -> None:
    watermarks: dict[str, int] = {}
    for cdr in facts.cdrs:
        if cdr.ended is not None:
            watermarks[cdr.tenant] = max(watermarks.get(cdr.tenant, 0), cdr.ended.epoch_ms)
    expected: dict[tuple[str, int], int] = {}
    for cdr in facts.cdrs:
        assert cdr.ended is not None
        minute = minute_of(cdr.ended.epoch_ms)
        if minute + MINUTE_MS + LATENESS_S * 1000 <= watermarks[cdr.tenant] - MINUTE_MS:
            expected[cdr.tenant, minute] = expected.get((cdr.tenant, minute), 0) + 1
    published = {(m.tenant, m.minute_ms): m for m in facts.minutes.values()}
    assert len(expected) >= 5 * 3, "several minutes closed, for each tenant"
    for key, offered in expected.items():
        assert published[key].offered == offered, key
        assert published[key].answered + published[key].missed == offered


def _check_anomalies(facts: Facts, withheld: set[tuple[str, str]]) -> None:
    found = {(a.tenant, a.uuid) for a in facts.anomalies}
    assert {a.kind for a in facts.anomalies} == {"missing_cdr"}
    assert found <= withheld, "no call reported that had its CDR"
    last_event: dict[tuple[str, str], int] = {}
    for event in facts.callstates:
        if event.started is not None:
            key = (event.tenant, event.uuid)
            last_event[key] = max(last_event.get(key, 0), event.started.epoch_ms)
    cdr_high: dict[str, int] = {}  # missing CDRs are decided as the CDR topic moves on
    for cdr in facts.cdrs:
        if cdr.ended is not None:
            cdr_high[cdr.tenant] = max(cdr_high.get(cdr.tenant, 0), cdr.ended.epoch_ms)
    due = {k for k in withheld if last_event[k] + RECONCILE_S * 1000 < cdr_high[k[0]] - MINUTE_MS}
    assert due, "some withheld calls were due"
    assert due <= found, f"not reported: {due - found}"


async def _every_record_fits_its_schema(services: Services, topics: Topics) -> None:
    schemas = topic_schemas()
    for role, topic in (
        ("callstream.extensions", topics.extensions),
        ("callstream.metrics.minute", topics.metrics_minute),
        ("callstream.anomalies", topics.anomalies),
    ):
        validator = jsonschema.Draft202012Validator(schemas[role])
        records = await read_topic(services.kafka, topic)
        assert records, role
        for record in records:
            assert list(validator.iter_errors(json.loads(record.value))) == [], role


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in folder.glob("*.log"))
