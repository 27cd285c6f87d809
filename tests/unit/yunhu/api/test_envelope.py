from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from yunhu.api.client import parse_expiry
from yunhu.api.envelope import LOGIN_RESULT, RECORD_FILE_RESULT, parse_result
from yunhu.api.errors import ApiError, ProtocolError

SEED_LOGIN = b"""{
    "ret":200,
    "data":{
        "status":0,
        "desc":"Authorization successful",
        "result":{
            "companycode":"1",
            "companyname":"test",
            "token":"773a70dd02f0695d50205e9b267692b9",
            "authtime":"2020-01-01 00:00:00",
            "authmodel":""
        },
        "reqtime":1581240882,
        "rsptime":1581240882
    },
    "msg":""
}"""


def test_the_documents_login_answer_parses_and_hides_the_token() -> None:
    result = parse_result("App.Sip_Auth.Login", SEED_LOGIN, LOGIN_RESULT)
    assert result is not None
    assert result.token == "773a70dd02f0695d50205e9b267692b9"
    assert result.companycode == "1"
    assert "773a70dd" not in repr(result)


def test_a_record_file_answer_parses() -> None:
    body = (
        b'{"ret":200,"data":{"status":0,"desc":"get success","result":{"downurl":'
        b'"http://127.0.0.1:8080/abcdefg","expiredtime":"Expiration time:2020-02-11 17:27:23"},'
        b'"reqtime":1581412943,"rsptime":1581412943},"msg":""}'
    )
    result = parse_result("App.Sip_Cdr.GetRecodeFile", body, RECORD_FILE_RESULT)
    assert result is not None
    assert result.downurl == "http://127.0.0.1:8080/abcdefg"


@pytest.mark.parametrize(
    ("ret", "retriable", "relogin"),
    [(400, False, False), (500, True, False), (600, True, True)]
    + [(code, False, False) for code in (601, 602, 603, 604)],
)
def test_ret_codes_become_typed_errors(ret: int, retriable: bool, relogin: bool) -> None:
    body = b'{"ret":%d,"data":[],"msg":"Illegal request: invalid parameter"}' % ret
    with pytest.raises(ApiError) as caught:
        parse_result("svc", body, None)
    assert (caught.value.code, caught.value.source) == (ret, "ret")
    assert (caught.value.retriable, caught.value.relogin) == (retriable, relogin)


@pytest.mark.parametrize(
    ("code", "retriable", "relogin"),
    [("1003", True, False), ("1001", True, False), ("1010", True, True), ("1012", False, False)],
)
def test_status_codes_become_typed_errors(code: str, retriable: bool, relogin: bool) -> None:
    body = (
        b'{"ret":200,"data":{"status":1,"desc":"xxxfail","errors":{"code":"%s","codemsg":'
        b'"Authorization failed"},"reqtime":1507529858,"rsptime":1507529858},"msg":""}'
    ) % code.encode()
    with pytest.raises(ApiError) as caught:
        parse_result("svc", body, None)
    assert (caught.value.code, caught.value.source) == (int(code), "status")
    assert (caught.value.retriable, caught.value.relogin) == (retriable, relogin)
    assert "Authorization failed" in str(caught.value)


@pytest.mark.parametrize("body", [b"<html>502</html>", b'{"data":{}}', b'{"ret":200,"data":"x"}'])
def test_anything_else_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_result("svc", body, LOGIN_RESULT)


def test_the_expiry_label_becomes_an_aware_time_in_the_platform_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    expires = parse_expiry("Expiration time:2020-02-11 17:27:23", shanghai)
    assert expires == datetime(2020, 2, 11, 17, 27, 23, tzinfo=shanghai)
    assert expires is not None
    assert expires.utcoffset() is not None
    assert expires.astimezone(ZoneInfo("UTC")).hour == 9
    assert parse_expiry("soon", shanghai) is None
