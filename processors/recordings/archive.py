"""Streams a download into S3 without holding it in memory: multipart upload in parts of
`part_size`, sha256 and size computed on the way, content type sniffed from the first bytes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_SIZE = 8 << 20  # S3's minimum part is 5 MiB (except the last)


@dataclass(frozen=True, slots=True)
class Archived:
    bucket: str
    key: str
    size: int
    sha256: str
    content_type: str


def sniff(head: bytes) -> tuple[str, str]:
    """(content type, file extension) from a file's first bytes."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav", ".wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg", ".mp3"
    if head[:4] == b"OggS":
        return "audio/ogg", ".ogg"
    return "application/octet-stream", ""


class S3Archive:
    def __init__(self, client: S3Client, bucket: str, part_size: int = PART_SIZE) -> None:
        self.client = client
        self.bucket = bucket
        self.part_size = part_size

    async def existing(self, key: str) -> Archived | None:
        """The archived object, if a complete one with our checksum is already there."""
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        sha = head.get("Metadata", {}).get("sha256")
        if not sha:
            return None
        return Archived(self.bucket, key, head["ContentLength"], sha, head.get("ContentType", ""))

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], metadata: Mapping[str, str]
    ) -> Archived:
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        content_type = ""
        upload_id: str | None = None
        parts: list[dict[str, object]] = []
        try:
            async for chunk in chunks:
                if not content_type and len(buffer) + len(chunk) >= 16:
                    content_type = sniff(bytes(buffer[:16]) + chunk[:16])[0]
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                if len(buffer) >= self.part_size:
                    if upload_id is None:
                        upload_id = await self._start(
                            key, content_type or "application/octet-stream", metadata
                        )
                    parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            content_type = content_type or sniff(bytes(buffer[:16]))[0]
            full = {**metadata, "sha256": digest.hexdigest(), "size": str(size)}
            if upload_id is None:  # small enough for one PUT
                await asyncio.to_thread(
                    self.client.put_object,
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(buffer),
                    ContentType=content_type,
                    Metadata=full,
                )
            else:
                if buffer:
                    parts.append(await self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                await asyncio.to_thread(
                    self.client.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
                # Multipart metadata is fixed at the start, before the checksum is known.
                await asyncio.to_thread(
                    self.client.copy_object,
                    Bucket=self.bucket,
                    Key=key,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    Metadata=full,
                    MetadataDirective="REPLACE",
                    ContentType=content_type,
                )
        except BaseException:
            if upload_id is not None:
                await asyncio.to_thread(
                    self.client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                )
            raise
        return Archived(self.bucket, key, size, digest.hexdigest(), content_type)

    async def _start(self, key: str, content_type: str, metadata: Mapping[str, str]) -> str:
        created = await asyncio.to_thread(
            self.client.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            ContentType=content_type,
            Metadata=dict(metadata),
        )
        return created["UploadId"]

    async def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, object]:
        done = await asyncio.to_thread(
            self.client.upload_part,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"ETag": done["ETag"], "PartNumber": number}
