"""Every code the platform's API document lists, with a short name and its explanation.

Three tables: the envelope's `ret` codes, `data.errors.code` status codes (1001-1218),
and call-state codes (10001-10041: hangup causes and hangup directions).
"""

from __future__ import annotations

from typing import Final

import msgspec


class Code(msgspec.Struct, frozen=True, gc=False):
    code: int
    name: str
    description: str
    known: bool = True


def _table(rows: tuple[tuple[int, str, str], ...]) -> dict[int, Code]:
    return {code: Code(code, name, description) for code, name, description in rows}


RET_CODES: Final = _table(
    (
        (200, "ok", "The request was processed; see data.status"),
        (400, "illegal request", "Generally, the parameters are invalid"),
        (500, "server error", "Server error"),
        (600, "token invalid", "The token is invalid, please log in again to verify"),
        (
            601,
            "appid not authorized",
            "Please check the appid or contact the vendor for authorization",
        ),
        (602, "appid authorization expired", "appid authorization has expired"),
        (603, "module not licensed", "Module not licensed"),
        (604, "ip not authorized", "IP is not authorized; contact the vendor to authorize access"),
    )
)

ERROR_CODES: Final = _table(
    (
        (1001, "server connection failed", "Usually due to network"),
        (1002, "abnormal operation", "Generally, it is a check exception, etc."),
        (1003, "operation failed", "Generally, authorization failure, logout failure, command "
         "sending failure, server connection exception, etc."),
        (1010, "extension exception", "It may be a newly added extension; log in again to get "
         "a new token"),
        (1011, "illegal extension", "Extension not owned by the company"),
        (1012, "extension does not exist", "Extension number status"),
        (1013, "extension disabled", "Extension number status"),
        (1014, "extension not registered", "Extension number status"),
        (1015, "extension not in a call", "Extension number status"),
        (1016, "extension enabled", "Extension number status"),
        (1017, "extension registered", "Extension number status"),
        (1018, "number enabled", "Caller ID status"),
        (1019, "number disabled", "Caller ID status"),
        (1020, "number does not exist", "Caller ID status"),
        (1021, "illegal number", "Number not owned by the company"),
        (1024, "task does not exist", "Predictive task interface return status"),
        (1025, "task not started", "Predictive task interface return status"),
        (1026, "task in progress", "Predictive task interface return status"),
        (1027, "task paused", "Predictive task interface return status"),
        (1028, "task over", "Predictive task interface return status"),
        (1201, "idle", "Extension is legal, enabled and registered"),
        (1202, "ringing", "Extension return"),
        (1203, "off-hook", "Extension return"),
        (1204, "calling", "Extension return"),
        (1205, "user rejects", "Called party rejects"),
        (1210, "queue exception", "Return in predictive outbound"),
        (1211, "illegal queue", "Queue does not exist or is not owned by the company"),
        (1212, "did not answer", "Assigned, unanswered"),
        (1213, "waiting", "Waiting for assignment (idle)"),
        (1214, "receiving", "Status of extensions in the queue"),
        (1215, "answered", "Status of extensions in the queue"),
        (1216, "reject", "Status of extensions in the queue"),
        (1217, "pause", "Show busy"),
        (1218, "checked in", "The extension is already checked into the queue"),
    )
)  # fmt: skip

CALL_STATE_CODES: Final = _table(
    (
        (10001, "normal hangup", "Hang up normally"),
        (10002, "call cancelled", "Call cancel"),
        (10003, "call rejected", "Refuse to answer"),
        (10004, "outbound line failure", "Outbound channel line failure, usually due to wiring"),
        (10005, "user timed out", "User did not answer (timeout)"),
        (10006, "user busy", "User is busy"),
        (10007, "server hangup", "Server hangup"),
        (10008, "extension not registered", "Extension not registered"),
        (10009, "destination unreachable", "Destination unreachable"),
        (10011, "timer timeout", "Timer timeout"),
        (10012, "inbound callback interface error", "Inbound callback interface error"),
        (10013, "extension does not exist", "Extension does not exist"),
        (10014, "not found", "Not found"),
        (10015, "request timeout", "Request timeout"),
        (10016, "no answer", "No answer"),
        (10017, "call invalid", "Call invalid"),
        (10019, "origin unknown", "Origin unknown"),
        (10020, "other reason", "Other reason"),
        (10024, "bad request", "Bad request"),
        (10025, "call forbidden", "Call forbidden"),
        (10027, "number changed", "Number changed"),
        (10028, "call intercepted", "Call intercepted"),
        (10031, "unknown", "Unknown"),
        (10040, "caller", "Caller hung up"),
        (10041, "callee", "Called party hung up"),
    )
)


def _lookup(table: dict[int, Code], code: int) -> Code:
    found = table.get(code)
    if found is not None:
        return found
    return Code(code, "unknown", f"unknown code {code}", known=False)


def ret_code(code: int) -> Code:
    return _lookup(RET_CODES, code)


def error_code(code: int) -> Code:
    return _lookup(ERROR_CODES, code)


def call_state_code(code: int) -> Code:
    return _lookup(CALL_STATE_CODES, code)
