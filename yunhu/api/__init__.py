"""The platform's token API: login, logout and recording download links."""

from yunhu.api.client import RecordLink, YunhuClient
from yunhu.api.errors import (
    ApiError,
    LinkExpiredError,
    ProtocolError,
    RecordingNotReadyError,
    TransportError,
    YunhuError,
)
from yunhu.api.tokens import Credentials, TokenManager

__all__ = [
    "ApiError",
    "Credentials",
    "LinkExpiredError",
    "ProtocolError",
    "RecordLink",
    "RecordingNotReadyError",
    "TokenManager",
    "TransportError",
    "YunhuClient",
    "YunhuError",
]
