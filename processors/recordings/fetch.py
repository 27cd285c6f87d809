"""One recording: a fresh link per attempt, streamed from the platform into S3."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import PurePosixPath

from common.records import CdrRecord
from processors.recordings.archive import Archived, S3Archive
from yunhu.api import LinkExpiredError, TokenManager, YunhuClient

log = logging.getLogger(__name__)
CHUNK = 64 << 10


def object_key(cdr: CdrRecord, prefix: str = "") -> str:
    """`recordings/{companycode}/{YYYY}/{MM}/{DD}/{uuid}{ext}`, dated by the call's UTC start."""
    if cdr.started is not None:
        day = datetime.fromtimestamp(cdr.started.epoch_ms / 1000, UTC)
    else:
        day = datetime.fromtimestamp(cdr.origin.received_at_ms / 1000, UTC)
    ext = PurePosixPath(cdr.recording_file).suffix.lower() or ".wav"
    company = cdr.companycode or cdr.tenant
    return f"{prefix}recordings/{company}/{day:%Y/%m/%d}/{cdr.uuid}{ext}"


async def fetch_and_archive(
    cdr: CdrRecord,
    tokens: TokenManager,
    client: YunhuClient,
    archive: S3Archive,
    *,
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
            async with client.download(link) as response:
                return await archive.put_stream(key, response.content.iter_chunked(CHUNK), metadata)
        except LinkExpiredError:
            if attempt == link_attempts:
                raise
            log.info("download link expired; asking for a new one", extra={"uuid": cdr.uuid})
    raise AssertionError("unreachable")  # pragma: no cover
