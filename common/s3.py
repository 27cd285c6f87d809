"""The S3 client every service builds from `S3Settings`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from common.config import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def make_client(
    settings: S3Settings, *, max_pool: int = 10, timeout: float = 30.0, attempts: int = 3
) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        config=Config(
            connect_timeout=5,
            read_timeout=timeout,
            max_pool_connections=max_pool,
            retries={"mode": "standard", "max_attempts": attempts},
            s3={"addressing_style": "path"},
        ),
    )


def ensure_bucket(client: S3Client, bucket: str) -> bool:
    """Creates `bucket` unless it exists; True when it was created."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)
        return True
    return False
