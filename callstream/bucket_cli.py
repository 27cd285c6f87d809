"""`callstream bucket ensure`: create the S3 bucket when it does not exist (deploy set-up)."""

from __future__ import annotations

import argparse
import os
import sys

from callstream.command import Command
from callstream.failures import SERVICE_ERRORS, service_failed
from common.config import ConfigError, S3Settings
from common.s3 import ensure_bucket, make_client


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["ensure"])


def main(args: argparse.Namespace) -> int:
    try:
        s3 = S3Settings.from_env(os.environ)
        created = ensure_bucket(make_client(s3), s3.bucket)
        print(f"bucket {s3.bucket}: {'created' if created else 'exists'}")
    except ConfigError as err:
        print(f"callstream bucket: {err}", file=sys.stderr)
        return 2
    except SERVICE_ERRORS as err:
        return service_failed("bucket ensure", err)
    return 0


COMMAND = Command("bucket", "create the S3 bucket if it is missing", main, options, __doc__)
