"""A progress line with rate and ETA on stderr, and the summary every replay ends with."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    label: str
    total: int | None = None
    unit: str = "records"
    out: TextIO = field(default_factory=lambda: sys.stderr)
    every: float = 0.2
    done: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    _shown: float = 0.0

    def advance(self, n: int = 1, **counts: int) -> None:
        self.done += n
        self.counts.update(counts)
        now = time.monotonic()
        if now - self._shown >= (self.every if self.out.isatty() else 5.0):
            self._shown = now
            self._show(now)

    def _show(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 30)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            line = (
                f"{self.label} [{bar:<30}] {self.done}/{self.total} {self.unit} {share:4.0%} "
                f"{rate:,.1f}/s ETA {eta:,.0f}s"
            )
        else:
            line = f"{self.label} {self.done} {self.unit} {rate:,.1f}/s"
        end = "\r" if self.out.isatty() else "\n"
        self.out.write(line + end)
        self.out.flush()

    def summary(self) -> str:
        self._show(time.monotonic())
        if self.out.isatty():
            self.out.write("\n")
        elapsed = time.monotonic() - self.started
        parts = ", ".join(f"{name} {n}" for name, n in sorted(self.counts.items()))
        return f"{self.label}: {self.done} {self.unit} in {elapsed:.1f}s" + (
            f" ({parts})" if parts else ""
        )
