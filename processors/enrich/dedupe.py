"""Remembers which records were published, per input partition, so a callback the platform
(or the receiver's spool) delivered twice is published once. A duplicate has the same call
uuid, hence the same key and the same partition, so each partition's memory is loaded
when it is assigned (`processors.enrich.recent`) and bounded in count.

Entries become "seen" only when their batch's transaction commits; rolled-back batches
forget theirs. Batches are started, and commit, in order; more than one may be pending
(one transforming while another commits)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from processors.consumer import TopicPartition

Key = int | str
_HEX = frozenset("0123456789abcdef")


def compact(record_id: str) -> Key:
    """enrich's record ids (32 lowercase hex digits) as 128-bit ints, which take half the
    memory of the string; any other id as it is."""
    if len(record_id) == 32 and _HEX.issuperset(record_id):
        return int(record_id, 16)
    return record_id


class Deduper:
    def __init__(self, per_partition: int = 100_000) -> None:
        # insertion-ordered: the oldest id of a partition comes first
        self._seen: dict[TopicPartition, dict[Key, None]] = {}
        self._pending: set[Key] = set()  # admitted by batches not committed yet
        self._batches: deque[list[tuple[TopicPartition, Key]]] = deque()  # oldest first
        self.per_partition = per_partition

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._seen.values())

    def partitions(self) -> set[TopicPartition]:
        return set(self._seen)

    def keep_only(self, tps: Iterable[TopicPartition]) -> None:
        """Forget the partitions not in `tps` (given to another replica)."""
        keep = set(tps)
        for tp in list(self._seen):
            if tp not in keep:
                del self._seen[tp]

    def remember(self, tp: TopicPartition, record_id: str) -> None:
        """Mark as published."""
        self._remember(tp, compact(record_id))

    def load(self, tp: TopicPartition, ids: dict[Key, None]) -> None:
        """Mark as published what was read back from the output (`compact` ids, oldest
        first); a partition new to us takes `ids` as its memory."""
        seen = self._seen.get(tp)
        if seen is None:
            self._seen[tp] = seen = ids
        else:
            seen.update(ids)
        for _ in range(len(seen) - self.per_partition):
            del seen[next(iter(seen))]

    def _remember(self, tp: TopicPartition, key: Key) -> None:
        seen = self._seen.setdefault(tp, {})
        if key in seen:
            return
        seen[key] = None
        if len(seen) > self.per_partition:
            del seen[next(iter(seen))]

    def started(self) -> None:
        """A batch begins: what `admit` takes from now on is its."""
        self._batches.append([])

    def admit(self, tp: TopicPartition, record_id: str) -> bool:
        """True the first time a record id is offered; False for a duplicate."""
        key = compact(record_id)
        if key in self._pending or key in self._seen.get(tp, ()):
            return False
        if not self._batches:
            self.started()
        self._pending.add(key)
        self._batches[-1].append((tp, key))
        return True

    def committed(self) -> None:
        """The oldest pending batch committed: its ids are published."""
        if not self._batches:
            return
        for tp, key in self._batches.popleft():
            self._pending.discard(key)
            self._remember(tp, key)

    def aborted(self) -> None:
        """Every pending batch is dropped (they will be read and offered again)."""
        self._pending.clear()
        self._batches.clear()
