"""Remembers which records were published, so a callback the platform (or the receiver's
spool) delivered twice is published once. Entries become "seen" only when their batch's
transaction commits; rolled-back batches forget theirs. Batches are started, and commit,
in order; more than one may be pending (one transforming while another commits)."""

from __future__ import annotations

from collections import deque


class Deduper:
    def __init__(self, capacity: int = 1_000_000) -> None:
        self._seen: dict[str, None] = {}  # insertion-ordered: the oldest id comes first
        self._pending: set[str] = set()  # admitted by batches not committed yet
        self._batches: deque[list[str]] = deque()  # their ids, oldest batch first
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, record_id: str) -> None:
        """Mark as published (warm-up from the output topics)."""
        if record_id in self._seen:
            return
        self._seen[record_id] = None
        if len(self._seen) > self.capacity:
            del self._seen[next(iter(self._seen))]

    def started(self) -> None:
        """A batch begins: what `admit` takes from now on is its."""
        self._batches.append([])

    def admit(self, record_id: str) -> bool:
        """True the first time a record id is offered; False for a duplicate."""
        if record_id in self._seen or record_id in self._pending:
            return False
        if not self._batches:
            self.started()
        self._pending.add(record_id)
        self._batches[-1].append(record_id)
        return True

    def committed(self) -> None:
        """The oldest pending batch committed: its ids are published."""
        if not self._batches:
            return
        for record_id in self._batches.popleft():
            self._pending.discard(record_id)
            self.remember(record_id)

    def aborted(self) -> None:
        """Every pending batch is dropped (they will be read and offered again)."""
        self._pending.clear()
        self._batches.clear()
