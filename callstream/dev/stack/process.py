"""Start a background process with a pid file, and stop exactly that process again."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from callstream.dev.stack.errors import StackError

EXEC_SECONDS = 1.0  # how long a command line may read empty while the program starts


@dataclass(frozen=True, slots=True)
class Managed:
    """A process the stack owns: `name.pid` in the state folder, output in `name.log`."""

    name: str
    state_dir: Path
    # A word that must appear in the process's command line, so that a pid reused
    # by an unrelated process after a crash is never signalled.
    marker: str

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def _recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        """The pid if our process is alive, else None (the pid file of a dead one is removed)."""
        pid = self._recorded_pid()
        if pid is None:
            return None
        if not _alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        # A live pid that is not running our program was reused by another process.
        return pid if _cmdline_has(pid, self.marker) else None

    def started_at(self) -> float | None:
        """When the stack started the running process (its pid file's time); None if none runs."""
        if self.pid() is None:
            return None
        try:
            return self.pid_file.stat().st_mtime
        except FileNotFoundError:
            return None

    def exited(self) -> bool:
        """True once the recorded process is gone (robust while it is still exec-ing)."""
        pid = self._recorded_pid()
        return pid is None or not _alive(pid)

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argv is built by the stack, not from input
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env={**os.environ, **env},
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        _wait_for_exec(proc.pid)  # so that pid() finds the marker from now on
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL after `timeout`; True if something was running."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def wait_answering(
        self, answers: Callable[[], bool], timeout: float, what: str, logs: str
    ) -> None:
        """Block until `answers()`, or fail (naming `logs`) when the process exits or
        `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exited():
                raise StackError(f"{what} exited during start-up; see {logs}:\n{self.log_tail()}")
            if answers():
                return
            time.sleep(0.3)
        raise StackError(f"{what} did not answer within {timeout:.0f}s; see {logs}")

    def log_tail(self, lines: int = 25) -> str:
        found = last_lines(self.log_file, lines)
        return "(no log)" if found is None else "\n".join(found)


def last_lines(path: Path, lines: int = 25) -> list[str] | None:
    """The last `lines` lines of a log file (read from its last 64 KiB); None if unreadable."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return text.splitlines()[-lines:]


def _cmdline_has(pid: int, marker: str) -> bool:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker.encode() in raw


def _wait_for_exec(pid: int) -> None:
    """Until the started program's command line is readable: Popen returns before the
    kernel has set up the new program's arguments, and until then it reads empty."""
    deadline = time.monotonic() + EXEC_SECONDS
    while time.monotonic() < deadline and _state(pid) not in (None, "Z"):  # not ended
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes():
                return
        time.sleep(0.01)


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, Z, …); None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    state = _state(pid)
    if state is None:
        return False
    if state == "Z":  # a zombie has exited; reap it if it is our child
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def require_free_ports(ports: Mapping[str, int], hint: str) -> None:
    invalid = [f"{name} port {port}" for name, port in ports.items() if not 0 < port < 65536]
    if invalid:
        raise StackError(f"{', '.join(invalid)} out of range (1-65535); {hint}")
    taken = [f"{name} port {port}" for name, port in ports.items() if not port_free(port)]
    if taken:
        raise StackError(f"{', '.join(taken)} already in use on 127.0.0.1; {hint}")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
