"""Runs the Quix Streams peer (`bench.peers.quix_enrich`) in its own virtualenv."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.measured import ROOT, child_env, measured
from bench.peers.venv import quix_python
from common.config import KafkaSettings

TRANSACTION_SIZE = 500  # records per transaction, as `callstream enrich` (max_records)


@dataclass(frozen=True, slots=True)
class QuixPeer:
    python: Path
    kafka: KafkaSettings
    commit_every: int  # 0: Quix's defaults (a commit every 5 s)

    @property
    def name(self) -> str:
        return f"quix {self.commit_every}/txn" if self.commit_every else "quix defaults"

    def command(self, raw_suffix: str, suffix: str, expected: int) -> list[str]:
        return [
            str(self.python),
            "-m",
            "bench.peers.quix_enrich",
            "--bootstrap",
            self.kafka.bootstrap,
            "--raw-suffix",
            raw_suffix,
            "--suffix",
            suffix,
            "--group",
            f"bench-quix-{uuid.uuid4().hex[:8]}",
            "--commit-every",
            str(self.commit_every),
            "--expected",
            str(expected),
        ]

    def start(self, raw_suffix: str, suffix: str, expected: int = 0) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(raw_suffix, suffix, expected),
            env=child_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def measure(self, raw_suffix: str, suffix: str, expected: int) -> tuple[float, float]:
        """Wall and CPU seconds from its first record to its last commit."""
        return measured(self.command(raw_suffix, suffix, expected), child_env(), expected)


def quix_peers(kafka: KafkaSettings, stack_dir: Path) -> list[QuixPeer]:
    python = quix_python(stack_dir)
    return [QuixPeer(python, kafka, 0), QuixPeer(python, kafka, TRANSACTION_SIZE)]
