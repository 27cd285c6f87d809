"""The receiver's HTTP edge against hostile clients: raw bytes over real sockets to the
real `callstream ingest` process on a real Kafka, asserting what reached the raw and
dead-letter topics."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator

import pytest

from common.topics import Topics
from tests.support.kafka import Record, read_topic
from tests.support.rawhttp import Connection, chunked, post
from tests.support.receiver import Receiver, receiver_on_own_topics
from tests.support.services import Services

KEEPALIVE = 3.0
BODY_TIMEOUT = 2.0
LINGER = 2.0  # ingest.app.LINGER_SECONDS
TENANTS = """
[[tenant]]
companycode = "9024"
callback_key = "front-9024"

[[tenant]]
companycode = "7001"
callback_key = "front-7001"

[[tenant]]
companycode = "5555"
callback_key = "front-5555"
allow_ips = ["10.9.9.9/32"]
"""
CALLBACK = "/callbacks/9024/callstate?key=front-9024"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
EMPTY_STORED_BLOCK = b"\x00\x00\x00\xff\xff"  # deflate: not final, stored, length 0


def callstate(call: str, companycode: str = "9024") -> bytes:
    return json.dumps({"uuid": call, "companycode": companycode, "status": "ring"}).encode()


class Front:
    def __init__(self, receiver: Receiver, topics: Topics, services: Services) -> None:
        self.receiver = receiver
        self.topics = topics
        self.services = services
        self.address = receiver.address

    def connect(self) -> Connection:
        return Connection(self.address)

    def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Sends `request` while reading the answer (which may come before it is all sent)."""
        connection = self.connect()
        sender = threading.Thread(target=_send_quietly, args=(connection, request))
        sender.start()
        try:
            return connection.answer()
        finally:
            sender.join(10)
            connection.close()

    def rss_kib(self) -> int:
        return self.receiver.rss_kib()

    def metric(self, name: str) -> float:
        return self.receiver.metric(name)

    def raw(self, prefix: str) -> list[Record]:
        records = asyncio.run(read_topic(self.services.kafka, self.topics.callstate_raw))
        return [r for r in records if (r.key or b"").startswith(prefix.encode())]

    def dead_letters(self) -> list[Record]:
        return asyncio.run(read_topic(self.services.kafka, self.topics.deadletter))


