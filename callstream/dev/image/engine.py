"""A Docker engine to talk to: the one that answers, or `dockerd` started here (as root,
without a bridge or iptables, so containers use the host's network) and stopped after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class ImageError(Exception):
    """What the image build or test needs is missing, or a check failed."""


def docker(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """`docker ARGS` against the engine `env` names; output captured as text."""
    done: subprocess.CompletedProcess[str] = subprocess.run(  # noqa: S603 - our own arguments
        ["docker", *args],  # noqa: S607 - docker from PATH, as a user would run it
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    return done


def answers(env: dict[str, str]) -> bool:
    return shutil.which("docker") is not None and docker(env, "info").returncode == 0


@contextlib.contextmanager
def docker_engine(state: Path) -> Iterator[dict[str, str]]:
    """The environment (`DOCKER_HOST`) in which `docker` reaches an engine."""
    if answers({}):
        yield {}
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise ImageError(
            "no Docker engine answers; as root with docker.io installed, one is started"
        )
    state.mkdir(parents=True, exist_ok=True)
    env = {"DOCKER_HOST": f"unix://{state / 'docker.sock'}"}
    # The exec root holds sockets (a unix socket's path is at most 107 bytes) and mounts
    # dockerd leaves behind: a short path of its own, reused, not removed.
    exec_root = Path(tempfile.gettempdir()) / f"callstream-dockerd-{os.getuid()}"
    with (state / "dockerd.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603
            [
                dockerd,
                "--bridge=none",
                "--iptables=false",
                f"--data-root={state / 'root'}",
                f"--exec-root={exec_root}",
                f"--host={env['DOCKER_HOST']}",
                f"--pidfile={state / 'dockerd.pid'}",
            ],
            stdout=log,
            stderr=log,
        )
        try:
            _wait_for(env, proc, state / "dockerd.log")
            yield env
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for(env: dict[str, str], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if answers(env):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace").splitlines()[-10:]
    raise ImageError("dockerd did not start:\n" + "\n".join(tail))
