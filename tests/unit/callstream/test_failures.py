from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from botocore.exceptions import ClientError, EndpointConnectionError

from callstream.failures import describe, retriable
from common.kafka import CommitTimedOut
from tests.support.processes import run_callstream


def _s3_refused(status: int, code: str) -> ClientError:
    answer = {
        "Error": {"Code": code, "Message": "no"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(answer, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("err", "again"),
    [
        (KafkaConnectionError("Unable to bootstrap"), True),
        (CommitTimedOut("offsets not committed within 10s"), True),
        (TopicAuthorizationFailedError(), False),
        (EndpointConnectionError(endpoint_url="http://s3:1/b"), True),
        (_s3_refused(503, "ServiceUnavailable"), True),
        (_s3_refused(503, "SlowDown"), True),
        (_s3_refused(403, "AccessDenied"), False),
        (_s3_refused(404, "NoSuchBucket"), False),
    ],
)
def test_a_failure_says_where_and_whether_running_again_may_work(
    err: Exception, again: bool
) -> None:
    assert retriable(err) is again
    said = describe(err)
    assert said.startswith("Kafka: " if isinstance(err, KafkaError) else "S3: ")
    assert ("retriable" in said) is again


@pytest.fixture(scope="module")
def closed_port() -> str:
    """An address where nothing listens: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


WINDOW = ("--start", "2026-12-07T00:00:00Z", "--end", "2026-12-07T01:00:00Z")


@pytest.mark.parametrize(
    ("command", "where"),
    [
        (("topics", "create"), "Kafka"),
        (("topics", "verify"), "Kafka"),
        (("replay", "reset", "--group", "g", "--to", "now"), "Kafka"),
        (("replay", "window", "--from-topic", "a", "--to-topic", "b", *WINDOW), "Kafka"),
        (("replay", "deadletter"), "Kafka"),
        (("replay", "lake", "--topic", "a", "--dry-run", *WINDOW), "S3"),
        (("bucket", "ensure"), "S3"),
    ],
)
def test_a_one_shot_command_that_cannot_reach_kafka_or_s3_says_so_without_a_traceback(
    closed_port: str, command: tuple[str, ...], where: str
) -> None:
    env = {
        "CALLSTREAM_KAFKA_BOOTSTRAP": closed_port,
        "CALLSTREAM_S3_ENDPOINT": f"http://{closed_port}",
        "CALLSTREAM_S3_BUCKET": "b",
        "CALLSTREAM_S3_ACCESS_KEY_ID": "k",
        "CALLSTREAM_S3_SECRET_ACCESS_KEY": "s",
    }
    done = run_callstream(*command, env=env, timeout=60)
    assert done.returncode == 1, done.stderr
    said = f"callstream {command[0]} {command[1]}: {where}: "
    assert said in done.stderr
    assert "retriable: running it again may work" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Unclosed" not in done.stderr, "its clients are closed"


def _from_a_terminal(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`argv` started as a terminal starts it: with Ctrl-C's signal not ignored, as it is
    inherited when the tests themselves run in the background (nohup, `cmd &`)."""
    ours = signal.signal(signal.SIGINT, signal.default_int_handler)  # reset to SIG_DFL by exec
    try:
        return subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finally:
        signal.signal(signal.SIGINT, ours)


@pytest.mark.parametrize(
    "command",
    [
        ("topics", "create"),
        ("replay", "reset", "--group", "g", "--to", "now"),
        ("replay", "window", "--from-topic", "a", "--to-topic", "b", *WINDOW),
        ("bucket", "ensure"),
    ],
)
def test_ctrl_c_ends_a_one_shot_command_with_a_line_and_130(command: tuple[str, ...]) -> None:
    with socket.socket() as silent:  # takes connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        env = {
            **os.environ,
            "CALLSTREAM_KAFKA_BOOTSTRAP": address,
            "CALLSTREAM_S3_ENDPOINT": f"http://{address}",
            "CALLSTREAM_S3_BUCKET": "b",
            "CALLSTREAM_S3_ACCESS_KEY_ID": "k",
            "CALLSTREAM_S3_SECRET_ACCESS_KEY": "s",
        }
        proc = _from_a_terminal([sys.executable, "-m", "callstream", *command], env)
        try:
            silent.settimeout(30)
            waiting, _ = silent.accept()  # the command is connecting: waiting for an answer
            with waiting:
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"callstream {command[0]} {command[1]}: interrupted" in err
    assert "Traceback" not in err
