"""JSON log lines (one object per line, orjson), set up once by an entry point."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}
# The Kafka clients log each failed reconnection, and they try again every few tens of
# milliseconds while the brokers are down: thousands of identical lines a minute.
KAFKA_CLIENT_LOGGERS: Final = ("librdkafka", "aiokafka")
REPEAT_WINDOW: Final = 10.0  # seconds an identical line from them is held back for


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


@dataclass(slots=True)
class _Seen:
    since: float  # when the line was last let through
    held: int = 0  # identical lines held back since


class Repeats(logging.Filter):
    """Lets a line from the named loggers (and their children) through once per `window`
    seconds; the next one let through carries `repeated`, how many were held back.

    Any thread may log (librdkafka's lines come from whichever thread polls), hence the
    lock; the lines remembered are bounded by `capacity`, the oldest forgotten first."""

    def __init__(
        self,
        names: tuple[str, ...],
        window: float,
        capacity: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = tuple(f"{name}." for name in names)  # "aiokafka." matches children
        self._window = window
        self._capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[tuple[str, int, str], _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not f"{record.name}.".startswith(self._prefixes):
            return True
        line = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._lock:
            seen = self._seen.get(line)
            if seen is not None and now - seen.since < self._window:
                seen.held += 1
                return False
            self._seen[line] = _Seen(now)
            self._seen.move_to_end(line)
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        if seen is not None and seen.held:
            record.repeated = seen.held
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(Repeats(KAFKA_CLIENT_LOGGERS, REPEAT_WINDOW))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
