from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callstream.dev.stack.errors import StackError
from callstream.dev.stack.process import Managed, require_free_ports

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "callstream-test-sleeper"]


def test_start_writes_a_pid_file_and_stop_ends_exactly_that_process(tmp_path: Path) -> None:
    proc = Managed("sleeper", tmp_path, marker="callstream-test-sleeper")
    pid = proc.start(SLEEPER, env={}, cwd=tmp_path)
    assert proc.pid() == pid
    assert proc.pid_file.read_text().strip() == str(pid)

    assert proc.stop(timeout=5) is True
    assert proc.pid() is None
    assert not proc.pid_file.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert proc.stop() is False


def test_started_at_is_when_the_running_process_was_started(tmp_path: Path) -> None:
    proc = Managed("sleeper", tmp_path, marker="callstream-test-sleeper")
    assert proc.started_at() is None
    before = time.time()
    proc.start(SLEEPER, env={}, cwd=tmp_path)
    try:
        started = proc.started_at()
        assert started is not None
        assert before - 1 <= started <= time.time()
    finally:
        proc.stop(timeout=5)
    assert proc.started_at() is None


def test_a_pid_file_naming_another_program_is_never_signalled(tmp_path: Path) -> None:
    other = subprocess.Popen([shutil.which("sleep") or "sleep", "60"])
    try:
        proc = Managed("kafka", tmp_path, marker="kafka.Kafka")
        proc.pid_file.write_text(f"{other.pid}\n")
        assert proc.pid() is None
        assert proc.stop() is False
        assert other.poll() is None, "an unrelated process was signalled"
    finally:
        other.kill()
        other.wait()


def test_the_pid_file_of_a_dead_process_is_cleared(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc = Managed("kafka", tmp_path, marker="kafka.Kafka")
    proc.pid_file.write_text(f"{dead.pid}\n")
    assert proc.exited()
    assert proc.pid() is None
    assert not proc.pid_file.exists()


def test_the_log_tail_shows_what_the_process_printed(tmp_path: Path) -> None:
    proc = Managed("echo", tmp_path, marker="callstream-test-echo")
    pid = proc.start(
        [sys.executable, "-c", "print('line one'); print('line two')", "callstream-test-echo"],
        env={},
        cwd=tmp_path,
    )
    os.waitpid(pid, 0)
    assert proc.log_tail(1) == "line two"


def test_a_taken_port_is_named_in_the_error() -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StackError, match=f"kafka port {port} already in use"):
            require_free_ports({"kafka": port}, "set CALLSTREAM_STACK_KAFKA_PORT")


def test_a_port_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(StackError, match="s3 grpc port 70000 out of range"):
        require_free_ports({"s3 grpc": 70000}, "set CALLSTREAM_STACK_S3_PORT")
