"""What a one-shot command (`topics`, `bucket`, `replay`) says when Kafka or S3 cannot be
reached or refuses it: a line on stderr that says so, and whether running it again may
help; never a traceback. Ctrl-C is a line too. The long-running services retry instead
(`common.runner`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final

from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as S3ConnectionError

SERVICE_ERRORS: Final = (KafkaError, BotoCoreError, ClientError)
FAILED: Final = 1  # the exit code; 2 stays a setting's or an argument's mistake
INTERRUPTED: Final = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C ended


def retriable(err: Exception) -> bool:
    """Whether the same command may work later: Kafka's errors say so themselves; S3's
    do when the store could not be reached or answered 5xx or slow down."""
    if isinstance(err, KafkaError):
        return bool(err.retriable)
    if isinstance(err, (S3ConnectionError, HTTPClientError)):
        return True
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or err.response.get("Error", {}).get("Code") == "SlowDown"
    return False


def describe(err: Exception) -> str:
    if isinstance(err, KafkaError):  # its text starts with its name already
        where, what = "Kafka", str(err)
    else:
        where, what = "S3", f"{type(err).__name__}: {err}"
    again = "; retriable: running it again may work" if retriable(err) else ""
    return f"{where}: {what}{again}"


def service_failed(command: str, err: Exception) -> int:
    """Reports `err`, one of SERVICE_ERRORS, for `callstream COMMAND`; the exit code."""
    print(f"callstream {command}: {describe(err)}", file=sys.stderr)
    return FAILED


def interrupted(command: str) -> int:
    """Reports Ctrl-C (the clients are closed by then); the exit code."""
    print(f"callstream {command}: interrupted", file=sys.stderr)
    return INTERRUPTED


def reported(command: str, work: Callable[[], int]) -> int:
    """`work()`'s exit code; or Kafka or S3 failing it, or Ctrl-C, said in a line."""
    try:
        return work()
    except SERVICE_ERRORS as err:
        return service_failed(command, err)
    except KeyboardInterrupt:
        return interrupted(command)
