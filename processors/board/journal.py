"""Undo for the board's state: every change a batch makes is journalled, so when its
transaction rolls back the state returns to what the last commit left (the batch's
records are read and applied again). Follows the pipe's batches (`BatchHooks`)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any, Final

_MISSING: Final = object()
Undo = Callable[[], None]


class Journal:
    def __init__(self) -> None:
        self._batches: deque[list[Undo]] = deque()

    def _record(self, undo: Undo) -> None:
        if self._batches:  # outside a batch (a rebuild) nothing is undone
            self._batches[-1].append(undo)

    def put(self, mapping: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        before = mapping.get(key, _MISSING)
        self._record(lambda: _restore(mapping, key, before))
        mapping[key] = value

    def pop(self, mapping: MutableMapping[Any, Any], key: Any) -> Any:
        before = mapping.pop(key, _MISSING)
        self._record(lambda: _restore(mapping, key, before))
        return None if before is _MISSING else before

    def heappop(self, heap: list[Any]) -> Any:
        # A push needs no undo: an entry left behind is found stale when it comes up.
        item = heapq.heappop(heap)
        self._record(lambda: heapq.heappush(heap, item))
        return item

    def started(self) -> None:
        self._batches.append([])

    def committed(self) -> None:
        if self._batches:
            self._batches.popleft()

    def aborted(self) -> None:
        while self._batches:
            for undo in reversed(self._batches.pop()):
                undo()


def _restore(mapping: MutableMapping[Any, Any], key: Any, before: Any) -> None:
    if before is _MISSING:
        mapping.pop(key, None)
    else:
        mapping[key] = before
