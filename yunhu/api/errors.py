"""Typed failures of the platform API. Each says whether trying again can help, and whether
a new login is needed first. None of them ever carries appid, accesskey or a token."""

from __future__ import annotations

from typing import Literal

from yunhu.codes import error_code, ret_code

RETRIABLE_RET = frozenset({500})
RELOGIN_RET = frozenset({600})
RETRIABLE_STATUS = frozenset({1001, 1003})
RELOGIN_STATUS = frozenset({1010})


class YunhuError(Exception):
    retriable: bool = False
    relogin: bool = False


class ApiError(YunhuError):
    """The platform answered with an error: `ret` ≠ 200, or `data.status` 1 with a code."""

    def __init__(
        self, service: str, source: Literal["ret", "status"], code: int, message: str = ""
    ) -> None:
        self.service = service
        self.source = source
        self.code = code
        known = ret_code(code) if source == "ret" else error_code(code)
        self.name = known.name
        if source == "ret":
            self.relogin = code in RELOGIN_RET
            self.retriable = code in RETRIABLE_RET or self.relogin
        else:
            self.relogin = code in RELOGIN_STATUS
            self.retriable = code in RETRIABLE_STATUS or self.relogin
        detail = f": {message}" if message else ""
        super().__init__(f"{service}: {source} {code} ({known.name}){detail}")


class TransportError(YunhuError):
    """The platform could not be reached or did not answer in time."""

    retriable = True


class ProtocolError(YunhuError):
    """The platform answered something that is not its documented envelope."""

    retriable = True


class LinkExpiredError(YunhuError):
    """A recording download link has expired; a fresh link will do."""

    retriable = True


class RecordingNotReadyError(YunhuError):
    """The recording is not (yet) available for download; try again later."""

    retriable = True


class LinkRefusedError(YunhuError):
    """A download link (or a redirect) to a place the tenant does not allow."""


class RecordingTooLargeError(YunhuError):
    """A recording larger than the size limit: not archived."""
