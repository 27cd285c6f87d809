from __future__ import annotations

import re
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from yunhu.callbacks import CallState, Cdr, DecodeError, decode, decode_callstate, decode_cdr

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "yunhu" / "examples"
API_DOC = ROOT / "docs" / "platform" / "common-api.txt"


def _fixed_seed_cdr() -> bytes:
    """The document's CDR example with the three commas it lacks put back."""
    raw = (EXAMPLES / "cdr.json").read_bytes()
    return re.sub(rb'("7003"|"cda5c6c4-0a17-11e8-b177-e7cbf2bd1f36"|"userkey":1) ', rb"\1, ", raw)


def test_the_examples_are_the_documents_bytes() -> None:
    doc = API_DOC.read_bytes()
    assert (EXAMPLES / "callstate.json").read_bytes() in doc
    assert (EXAMPLES / "cdr.json").read_bytes() in doc


def test_the_documents_call_state_example_decodes_byte_for_byte() -> None:
    event = decode_callstate((EXAMPLES / "callstate.json").read_bytes())
    assert event == CallState(
        uuid="526d637c-e8fe-11ea-a849-cf6e45e88543",
        buuid="526d643a-e8fe-11ea-a84a-cf6e45e88543",
        callee="87847569524",
        caller="90240005",
        companycode="9024",
        customuuid="123Abc",
        direction="callout",
        disnumber="2190240001",
        extnumber="90240005",
        isbleg=False,
        method=3,
        starttime="1598598959",
        status="ring",
        type="call",
    )


def test_the_documents_cdr_example_decodes_once_its_commas_are_added() -> None:
    cdr = decode_cdr(_fixed_seed_cdr())
    assert isinstance(cdr, Cdr)
    assert cdr.uuid == "cda5c6c4-0a17-11e8-b177-e7cbf2bd1f36"
    assert cdr.id == "982"
    assert cdr.companycode == "20000013"  # a JSON number in the example, kept as its string
    assert cdr.destnumber == "015029913692"  # the leading zero survives
    assert (cdr.duration, cdr.billsec, cdr.answertime) == (14, 0, "")
    assert (cdr.hangupcause, cdr.hangupdirection, cdr.callmethod) == (10001, 10015, 3)
    assert (cdr.extnumber, cdr.userkey, cdr.customuuid) == ("7003", "1", "customuuid")


def test_the_raw_cdr_example_is_a_typed_error_not_an_exception() -> None:
    result = decode_cdr((EXAMPLES / "cdr.json").read_bytes())
    assert isinstance(result, DecodeError)
    assert result.reason == "invalid_json"
    assert "byte" in result.detail


def test_types_are_lenient_as_the_platform_is() -> None:
    event = decode_callstate(
        b'{"uuid":"u1","callee":87847569524,"companycode":9024,"isbleg":true,'
        b'"method":3,"starttime":1598598959,"extnumber":"007"}'
    )
    assert isinstance(event, CallState)
    assert (event.callee, event.companycode, event.starttime) == (
        "87847569524",
        "9024",
        "1598598959",
    )
    assert (event.isbleg, event.method, event.extnumber) == (True, 3, "007")

    cdr = decode_cdr(b'{"uuid":"u2","duration":"14","billsec":"7","hangupcause":"10001","id":"x9"}')
    assert isinstance(cdr, Cdr)
    assert (cdr.duration, cdr.billsec, cdr.hangupcause, cdr.id) == (14, 7, 10001, "x9")


def test_unknown_fields_are_ignored() -> None:
    event = decode_callstate(b'{"uuid":"u","newfield":{"deep":[1,2]},"status":"ring"}')
    assert isinstance(event, CallState)
    assert event.status == "ring"


def test_the_uuid_is_required() -> None:
    assert decode_cdr(b'{"id":1}') == DecodeError(
        "missing_uuid", "Object missing required field `uuid`"
    )
    empty = decode_callstate(b'{"uuid":""}')
    assert isinstance(empty, DecodeError)
    assert empty.reason == "invalid_uuid"
    number = decode_callstate(b'{"uuid":12}')
    assert isinstance(number, DecodeError)
    assert number.reason == "invalid_uuid"


def test_other_failures_say_what_and_where() -> None:
    assert isinstance(wrong := decode_cdr(b'{"uuid":"u","billsec":"long"}'), DecodeError)
    assert (wrong.reason, wrong.detail.endswith("`$.billsec`")) == ("invalid_field", True)
    assert isinstance(array := decode_cdr(b"[1]"), DecodeError)
    assert array.reason == "not_an_object"
    assert isinstance(junk := decode_callstate(b"\xff\xfe"), DecodeError)
    assert junk.reason == "invalid_json"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = sorted({f.name for t in (CallState, Cdr) for f in msgspec.structs.fields(t)})
CALLBACK_LIKE = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=len(FIELDS))


@settings(max_examples=300)
@given(value=JSON | CALLBACK_LIKE, kind=st.sampled_from(["callstate", "cdr"]))
def test_any_json_value_gives_an_event_or_a_typed_error(value: object, kind: str) -> None:
    result = decode(kind, msgspec.json.encode(value))  # type: ignore[arg-type]
    assert isinstance(result, CallState | Cdr | DecodeError)
    if not isinstance(result, DecodeError):
        for field in msgspec.structs.fields(result):
            if field.type == (str | int):
                assert isinstance(getattr(result, field.name), str), field.name


@settings(max_examples=300)
@given(body=st.binary(max_size=512), kind=st.sampled_from(["callstate", "cdr"]))
def test_any_bytes_give_an_event_or_a_typed_error(body: bytes, kind: str) -> None:
    result = decode(kind, body)  # type: ignore[arg-type]
    assert isinstance(result, CallState | Cdr | DecodeError)
