"""Undo for the board's state: every change a batch makes is journalled, so when its
transaction rolls back the state returns to what the last commit left (the batch's
records are read and applied again). Follows the pipe's batches (`BatchHooks`)."""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from typing import Any, Final

_MISSING: Final = object()
Change = tuple[MutableMapping[Any, Any], Any, Any]  # (mapping, key, value before)


class Journal:
    def __init__(self) -> None:
        self._batches: deque[list[Change]] = deque()

    def put(self, mapping: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        if self._batches:
            self._batches[-1].append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def pop(self, mapping: MutableMapping[Any, Any], key: Any) -> Any:
        value = mapping.pop(key, None)
        if self._batches and value is not None:
            self._batches[-1].append((mapping, key, value))
        return value

    def started(self) -> None:
        self._batches.append([])

    def committed(self) -> None:
        if self._batches:
            self._batches.popleft()

    def aborted(self) -> None:
        while self._batches:
            for mapping, key, before in reversed(self._batches.pop()):
                if before is _MISSING:
                    mapping.pop(key, None)
                else:
                    mapping[key] = before
