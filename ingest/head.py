"""Reads the one request shape the callback fast path answers itself.

`POST /callbacks/{code}/{callstate|cdr}[?query] HTTP/1.1`, well-formed header lines, one
`Content-Length` within the body limit, and none of `Transfer-Encoding`,
`Content-Encoding`, `Expect` or `Upgrade`. Anything else, malformed or merely unusual,
is FOREIGN: the connection goes to aiohttp, which parses the same bytes from the start of
that request. So the fast path never has to interpret anything aiohttp might read
differently; it only has to be strict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

MAX_HEAD: Final = 8190  # aiohttp's own limit for a request line or a header
_START: Final = b"POST /callbacks/"
_REQUEST: Final = re.compile(
    rb"POST /callbacks/([0-9A-Za-z_-]{1,64})/(callstate|cdr)(?:\?([!\x24-\x7e]*))? HTTP/1\.1\r\n"
    rb"((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*\r\n){0,100})\r\n"
)
# Framing or content handling the fast path leaves to aiohttp.
_LEAVE_TO_AIOHTTP: Final = frozenset(
    {b"transfer-encoding", b"content-encoding", b"expect", b"upgrade"}
)


@dataclass(slots=True)
class Fields:
    length: int = -1  # Content-Length; -1 when there is none
    content_type: bytes = b""
    forwarded_for: str | None = None
    close: bool = False  # `Connection: close`: answer, then close


@dataclass(slots=True)
class Request:
    tenant: str
    kind: str
    key: str | None  # the `key` query parameter
    body: bytes
    end: int  # where the next request starts
    fields: Fields


class Foreign:
    """Not for the fast path: the connection is aiohttp's from this request on."""


FOREIGN: Final = Foreign()


def parse(data: bytes, body_limit: int) -> Request | Foreign | int:
    """The request at the start of `data`; FOREIGN; or, for a callback not all received
    yet, how many bytes to have before looking again."""
    head_end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if head_end < 0:
        if len(data) < MAX_HEAD and _START.startswith(data[: len(_START)]):
            return len(data) + 1
        return FOREIGN
    found = _REQUEST.match(data, 0, head_end + 4)
    fields = None if found is None else _fields(found[4])
    if fields is None or not 0 <= fields.length <= body_limit:  # aiohttp answers (411, 413)
        return FOREIGN
    start = head_end + 4
    end = start + fields.length
    if len(data) < end:
        return end
    tenant, kind, query = found.group(1, 2, 3)  # type: ignore[union-attr]
    return Request(tenant.decode(), kind.decode(), _key(query), data[start:end], end, fields)


def _fields(block: bytes) -> Fields | None:
    """The header fields the fast path uses; None if the request is not for it."""
    fields = Fields()
    for line in block.split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            value = value.strip(b" \t")
            if fields.length >= 0 or not value.isdigit() or len(value) > 10:
                return None
            fields.length = int(value)
        elif name == b"content-type":
            fields.content_type = fields.content_type or value.strip(b" \t")
        elif name == b"x-forwarded-for":
            fields.forwarded_for = fields.forwarded_for or value.strip(b" \t").decode("ascii")
        elif name == b"connection":
            fields.close = fields.close or b"close" in value.lower()
        elif name in _LEAVE_TO_AIOHTTP:
            return None
    return fields


def _key(query: bytes | None) -> str | None:
    """The first `key` parameter, decoded as aiohttp decodes a query string."""
    if not query:
        return None
    if b"%" in query or b"+" in query:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True)
        return next((value for name, value in pairs if name == "key"), None)
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"key":
            return value.decode("ascii")
    return None
