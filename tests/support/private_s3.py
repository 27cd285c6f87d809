"""An S3 server (SeaweedFS) of one test's own, which the test may kill and restart."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from callstream.dev.stack import StackError, StackSettings
from callstream.dev.stack import s3 as stack_s3
from common.config import S3Settings
from devkit.ports import free_seaweed_block


@dataclass
class PrivateS3:
    settings: StackSettings
    started_once: bool = False

    @classmethod
    def create(cls, folder: Path) -> PrivateS3:
        return cls(StackSettings(root=folder, s3_bucket="private-test"))

    @property
    def s3(self) -> S3Settings:
        return self.settings.s3_settings()

    def start(self, timeout: float = 60.0) -> None:
        """A first start picks a block of ports (S3 at base+1, SeaweedFS's servers around
        it, their gRPC twins 10000 above, all below 65536); a restart keeps them."""
        if self.started_once:
            stack_s3.start(self.settings)
        else:
            self._start_on_free_block()
        stack_s3.wait_ready(self.settings, timeout)
        self.started_once = True

    def _start_on_free_block(self) -> None:
        for _ in range(5):
            base = free_seaweed_block()
            self.settings = StackSettings(
                root=self.settings.root,
                s3_port=base + 1,
                seaweed_port_base=base,
                s3_bucket=self.settings.s3_bucket,
            )
            try:
                stack_s3.start(self.settings)
            except StackError:
                continue
            return
        raise StackError("no free port block for a private SeaweedFS")

    def kill(self) -> None:
        proc = stack_s3.managed(self.settings)
        pid = proc.pid()
        assert pid is not None, "the private S3 is not running"
        os.killpg(pid, signal.SIGKILL)
        while proc.pid() is not None:
            time.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP: the server holds every connection and answers nothing (a stalled disk
        or a network partition, as the client sees it) until `thaw`."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        pid = stack_s3.managed(self.settings).pid()
        assert pid is not None, "the private S3 is not running"
        os.killpg(pid, sig)

    def stop(self) -> None:
        """Stopped, thawed first should the test have left it frozen."""
        proc = stack_s3.managed(self.settings)
        pid = proc.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGCONT)
        proc.stop(timeout=20)
