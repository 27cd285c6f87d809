"""The S3 server stores, describes, returns and deletes objects as the archivers expect."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from tests.support.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_put_head_get_delete(services: Services, s3_client: S3Client, s3_prefix: str) -> None:
    bucket, key = services.s3.bucket, f"{s3_prefix}recordings/a.wav"
    body = os.urandom(256 * 1024)
    digest = hashlib.sha256(body).hexdigest()
    s3_client.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="audio/wav", Metadata={"sha256": digest}
    )

    head = s3_client.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "audio/wav"
    assert head["Metadata"] == {"sha256": digest}

    got = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == digest

    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=s3_prefix)
    assert [item["Key"] for item in listed.get("Contents", [])] == [key]

    s3_client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as gone:
        s3_client.head_object(Bucket=bucket, Key=key)
    assert gone.value.response["Error"]["Code"] in {"404", "NoSuchKey"}
