"""A replay's progress bar (tqdm's) on stderr, and the summary every replay ends with."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from tqdm import tqdm


class Progress:
    def __init__(self, label: str, *, unit: str = "records", out: TextIO | None = None) -> None:
        self.label = label
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        stream = out or sys.stderr
        self._bar = tqdm(
            desc=label,
            unit=f" {unit}",
            file=stream,
            mininterval=0.2 if stream.isatty() else 5.0,
            dynamic_ncols=True,
        )

    @property
    def total(self) -> int | None:
        total = self._bar.total
        return None if total is None else int(total)

    @total.setter
    def total(self, value: int) -> None:
        self._bar.total = value
        self._bar.refresh()

    @property
    def unit(self) -> str:
        return str(self._bar.unit).strip()

    @unit.setter
    def unit(self, value: str) -> None:
        self._bar.unit = f" {value}"

    @property
    def done(self) -> int:
        return int(self._bar.n)

    def advance(self, n: int = 1, **counts: int) -> None:
        self.counts.update(counts)
        self._bar.update(n)

    def close(self) -> None:
        """Ends the bar's line (again is fine), so what is printed next starts its own."""
        self._bar.close()

    def summary(self) -> str:
        self.close()
        elapsed = time.monotonic() - self.started
        parts = ", ".join(f"{name} {n}" for name, n in sorted(self.counts.items()))
        return f"{self.label}: {self.done} {self.unit} in {elapsed:.1f}s" + (
            f" ({parts})" if parts else ""
        )
