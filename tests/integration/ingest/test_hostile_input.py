"""Hostile input gets a clear 4xx, publishes nothing to the raw topics, and leaves the
receiver alive with bounded memory."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.topics import Topics
from devkit.sim import sim_tenants
from tests.support.kafka import read_topic
from tests.support.receiver import Receiver, receiver_on_own_topics
from tests.support.services import Services

KEY = sim_tenants()["9024"].callback_key
SEED_CDR = (Path(__file__).resolve().parents[3] / "yunhu" / "examples" / "cdr.json").read_bytes()


class Target:
    def __init__(self, receiver: Receiver, topics: Topics) -> None:
        self.receiver = receiver
        self.topics = topics
        self.netloc = urlsplit(receiver.url).netloc

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.netloc, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def post(self, body: bytes, kind: str = "callstate", **headers: str) -> tuple[int, bytes]:
        return self.request("POST", f"/callbacks/9024/{kind}?key={KEY}", body, headers)

    def rss_kib(self) -> int:
        return self.receiver.rss_kib()


@pytest.fixture(scope="module")
def target(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("hostile")
    with receiver_on_own_topics(services.kafka, folder) as (receiver, topics):
        yield Target(receiver, topics)


NO_UUID_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=15,
).filter(lambda v: not (isinstance(v, dict) and "uuid" in v))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2048) | NO_UUID_JSON.map(lambda v: json.dumps(v).encode()))
def test_fuzzed_bodies_get_400_and_are_kept_as_dead_letters(target: Target, body: bytes) -> None:
    status, answer = target.post(body)
    assert status == 400, answer
    assert json.loads(answer)["error"] == "invalid callback"


def test_hostile_requests_are_refused_and_leave_the_receiver_healthy(
    target: Target, services: Services
) -> None:
    before = target.rss_kib()
    ten_mib = b"{" + b" " * (10 << 20) + b"}"
    assert target.post(ten_mib)[0] == 413
    bomb = gzip.compress(b"0" * (200 << 20), compresslevel=9)
    assert len(bomb) < 256 << 10
    assert target.post(bomb, **{"Content-Encoding": "gzip"})[0] == 413
    small_bomb = gzip.compress(b" " * (50 << 20), compresslevel=9)
    assert len(small_bomb) < 64 << 10, "under the body limit: only the inflated size can stop it"
    assert target.post(small_bomb, **{"Content-Encoding": "gzip"})[0] == 413
    assert target.request("POST", "/callbacks/9024/callstate?key=wrong", b"{}")[0] == 403
    assert target.request("POST", f"/callbacks/4444/callstate?key={KEY}", b"{}")[0] == 403
    assert target.request("POST", "/callbacks/9024/callstate", b"{}")[0] == 401
    assert target.request("GET", f"/callbacks/9024/callstate?key={KEY}")[0] == 405
    assert target.request("POST", f"/callbacks/9024/recordings?key={KEY}", b"{}")[0] == 404
    assert target.request("POST", "/admin", b"{}")[0] == 404
    assert target.request("GET", "/healthz")[0] == 200
    assert target.receiver.proc.poll() is None
    grown = target.rss_kib() - before
    assert grown < 40 << 10, f"RSS grew by {grown} KiB"

    raw = asyncio.run(read_topic(services.kafka, target.topics.callstate_raw))
    raw += asyncio.run(read_topic(services.kafka, target.topics.cdr_raw))
    assert raw == [], "hostile input reached a raw topic"


def test_the_documents_malformed_cdr_is_400_with_its_exact_bytes_dead_lettered(
    target: Target, services: Services
) -> None:
    status, answer = target.post(SEED_CDR, kind="cdr")
    assert status == 400
    assert json.loads(answer)["reason"] == "invalid_json"
    letters = asyncio.run(read_topic(services.kafka, target.topics.deadletter))
    matching = [r for r in letters if r.value == SEED_CDR]
    assert len(matching) == 1
    headers = dict(matching[0].headers)
    assert headers["dlq-reason"] == b"invalid_json"
    assert headers["tenant"] == b"9024"
    assert headers["kind"] == b"cdr"
