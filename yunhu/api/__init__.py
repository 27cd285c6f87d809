"""The platform's token API: login, logout and recording download links."""

from yunhu.api.client import RecordLink, YunhuClient
from yunhu.api.download import DownloadPolicy, GuardedResolver
from yunhu.api.errors import (
    ApiError,
    LinkExpiredError,
    LinkRefusedError,
    ProtocolError,
    RecordingNotReadyError,
    RecordingTooLargeError,
    TransportError,
    YunhuError,
)
from yunhu.api.tokens import Credentials, TokenManager

__all__ = [
    "ApiError",
    "Credentials",
    "DownloadPolicy",
    "GuardedResolver",
    "LinkExpiredError",
    "LinkRefusedError",
    "ProtocolError",
    "RecordLink",
    "RecordingNotReadyError",
    "RecordingTooLargeError",
    "TokenManager",
    "TransportError",
    "YunhuClient",
    "YunhuError",
]
