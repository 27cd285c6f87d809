"""`callstream bucket ensure`: create the S3 bucket when it does not exist (deploy set-up)."""

from __future__ import annotations

import argparse
import os
import sys

from callstream.command import Command
from callstream.failures import reported
from common.config import ConfigError, S3Settings
from common.s3 import ensure_bucket, make_client


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["ensure"])


def main(args: argparse.Namespace) -> int:
    try:
        s3 = S3Settings.from_env(os.environ)
    except ConfigError as err:
        print(f"callstream bucket: {err}", file=sys.stderr)
        return 2

    def ensure() -> int:
        created = ensure_bucket(make_client(s3), s3.bucket)
        print(f"bucket {s3.bucket}: {'created' if created else 'exists'}")
        return 0

    return reported("bucket ensure", ensure)


COMMAND = Command("bucket", "create the S3 bucket if it is missing", main, options, __doc__)
