"""The TIME arguments of `callstream replay`: ISO-8601, epoch milliseconds, or relative."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class TimeError(ValueError):
    pass


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`2026-11-26T10:00:00Z`, `2026-11-26 18:00+08:00` (no zone: UTC), `1795700000000`
    (epoch ms), `now`, or `-90m` / `-2h` / `-1d` before now. Always returns UTC."""
    now = now or dt.datetime.now(dt.UTC)
    text = text.strip()
    if text == "now":
        return now
    if (relative := _RELATIVE.match(text)) is not None:
        return now - dt.timedelta(seconds=float(relative.group(1)) * _UNIT[relative.group(2)])
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimeError(f"{text!r} is not a time (ISO-8601, epoch ms, now, -2h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise TimeError(f"the window ends ({self.end}) before it starts ({self.start})")

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        return epoch_ms(self.end)

    def holds(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms < self.end_ms
