from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.head import FOREIGN, MAX_HEAD, Request, parse

BODY = b'{"uuid":"u-1"}'
LIMIT = 1024


def post(
    target: bytes = b"/callbacks/9024/callstate?key=k",
    headers: bytes = b"Host: x\r\nContent-Type: application/json\r\n",
    body: bytes = BODY,
    version: bytes = b"HTTP/1.1",
) -> bytes:
    length = b"Content-Length: %d\r\n" % len(body)
    return b"POST " + target + b" " + version + b"\r\n" + headers + length + b"\r\n" + body


def test_a_plain_callback_is_read_whole() -> None:
    data = post()
    request = parse(data + b"GET /healthz HTTP/1.1\r\n\r\n", LIMIT)
    assert isinstance(request, Request)
    assert (request.tenant, request.kind, request.key, request.body) == (
        "9024",
        "callstate",
        "k",
        BODY,
    )
    assert request.end == len(data)  # where the next (pipelined) request starts
    assert request.fields.content_type == b"application/json"
    assert (request.fields.forwarded_for, request.fields.close) == (None, False)


def test_header_names_are_case_insensitive_and_values_trimmed() -> None:
    headers = (
        b"content-TYPE:  text/plain \r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"
        b"Connection: Close\r\n"
    )
    request = parse(post(b"/callbacks/7001/cdr", headers), LIMIT)
    assert isinstance(request, Request)
    assert (request.kind, request.key) == ("cdr", None)
    assert request.fields.content_type == b"text/plain"
    assert request.fields.forwarded_for == "10.0.0.1, 10.0.0.2"
    assert request.fields.close


@pytest.mark.parametrize(
    ("query", "key"),
    [
        (b"key=abc", "abc"),
        (b"a=1&key=abc&key=other", "abc"),
        (b"key=a%2Bb%20c", "a+b c"),
        (b"key=a+b", "a b"),
        (b"k%65y=abc", "abc"),
        (b"key=", ""),
        (b"key", ""),
        (b"other=1", None),
    ],
)
def test_the_key_is_decoded_as_a_query_string(query: bytes, key: str | None) -> None:
    request = parse(post(b"/callbacks/9024/callstate?" + query), LIMIT)
    assert isinstance(request, Request)
    assert request.key == key


def test_an_incomplete_request_says_how_much_to_wait_for() -> None:
    data = post()
    head_end = data.index(b"\r\n\r\n") + 4
    assert parse(data[:-3], LIMIT) == len(data)  # the head is there: wait for the whole body
    assert parse(data[: head_end - 2], LIMIT) == head_end - 1  # no head yet: one byte more
    assert parse(b"POST /call", LIMIT) == 11
    assert parse(b"", LIMIT) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"GET /healthz HTTP/1.1\r\n\r\n",
        b"GET /callbacks/9024/callstate HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"PUT /callba",
        post(b"/callbacks/9024/other"),
        post(b"/callbacks/9024/cdr/extra"),
        post(b"/callbacks/90%324/cdr"),  # percent-encoded path: aiohttp decodes it
        post(b"/callbacks/../cdr"),
        post(b"http://host/callbacks/9024/cdr"),
        post(version=b"HTTP/1.0"),
        post(headers=b"Transfer-Encoding: chunked\r\n"),
        post(headers=b"Content-Encoding: gzip\r\n"),
        post(headers=b"Expect: 100-continue\r\n"),
        post(headers=b"Upgrade: websocket\r\n"),
        post(headers=b"Content-Length: 14\r\n"),  # two lengths
        post(headers=b"Bad Name: x\r\n"),
        post(headers=b"Folded: a\r\n continued\r\n"),
        post(headers=b"Nul: a\x00b\r\n"),
        post(headers=b"Bare-LF: a\nX: b\r\n"),
        post(body=b"x" * (LIMIT + 1)),  # aiohttp answers 413
        b"POST /callbacks/9024/callstate HTTP/1.1\r\nHost: x\r\n\r\n",  # no length
        b"POST /callbacks/9024/callstate HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /callbacks/9024/callstate HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
        b"POST /callbacks/9024/callstate HTTP/1.1\r\n" + b"X: " + b"y" * MAX_HEAD,  # endless head
    ],
)
def test_anything_but_the_plain_shape_is_left_to_aiohttp(data: bytes) -> None:
    assert parse(data, LIMIT) is FOREIGN


@given(st.binary(max_size=600))
def test_any_bytes_give_a_request_a_wait_or_foreign(data: bytes) -> None:
    result = parse(data, LIMIT)
    assert result is FOREIGN or isinstance(result, (Request, int))
    if isinstance(result, int):
        assert result > len(data)
    if isinstance(result, Request):
        assert 0 < result.end <= len(data)


@given(st.binary(max_size=600), st.binary(max_size=40))
def test_any_prefix_of_a_callback_waits_and_the_whole_of_it_parses(
    body: bytes, more: bytes
) -> None:
    data = post(body=body)
    for cut in range(0, len(data), 7):
        wanted = parse(data[:cut], LIMIT)
        assert isinstance(wanted, int)
        assert cut < wanted <= len(data)
    request = parse(data + more, LIMIT)
    assert isinstance(request, Request)
    assert (request.body, request.end) == (body, len(data))
