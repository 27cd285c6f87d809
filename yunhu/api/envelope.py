"""The platform's response envelope `{"ret":200,"data":{...},"msg":""}` and its results."""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from yunhu.api.errors import ApiError, ProtocolError
from yunhu.wire import Ident, IdentFields, stringify_idents

T = TypeVar("T")


class Errors(msgspec.Struct, frozen=True, gc=False):
    code: Ident = ""
    codemsg: str = ""


class Data(msgspec.Struct, frozen=True, gc=False):
    status: int = 0
    desc: str = ""
    result: msgspec.Raw = msgspec.Raw(b"null")
    errors: Errors | None = None
    reqtime: int | None = None
    rsptime: int | None = None


class Envelope(msgspec.Struct, frozen=True, gc=False):
    ret: int
    data: msgspec.Raw = msgspec.Raw(b"null")
    msg: str = ""


class LoginResult(msgspec.Struct, frozen=True, gc=False):
    token: str
    companycode: Ident = ""
    companyname: str = ""
    authtime: str = ""
    authmodel: str = ""

    def __post_init__(self) -> None:
        stringify_idents(self, _LOGIN_IDENTS)

    def __repr__(self) -> str:  # never show the token
        return f"LoginResult(companycode={self.companycode!r}, companyname={self.companyname!r})"


class RecordFileResult(msgspec.Struct, frozen=True, gc=False):
    downurl: str
    expiredtime: str = ""


_LOGIN_IDENTS: Final = IdentFields(LoginResult)
_ENVELOPE: Final = msgspec.json.Decoder(Envelope, strict=False)
_DATA: Final = msgspec.json.Decoder(Data, strict=False)
LOGIN_RESULT: Final = msgspec.json.Decoder(LoginResult, strict=False)
RECORD_FILE_RESULT: Final = msgspec.json.Decoder(RecordFileResult, strict=False)


def parse_result(service: str, body: bytes, result: msgspec.json.Decoder[T] | None) -> T | None:
    """The typed `data.result` of a successful answer, or the typed error it carries."""
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.DecodeError as err:
        raise ProtocolError(f"{service}: answer is not the platform envelope ({err})") from None
    if envelope.ret != 200:
        raise ApiError(service, "ret", envelope.ret, envelope.msg)
    try:
        data = _DATA.decode(envelope.data)
    except msgspec.DecodeError as err:
        raise ProtocolError(f"{service}: data is not an object ({err})") from None
    if data.status != 0:
        errors = data.errors or Errors()
        try:
            code = int(errors.code)
        except ValueError:
            raise ProtocolError(f"{service}: status {data.status} without a numeric code") from None
        raise ApiError(service, "status", code, errors.codemsg or data.desc)
    if result is None:
        return None
    try:
        return result.decode(data.result)
    except msgspec.DecodeError as err:
        raise ProtocolError(f"{service}: unexpected result ({err})") from None
