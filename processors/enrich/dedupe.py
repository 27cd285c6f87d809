"""Remembers which records were published, so a callback the platform (or the receiver's
spool) delivered twice is published once. Entries become "seen" only when their batch's
transaction commits; a rolled-back batch forgets its own."""

from __future__ import annotations


class Deduper:
    def __init__(self, capacity: int = 1_000_000) -> None:
        self._seen: dict[str, None] = {}  # insertion-ordered: the oldest id comes first
        self._pending: set[str] = set()
        self.capacity = capacity
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, record_id: str) -> None:
        """Mark as published (warm-up from the output topics)."""
        if record_id in self._seen:
            return
        self._seen[record_id] = None
        if len(self._seen) > self.capacity:
            del self._seen[next(iter(self._seen))]

    def admit(self, record_id: str) -> bool:
        """True the first time a record id is offered; False for a duplicate."""
        if record_id in self._seen or record_id in self._pending:
            self.dropped += 1
            return False
        self._pending.add(record_id)
        return True

    def committed(self) -> None:
        for record_id in self._pending:
            self.remember(record_id)
        self._pending.clear()

    def aborted(self) -> None:
        self._pending.clear()