@pytest.fixture(scope="module")
def front(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    with receiver_on_own_topics(
        services.kafka,
        tmp_path_factory.mktemp("front"),
        tenants_toml=TENANTS,
        extra_env={
            "CALLSTREAM_INGEST_TRUSTED_PROXIES": "127.0.0.0/8",
            "CALLSTREAM_INGEST_KEEPALIVE": str(KEEPALIVE),
            "CALLSTREAM_INGEST_BODY_TIMEOUT": str(BODY_TIMEOUT),
        },
    ) as (receiver, topics):
        yield Front(receiver, topics, services)


def _send_quietly(connection: Connection, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the receiver may answer and close before the end
        connection.send(data)


def _flood(connection: Connection, request: bytes, budget: int, within: float) -> int:
    """Writes `request` again and again without reading, until `budget` bytes are
    written or the server stops taking them for a second; returns the bytes written."""
    batch = request * max(1, (64 << 10) // len(request))
    connection.sock.settimeout(1.0)
    written = 0
    deadline = time.monotonic() + within
    while written < budget and time.monotonic() < deadline:
        try:
            written += connection.sock.send(batch)
        except TimeoutError:
            break
    return written


@pytest.mark.parametrize("accepted", [False, True], ids=["refused", "accepted"])
def test_unread_pipelining_keeps_memory_bounded(front: Front, accepted: bool) -> None:
    prefix = f"flood-{uuid.uuid4().hex[:8]}-"
    request = (
        post(CALLBACK, callstate(prefix + "x"))
        if accepted
        else post("/callbacks/9024/cdr", b"")  # no key: 401
    )
    before = front.rss_kib()
    connection = front.connect()
    try:
        written = _flood(connection, request, budget=64 << 20, within=15)
        time.sleep(1)
        grown = front.rss_kib() - before
    finally:
        connection.reset()
    assert written > 1 << 20, "the flood never got going"
    assert written < 64 << 20, "the receiver never stopped reading"
    assert grown < 24 << 10, f"RSS grew by {grown} KiB after {written} bytes unread"
    assert front.exchange(post(CALLBACK, callstate(prefix + "after")))[0] == 200
    published = front.raw(prefix)
    if not accepted:
        assert [r.key for r in published] == [f"{prefix}after".encode()]
    else:  # each pipelined request is the same callback: at most what was written
        assert len(published) <= written // len(request) + 1


def test_the_key_is_checked_before_the_body_is_read(front: Front) -> None:
    connection = front.connect()
    try:
        started = time.monotonic()
        head = post("/callbacks/9024/cdr?key=wrong", b"", length=False)
        connection.send(head.replace(b"\r\n\r\n", b"\r\nContent-Length: 1000\r\n\r\n{"))
        status, _, body = connection.answer()
        assert status == 403
        assert json.loads(body) == {"error": "forbidden"}
        assert time.monotonic() - started < 1.0
    finally:
        connection.close()


def _trickle(connection: Connection, data: bytes, every: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.is_set():
            return
        try:
            connection.send(bytes([byte]))
        except OSError:
            return
        time.sleep(every)


def test_a_trickled_body_is_cut_off(front: Front) -> None:
    prefix = f"slow-{uuid.uuid4().hex[:8]}-"
    body = callstate(prefix + "x")
    connection = front.connect()
    stop = threading.Event()
    try:
        connection.send(post(CALLBACK, b"", b"Content-Length: %d" % len(body), length=False))
        trickler = threading.Thread(target=_trickle, args=(connection, body, 0.5, stop))
        started = time.monotonic()
        trickler.start()
        status, headers, answer = connection.answer()
        assert status == 408
        assert json.loads(answer)["setting"] == "CALLSTREAM_INGEST_BODY_TIMEOUT"
        assert headers.get("Connection") == "close"
        assert BODY_TIMEOUT - 0.5 < time.monotonic() - started < BODY_TIMEOUT + 1.5
        closed = connection.closed_within(LINGER + 2)
        assert closed is not None, "the connection stayed open after the 408"
    finally:
        stop.set()
        connection.close()
    assert front.raw(prefix) == []


def test_a_trickled_head_is_cut_off(front: Front) -> None:
    connection = front.connect()
    stop = threading.Event()
    head = post(CALLBACK, callstate("never"))
    trickler = threading.Thread(target=_trickle, args=(connection, head, 0.5, stop))
    try:
        started = time.monotonic()
        trickler.start()
        closed = connection.closed_within(KEEPALIVE + 3)
        assert closed is not None, "a head trickled at 2 bytes/s was never cut off"
        assert time.monotonic() - started < KEEPALIVE + 1.5
    finally:
        stop.set()
        connection.close()


def test_an_idle_connection_lives_for_the_keepalive(front: Front) -> None:
    connection = front.connect()
    try:
        connection.send(post(CALLBACK, callstate(f"idle-{uuid.uuid4().hex[:8]}")))
        assert connection.answer()[0] == 200
        closed = connection.closed_within(KEEPALIVE + 3)
    finally:
        connection.close()
    assert closed is not None
    assert KEEPALIVE - 0.5 < closed < KEEPALIVE + 1.5


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ([b"10.9.9.9"], 200),
        ([b"203.0.113.7, 10.9.9.9"], 200),  # the proxy chain's nearest untrusted hop
        ([b"10.9.9.9", b"203.0.113.7"], 403),  # a proxy appended its own line
        ([b"10.9.9.9, 203.0.113.7"], 403),
        ([b"", b"10.9.9.9"], 400),
        ([b"10.9.9.9, "], 400),
        ([b"10.9.9.\xc3\xa9"], 400),
        ([b"unknown"], 400),
    ],
)
def test_the_forwarded_address_is_the_rightmost_untrusted_hop(
    front: Front, lines: list[bytes], status: int
) -> None:
    prefix = f"xff-{uuid.uuid4().hex[:8]}-"
    forwarded = [b"X-Forwarded-For: " + line for line in lines]
    request = post(
        "/callbacks/5555/callstate?key=front-5555", callstate(prefix + "x", "5555"), *forwarded
    )
    answer_status, _, body = front.exchange(request)
    assert answer_status == status, body
    assert json.loads(body)  # every answer is JSON
    published = front.raw(prefix)
    assert len(published) == (1 if status == 200 else 0)
    if published:
        assert dict(published[0].headers)["source"] == b"10.9.9.9"


@pytest.mark.parametrize("companycode", ["7001", "7001/../../lake", "9024 "])
def test_a_body_of_another_tenant_is_refused_and_dead_lettered(
    front: Front, companycode: str
) -> None:
    call = f"other-{uuid.uuid4().hex[:8]}"
    body = callstate(call, companycode)
    status, _, answer = front.exchange(post(CALLBACK, body))
    assert status == 400
    assert json.loads(answer)["reason"] == "tenant_mismatch"
    assert front.raw(call) == []
    [letter] = [r for r in front.dead_letters() if r.value == body]
    headers = dict(letter.headers)
    assert (headers["dlq-reason"], headers["tenant"]) == (b"tenant_mismatch", b"9024")


def test_callbacks_pipelined_before_a_reset_are_not_published(front: Front) -> None:
    prefix = f"reset-{uuid.uuid4().hex[:8]}-"
    requests = b"".join(post(CALLBACK, callstate(f"{prefix}{i:02d}")) for i in range(40))
    connection = front.connect()
    connection.send(requests)
    assert connection.answer()[0] == 200  # the receiver is working through them
    connection.reset()
    time.sleep(3)
    published = front.raw(prefix)
    # The answered one, and at most the one whose answer found the connection reset.
    assert len(published) in {1, 2, 3}, f"{len(published)} of 40 published after the reset"


FRAMINGS: dict[str, Callable[[bytes], bytes]] = {
    "no-host": lambda body: (
        b"POST %s HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (CALLBACK.encode(), len(body), body)
    ),
    "two-hosts": lambda body: post(CALLBACK, body, b"Host: second"),
    "two-content-types": lambda body: post(
        CALLBACK, body, b"Content-Type: application/json", b"Content-Type: text/plain"
    ),
    "bare-lf": lambda body: post(CALLBACK, body).replace(b"\r\n", b"\n"),
    "length-and-chunked": lambda body: post(CALLBACK, body, b"Transfer-Encoding: chunked"),
    # 33 headers with Host and Content-Length
    "too-many-headers": lambda body: post(CALLBACK, body, *(b"X-Pad-%d: a" % i for i in range(31))),
    "header-too-long": lambda body: post(CALLBACK, body, b"X-Pad: " + b"a" * 2049),
    "request-line-too-long": lambda body: post(CALLBACK + "&pad=" + "a" * 4096, body),
}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_framing_that_aiohttp_refuses_is_refused(front: Front, framing: str) -> None:
    call = f"framing-{uuid.uuid4().hex[:8]}"  # a callback the receiver would otherwise take
    status, _, _ = front.exchange(FRAMINGS[framing](callstate(call)))
    assert status == 400
    assert front.raw(call) == []


def test_refused_framing_is_counted_not_logged_as_an_error(front: Front) -> None:
    counted = "callstream_ingest_malformed_requests_total"
    before = front.metric(counted)
    for framing in FRAMINGS.values():
        assert front.exchange(framing(callstate(f"count-{uuid.uuid4().hex[:8]}")))[0] == 400
    assert front.metric(counted) == before + len(FRAMINGS)
    errors = [line for line in front.receiver.log_text().splitlines() if '"level":"error"' in line]
    assert errors == []


def test_a_head_within_the_limits_is_accepted(front: Front) -> None:
    call = f"head-{uuid.uuid4().hex[:8]}"
    pads = (b"X-Pad-%d: %s" % (i, b"a" * 2000) for i in range(30))  # 32 with Host, length
    status, _, body = front.exchange(post(CALLBACK, callstate(call), *pads))
    assert status == 200, body
    assert len(front.raw(call)) == 1


def test_a_client_that_expects_100_continue_gets_it_once_admitted(front: Front) -> None:
    call = f"expect-{uuid.uuid4().hex[:8]}"
    body = callstate(call)
    connection = front.connect()
    try:
        expect = (b"Expect: 100-continue", b"Content-Length: %d" % len(body))
        connection.send(post(CALLBACK, b"", *expect, length=False))
        started = time.monotonic()
        assert connection.receive(len(CONTINUE)) == CONTINUE
        assert time.monotonic() - started < 0.5
        connection.send(body)
        assert connection.answer()[0] == 200
    finally:
        connection.close()
    assert len(front.raw(call)) == 1


@pytest.mark.parametrize(
    ("path", "length", "status"),
    [("/callbacks/9024/callstate?key=wrong", 100, b"403"), (CALLBACK, 1 << 20, b"413")],
    ids=["wrong-key", "too-large"],
)
def test_a_refused_client_that_expects_100_continue_gets_the_refusal_instead(
    front: Front, path: str, length: int, status: bytes
) -> None:
    connection = front.connect()
    try:
        expect = (b"Expect: 100-continue", b"Content-Length: %d" % length)
        connection.send(post(path, b"", *expect, length=False))
        assert connection.receive(12) == b"HTTP/1.1 " + status
    finally:
        connection.close()


def test_connection_tokens_are_matched_whole(front: Front) -> None:
    prefix = f"xclose-{uuid.uuid4().hex[:8]}-"
    connection = front.connect()
    try:
        connection.send(post(CALLBACK, callstate(prefix + "1"), b"Connection: xclose"))
        assert connection.answer()[0] == 200
        connection.send(post(CALLBACK, callstate(prefix + "2")))  # still open
        assert connection.answer()[0] == 200
        connection.send(post(CALLBACK, callstate(prefix + "3"), b"Connection: close"))
        _, headers, _ = connection.answer()
        assert headers.get("Connection") == "close"
        assert connection.closed_within(2) is not None
    finally:
        connection.close()
    assert len(front.raw(prefix)) == 3


def test_client_mistakes_are_4xx_with_a_json_reason_and_kept(front: Front) -> None:
    call = f"mistake-{uuid.uuid4().hex[:8]}"
    packed = gzip.compress(callstate(call)) + b"trailing garbage"
    plain = callstate(call + "-plain")
    for body, reason in [(packed, "invalid_encoding"), (plain, "invalid_encoding")]:
        status, _, answer = front.exchange(post(CALLBACK, body, b"Content-Encoding: gzip"))
        assert status == 400
        assert json.loads(answer)["reason"] == reason
    kept = {r.value for r in front.dead_letters()}
    assert {packed, plain} <= kept
    assert front.raw(call) == []


def test_a_non_ascii_content_type_is_kept_as_sent(front: Front) -> None:
    call = f"ctype-{uuid.uuid4().hex[:8]}"
    content_type = b"application/js\xc3\xb6n; charset=\xff"
    status, _, _ = front.exchange(post(CALLBACK, callstate(call), b"Content-Type: " + content_type))
    assert status == 200
    [record] = front.raw(call)
    assert dict(record.headers)["content-type"] == content_type


def _padded_gzip(body: bytes, wire_bytes: int) -> bytes:
    packer = zlib.compressobj(wbits=31)
    padded = packer.compress(body) + packer.flush(zlib.Z_SYNC_FLUSH)
    padded += EMPTY_STORED_BLOCK * (wire_bytes // len(EMPTY_STORED_BLOCK))
    return padded + packer.flush()


BODY_LIMIT = {"error": "body too large", "setting": "CALLSTREAM_INGEST_BODY_LIMIT"}
INFLATED_LIMIT = {
    "error": "inflated body too large",
    "setting": "CALLSTREAM_INGEST_DECOMPRESSED_LIMIT",
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("length", BODY_LIMIT),
        ("chunked", BODY_LIMIT),
        ("chunked-identity", BODY_LIMIT),
        ("chunked-unknown-coding", BODY_LIMIT),
        ("chunked-padded-gzip", BODY_LIMIT),
        ("gzip-inflating-past-the-limit", INFLATED_LIMIT),
    ],
)
def test_one_body_limit_for_every_coding(front: Front, name: str, expected: dict[str, str]) -> None:
    call = f"limit-{uuid.uuid4().hex[:8]}"
    big = callstate(call)[:-1] + b',"pad":"' + b" " * (300 << 10) + b'"}'
    requests = {
        "length": post(CALLBACK, big),
        "chunked": chunked(CALLBACK, big),
        "chunked-identity": chunked(CALLBACK, big, b"Content-Encoding: identity"),
        "chunked-unknown-coding": chunked(CALLBACK, big, b"Content-Encoding: x-custom"),
        "chunked-padded-gzip": chunked(
            CALLBACK, _padded_gzip(callstate(call), 5 << 20), b"Content-Encoding: gzip"
        ),
        "gzip-inflating-past-the-limit": post(
            CALLBACK, gzip.compress(big), b"Content-Encoding: gzip"
        ),
    }
    status, _, answer = front.exchange(requests[name])
    assert status == 413
    assert {k: v for k, v in json.loads(answer).items() if k != "limit"} == expected
    assert front.raw(call) == []
