"""`ingest.accept` on its own (no HTTP): who may post, what an event carries, where it
goes, and the answer for each outcome."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.topics import Header, Topics
from devkit.sim import sim_tenants
from ingest import accept as acc
from ingest.accept import Ingest
from ingest.body import Refusal, Unreadable
from ingest.settings import IngestSettings
from ingest.spool import SpoolFullError
from tests.support.ingest_app import make_ingest
from yunhu.callbacks import DecodeError

ROOT = Path(__file__).resolve().parents[3]
CALLSTATE = (ROOT / "yunhu" / "examples" / "callstate.json").read_bytes()
KEY = sim_tenants()["9024"].callback_key
TOPICS = Topics()


@pytest.fixture
async def ingest(tmp_path: Path) -> AsyncIterator[Ingest]:
    made = make_ingest(IngestSettings(max_in_flight=2), tmp_path)
    made.writer.spool.open()
    spool = made.writer.spool
    yield made
    await spool.close()


def body(answer: acc.Answer) -> dict[str, str]:
    parsed: dict[str, str] = json.loads(answer.body)
    return parsed


def sample(ingest: Ingest, name: str) -> float:
    value = ingest.metrics.registry.get_sample_value(name, {"reason": "forbidden"})
    return value or 0.0


def test_admit_lets_the_right_key_through_and_refuses_the_rest(ingest: Ingest) -> None:
    assert acc.admit(ingest, "9024", "callstate", KEY, "127.0.0.1") is None
    wrong = acc.admit(ingest, "9024", "callstate", "nope", "127.0.0.1")
    assert wrong is not None
    assert wrong.status == 403
    assert sample(ingest, "callstream_ingest_auth_failures_total") == 1.0
    ingest.in_flight = 2
    assert acc.admit(ingest, "9024", "callstate", KEY, "127.0.0.1") == acc.BUSY
    ingest.closing = True
    assert acc.admit(ingest, "9024", "callstate", KEY, "127.0.0.1") == acc.SHUTTING_DOWN


def test_a_good_callback_goes_to_its_raw_topic_keyed_by_call(ingest: Ingest) -> None:
    event = acc.prepare(
        ingest,
        "9024",
        "callstate",
        source="10.0.0.9",
        content_type=b"application/json",
        body=CALLSTATE,
    )
    headers = dict(event.headers)
    assert event.topic == TOPICS.callstate_raw
    assert event.key == json.loads(CALLSTATE)["uuid"].encode()
    assert event.body == CALLSTATE
    assert event.problem is None
    assert headers[Header.TENANT] == b"9024"
    assert headers[Header.SOURCE] == b"10.0.0.9"
    assert Header.DLQ_REASON not in headers
    again = acc.prepare(ingest, "9024", "callstate", source="x", content_type=b"", body=CALLSTATE)
    assert dict(again.headers)[Header.EVENT_ID] != headers[Header.EVENT_ID]


def test_a_body_of_another_tenant_or_one_that_did_not_decode_is_a_dead_letter(
    ingest: Ingest,
) -> None:
    other = CALLSTATE.replace(b'"companycode":"9024"', b'"companycode":"7001"')
    assert other != CALLSTATE
    event = acc.prepare(ingest, "9024", "callstate", source="x", content_type=b"", body=other)
    assert event.topic == TOPICS.deadletter
    assert event.key is None
    assert dict(event.headers)[Header.DLQ_REASON] == b"tenant_mismatch"
    assert dict(event.headers)[Header.DLQ_SOURCE_TOPIC] == TOPICS.callstate_raw.encode()
    gone = DecodeError("invalid_encoding", "not gzip")
    kept = acc.prepare(
        ingest, "9024", "cdr", source="x", content_type=b"", body=b"\x1f\x8b?", problem=gone
    )
    assert (kept.topic, kept.body, kept.problem) == (TOPICS.deadletter, b"\x1f\x8b?", gone)


def test_answers_once_durable_name_the_problem(ingest: Ingest) -> None:
    good = acc.prepare(ingest, "9024", "callstate", source="x", content_type=b"", body=CALLSTATE)
    assert acc.durable(ingest, good, "kafka") == acc.OK
    problems = [
        (DecodeError("invalid_json", "d"), 400),
        (DecodeError("unsupported_encoding", "d"), 415),
    ]
    for problem, status in problems:
        bad = acc.prepare(
            ingest, "9024", "cdr", source="x", content_type=b"", body=b"x", problem=problem
        )
        answer = acc.durable(ingest, bad, "spool")
        assert answer.status == status
        assert body(answer) == {
            "error": "invalid callback",
            "reason": problem.reason,
            "detail": "d",
        }


def test_a_refusal_closes_the_connection_and_names_the_setting() -> None:
    refusal = Refusal(413, "body too large", "CALLSTREAM_INGEST_BODY_LIMIT", 1024)
    answer = acc.refused(refusal)
    assert answer.close
    assert answer.status == 413
    assert body(answer) == {
        "error": "body too large",
        "setting": "CALLSTREAM_INGEST_BODY_LIMIT",
        "limit": "1024",
    }


class FailingWriter:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def write(self, *args: object) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [(SpoolFullError("full"), acc.SPOOL_FULL), (OSError("disk"), acc.SPOOL_FAILED)],
)
async def test_an_event_nowhere_to_go_is_503(
    ingest: Ingest, error: Exception, expected: acc.Answer
) -> None:
    event = acc.prepare(ingest, "9024", "callstate", source="x", content_type=b"", body=CALLSTATE)
    ingest.writer = FailingWriter(error)  # type: ignore[assignment]
    assert await acc.store(ingest, event) == expected


async def test_accept_stores_reads_awaited_bodies_and_counts_in_flight(ingest: Ingest) -> None:
    seen = []

    async def later() -> bytes:
        seen.append(ingest.in_flight)
        return CALLSTATE

    answer = await acc.accept(
        ingest, "9024", "callstate", source="x", content_type=b"", body=later()
    )
    assert answer == acc.OK
    assert seen == [1]
    assert ingest.in_flight == 0
    assert ingest.writer.spool.records == 1, "no producer yet: the event is in the spool"
    dead = Unreadable(b"\x00", DecodeError("invalid_encoding", "x"))
    answer = await acc.accept(ingest, "9024", "cdr", source="x", content_type=b"", body=dead)
    assert answer.status == 400
    assert ingest.writer.spool.records == 2, "the unreadable body is kept"
    answer = await acc.accept(
        ingest, "9024", "cdr", source="x", content_type=b"", body=Refusal(408, "too slow")
    )
    assert (answer.status, answer.close, ingest.writer.spool.records) == (408, True, 2)
