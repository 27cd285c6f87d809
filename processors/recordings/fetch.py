"""One recording: a fresh link per attempt, streamed from the platform into S3."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Final

from common.records import CdrRecord
from processors.recordings.archive import Archived, S3Archive
from yunhu.api import DownloadPolicy, LinkExpiredError, TokenManager, YunhuClient
from yunhu.wire import is_safe_name

log = logging.getLogger(__name__)
EXTENSION: Final = re.compile(r"\.[a-z0-9]{1,8}")


class UnsafeKeyError(Exception):
    """A value that would become part of the object's key is not a safe name."""

    retriable = False


def object_key(cdr: CdrRecord, prefix: str = "") -> str:
    """`recordings/{tenant}/{YYYY}/{MM}/{DD}/{uuid}{ext}`, dated by the call's UTC start.

    The tenant is the one the receiver authenticated (the body's companycode had to
    match it); tenant and uuid are checked again here, and an extension that is not
    plain letters and digits becomes `.wav`."""
    for field, value in (("tenant", cdr.tenant), ("uuid", cdr.uuid)):
        if not is_safe_name(value):
            raise UnsafeKeyError(f"{field} {value[:60]!r} cannot be part of an object key")
    if cdr.started is not None:
        day = datetime.fromtimestamp(cdr.started.epoch_ms / 1000, UTC)
    else:
        day = datetime.fromtimestamp(cdr.origin.received_at_ms / 1000, UTC)
    ext = PurePosixPath(cdr.recording_file).suffix.lower()
    if EXTENSION.fullmatch(ext) is None:
        ext = ".wav"
    return f"{prefix}recordings/{cdr.tenant}/{day:%Y/%m/%d}/{cdr.uuid}{ext}"


async def fetch_and_archive(
    cdr: CdrRecord,
    tokens: TokenManager,
    client: YunhuClient,
    archive: S3Archive,
    *,
    policy: DownloadPolicy,
    max_bytes: int,
    prefix: str = "",
    link_attempts: int = 3,
) -> Archived:
    """Raises a retriable error when the recording is not ready or something is down."""
    key = object_key(cdr, prefix)
    already = await archive.existing(key)
    if already is not None:
        return already
    metadata = {
        "call-uuid": cdr.uuid,
        "cdr-id": cdr.cdr_id,
        "tenant": cdr.tenant,
        "source-file": cdr.recording_file,
    }
    for attempt in range(1, link_attempts + 1):
        link = await tokens.call(lambda token: client.get_record_file(token, cdr.recording_file))
        try:
            async with client.download(link, policy, max_bytes=max_bytes) as chunks:
                return await archive.put_stream(key, chunks, metadata)
        except LinkExpiredError:
            if attempt == link_attempts:
                raise
            log.info("download link expired; asking for a new one", extra={"uuid": cdr.uuid})
    raise AssertionError("unreachable")  # pragma: no cover
