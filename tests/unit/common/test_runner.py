"""`run_service`, in a process of its own: a configuration error exits 2 with one line
on stderr; a started service serves its probes, and the first SIGTERM stops it
gracefully (a second one, mid-stop, is ignored) with exit code 0, as it does a service
still starting, and one whose stop left a thread blocked in a call nobody waits for; a
stop that overruns its deadline ends the process with exit code 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import runner
from devkit.ports import free_ports

SERVICE = """
import asyncio, contextlib, sys, time
from dataclasses import dataclass
from prometheus_client import CollectorRegistry, Counter
from common.config import ConfigError
from common.runner import Probes, Started, run_service

@dataclass(frozen=True)
class Config:
    port: int
    def shown(self):
        return (self,)

def load():
    if sys.argv[1] == "bad":
        raise ConfigError("CALLSTREAM_DEMO_PORT must be a number")
    return Config(int(sys.argv[1]))

@contextlib.asynccontextmanager
async def start(config):
    if len(sys.argv) > 2 and sys.argv[2] == "unstarted":  # waiting for what never comes
        print("starting", flush=True)
        try:
            await asyncio.sleep(3600)
        finally:
            print("start-up closed", flush=True)
    registry = CollectorRegistry()
    Counter("demo_started", "x", registry=registry).inc()
    async def run(stop):
        print("running", flush=True)
        await stop.wait()
        print("stopping", flush=True)
        await asyncio.sleep(1.0)  # work still being finished when a second signal comes
    yield Started(run, Probes(config.port, registry))
    if len(sys.argv) > 2 and sys.argv[2] == "stuck":  # a blocking call that never returns
        await asyncio.to_thread(time.sleep, 3600)
    if len(sys.argv) > 2 and sys.argv[2] == "abandoned":  # one nobody waits for any more
        call = asyncio.ensure_future(asyncio.to_thread(time.sleep, 3600))
        await asyncio.sleep(0.2)
        call.cancel()
    print("closed", flush=True)

print_config = len(sys.argv) > 2 and sys.argv[2] == "--print-config"
sys.exit(run_service("demo", load, start, print_config=print_config))
"""


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_configuration_error_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = _start(tmp_path, "bad")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip() == "callstream demo: CALLSTREAM_DEMO_PORT must be a number"
    assert out == ""


def test_print_config_prints_and_starts_nothing(tmp_path: Path) -> None:
    proc = _start(tmp_path, "9", "--print-config")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert json.loads(out) == {
        "RunnerSettings": {"log_level": "INFO", "stop_deadline": 0.0},
        "Config": {"port": 9},
    }


def test_probes_are_served_and_sigterm_stops_gracefully(tmp_path: Path) -> None:
    [port] = free_ports(1)
    proc = _start(tmp_path, str(port))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                metrics = r.read().decode()
            break
        except OSError:
            assert time.monotonic() < deadline, "the probes never answered"
            time.sleep(0.1)
    assert "demo_started_total 1.0" in metrics
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        assert json.loads(r.read()) == {"healthy": True}
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline().strip() == "stopping"
    proc.send_signal(signal.SIGTERM)  # ignored: the stop under way finishes
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "closed"
    assert '"msg":"stopped"' in err.replace(" ", "")
    assert "nobody waits for" not in err


def test_a_finished_stop_exits_0_without_the_threads_it_abandoned(tmp_path: Path) -> None:
    [port] = free_ports(1)
    proc = _start(tmp_path, str(port), "abandoned")
    _wait_running(proc)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    took = time.monotonic() - signalled
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "closed"
    grace = runner.ABANDONED_GRACE_SECONDS
    assert grace <= took < grace + 5.0, took
    line = next(json.loads(x) for x in err.splitlines() if "nobody waits for" in x)
    assert line["level"] == "warning"
    assert any(name.startswith("asyncio_") for name in line["threads"]), line["threads"]


def _wait_running(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"


def test_sigterm_during_start_up_ends_it_and_exits_0(tmp_path: Path) -> None:
    [port] = free_ports(1)
    proc = _start(tmp_path, str(port), "unstarted")
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "starting"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - signalled < 5.0
    assert out.split() == ["start-up", "closed"], "what had started is closed; nothing ran"
    assert '"msg":"stopped"' in err.replace(" ", "")


def test_a_stop_that_overruns_its_deadline_exits_3_and_says_so(tmp_path: Path) -> None:
    [port] = free_ports(1)
    proc = _start(tmp_path, str(port), "stuck", env={"CALLSTREAM_STOP_DEADLINE": "2"})
    _wait_running(proc)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - signalled
    assert proc.returncode == 3, err
    assert 2.0 <= took < 6.0, took
    assert "closed" not in out
    line = next(json.loads(x) for x in err.splitlines() if "STOP_DEADLINE" in x)
    assert line["level"] == "error"
    assert line["deadline_seconds"] == 2.0


def test_a_stop_in_time_is_not_cut_short_by_the_deadline(tmp_path: Path) -> None:
    [port] = free_ports(1)
    proc = _start(tmp_path, str(port), env={"CALLSTREAM_STOP_DEADLINE": "3"})
    _wait_running(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "closed"
    assert "STOP_DEADLINE" not in err


def test_a_malformed_deadline_is_a_configuration_error(tmp_path: Path) -> None:
    proc = _start(tmp_path, "9", env={"CALLSTREAM_STOP_DEADLINE": "soon"})
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "CALLSTREAM_STOP_DEADLINE='soon'" in err
