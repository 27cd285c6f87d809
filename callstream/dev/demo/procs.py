"""The pipeline's services as child processes, each logging to a file of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from callstream.dev.stack.process import last_lines


@dataclass(frozen=True)
class Launcher:
    """How a service is started: this interpreter, or `docker run` of an image (with the
    host's network, as uid 10001, a read-only root file system and `volume` mounted
    writable at the same path: the run's folder, with the spool)."""

    image: str = ""
    volume: Path | None = None

    def argv(self, name: str, args: list[str], env: dict[str, str]) -> list[str]:
        if not self.image:
            return [sys.executable, "-m", "callstream", *args]
        passed = {k: v for k, v in os.environ.items() if k.startswith("CALLSTREAM_")}
        flags = [f"--env={k}={v}" for k, v in {**passed, **env}.items()]
        if self.volume is not None:
            flags.append(f"--volume={self.volume}:{self.volume}")
        return [
            "docker", "run", "--rm", "--network=host", "--user=10001", "--read-only",
            "--tmpfs=/tmp", f"--name=callstream-{name}-{os.getpid()}", *flags, self.image, *args,
        ]  # fmt: skip


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None
    args: list[str]  # how it was started, so it can be started again
    env: dict[str, str]
    metrics_port: int | None
    launcher: Launcher

    def alive(self) -> bool:
        return self.proc.poll() is None


def tail(child: Child, lines: int = 25) -> list[str]:
    """The last `lines` lines of `child`'s log (what a failed run's summary shows)."""
    return last_lines(child.log, lines) or []


def start(
    name: str,
    args: list[str],
    env: dict[str, str],
    logs: Path,
    metrics_port: int | None = None,
    *,
    launcher: Launcher = Launcher(),
) -> Child:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            launcher.argv(name, args, env),
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None
    return Child(name, proc, log, url, args, env, metrics_port, launcher)


def restart(child: Child) -> Child:
    """The same service started again, logging to the same file."""
    logs = child.log.parent
    return start(
        child.name, child.args, child.env, logs, child.metrics_port, launcher=child.launcher
    )


def stop(children: list[Child], timeout: float = 45.0) -> dict[str, int]:
    """SIGTERM each in turn (waiting for it), SIGKILL what does not stop in `timeout`."""
    codes: dict[str, int] = {}
    for child in children:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        try:
            codes[child.name] = child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            codes[child.name] = child.proc.wait()
    return codes


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started that are still running; none once it is gone."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
