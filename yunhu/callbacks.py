"""The platform's two callbacks as msgspec Structs, and lenient decoders for them.

The platform's own document disagrees with its examples about field types, so:
identifiers and numbers arrive as JSON strings or numbers and are kept as the string
sent (leading zeros matter); codes and durations may be numeric strings; `isbleg` may be
"true"/"false" or a boolean. Unknown fields are ignored here (the raw bytes keep them).
Only the call `uuid` is required: it is the Kafka key.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from yunhu.wire import (
    FILE_NAME_PATTERN,
    SAFE_NAME_PATTERN,
    Ident,
    IdentFields,
    stringify_idents,
)

# The call uuid keys the Kafka record and names the archived recording.
Uuid = Annotated[str, msgspec.Meta(pattern=SAFE_NAME_PATTERN)]
FileName = Annotated[str, msgspec.Meta(pattern=FILE_NAME_PATTERN)]

CallbackKind = Literal["callstate", "cdr"]


class CallState(msgspec.Struct, frozen=True, gc=False):
    """Extension call-state callback: one per leg and state change (ring, answer, hangup)."""

    uuid: Uuid
    buuid: str = ""
    callee: Ident = ""
    caller: Ident = ""
    companycode: Ident = ""
    customuuid: Ident = ""
    direction: str = ""
    disnumber: Ident = ""
    extnumber: Ident = ""
    isbleg: bool | None = None
    method: int | None = None
    starttime: Ident = ""  # epoch seconds, as a string in the platform's example
    status: str = ""
    type: str = ""

    def __post_init__(self) -> None:
        stringify_idents(self, _CALLSTATE_IDENTS)


class Cdr(msgspec.Struct, frozen=True, gc=False):
    """Call record (CDR), sent once when the call has ended."""

    uuid: Uuid
    id: Ident = ""
    callmethod: int | None = None
    starttime: str = ""  # "YYYY-MM-DD HH:MM:SS", platform time zone
    answertime: str = ""  # "" when the call was not answered
    endtime: str = ""
    duration: int | None = None  # ringing / waiting seconds
    billsec: int | None = None  # talk seconds
    crmid: Ident = ""
    hangupdirection: int | None = None
    chengshudu: Ident = ""
    hangupcause: int | None = None
    memberid: Ident = ""
    disnumber: Ident = ""
    destnumber: Ident = ""
    downloadip: str = ""
    recordfilename: FileName = ""
    companycode: Ident = ""
    type: str = ""
    extnumber: Ident = ""
    userkey: Ident = ""
    customuuid: Ident = ""

    def __post_init__(self) -> None:
        stringify_idents(self, _CDR_IDENTS)


_CALLSTATE_IDENTS: Final = IdentFields(CallState)
_CDR_IDENTS: Final = IdentFields(Cdr)


class DecodeError(msgspec.Struct, frozen=True, gc=False):
    """Why a body is not a callback: `reason` is a short stable word, `detail` says where."""

    reason: Literal[
        "invalid_json",
        "not_an_object",
        "missing_uuid",
        "invalid_uuid",
        "invalid_field",
        "tenant_mismatch",
        "invalid_encoding",
        "unsupported_encoding",
    ]
    detail: str


_CALLSTATE_DECODER: Final = msgspec.json.Decoder(CallState, strict=False)
_CDR_DECODER: Final = msgspec.json.Decoder(Cdr, strict=False)


class _CallUuid(msgspec.Struct):
    """The one field a callback cannot go without, checked on its own."""

    uuid: Uuid


def _classify(body: bytes, err: msgspec.DecodeError) -> DecodeError:
    """Which rule the body broke, found from the document itself (msgspec's error message
    is for people: `detail` carries it, nothing is read out of it)."""
    text = str(err)
    if not isinstance(err, msgspec.ValidationError):
        return DecodeError("invalid_json", text)
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as bad:  # shape and syntax both wrong: the syntax comes first
        return DecodeError("invalid_json", str(bad))
    if not isinstance(document, dict):
        return DecodeError("not_an_object", text)
    if "uuid" not in document:
        return DecodeError("missing_uuid", text)
    try:
        msgspec.convert({"uuid": document["uuid"]}, _CallUuid, strict=False)
    except msgspec.ValidationError:
        return DecodeError("invalid_uuid", text)
    return DecodeError("invalid_field", text)


def decode_callstate(body: bytes) -> CallState | DecodeError:
    try:
        return _CALLSTATE_DECODER.decode(body)
    except msgspec.DecodeError as err:
        return _classify(body, err)


def decode_cdr(body: bytes) -> Cdr | DecodeError:
    try:
        return _CDR_DECODER.decode(body)
    except msgspec.DecodeError as err:
        return _classify(body, err)


def decode(kind: CallbackKind, body: bytes) -> CallState | Cdr | DecodeError:
    return decode_callstate(body) if kind == "callstate" else decode_cdr(body)
