from __future__ import annotations

import datetime as dt
import io

import pytest

from processors.lake.buffer import LakeBuffer
from processors.replay.lake import LakeStore, keys_in_window, replay_lake
from processors.replay.progress import Progress
from processors.replay.publish import REPLAY, Republisher, replay_headers
from processors.replay.times import TimeError, Window, parse_time
from tests.unit.processors.test_lake_lines import TS, Rec

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T10:00:00Z", dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)),
        ("2026-11-26 18:00+08:00", dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)),
        ("2026-11-26T10:00", dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)),
        ("1795687200000", dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)),
        ("now", NOW),
        ("-90m", NOW - dt.timedelta(minutes=90)),
        ("-2h", NOW - dt.timedelta(hours=2)),
        ("-1d", NOW - dt.timedelta(days=1)),
    ],
)
def test_times(text: str, expected: dt.datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_bad_times_and_windows_are_refused() -> None:
    with pytest.raises(TimeError):
        parse_time("yesterday-ish", NOW)
    with pytest.raises(TimeError):
        Window(NOW, NOW)


def test_replay_headers_replace_earlier_replay_and_dead_letter_headers() -> None:
    first = replay_headers([("tenant", b"1"), ("dlq-reason", b"x")], "deadletter", "dl/0/5")
    second = dict(replay_headers(first, "window", "t/1/2"))
    assert second["tenant"] == b"1"
    assert second[REPLAY] == b"window"
    assert "dlq-reason" not in second
    assert len(replay_headers(first, "window", "t/1/2")) == len(first)


async def test_a_lake_replay_skips_other_hours_the_window_and_overlapping_copies() -> None:
    buffer = LakeBuffer("")
    for offset in range(5):
        buffer.add(Rec(b'{"n":%d}' % offset, offset=offset, timestamp=TS - 4000 + offset * 1000))
    first_run, _ = buffer.take()
    buffer.add(Rec(b'{"n":3}', offset=3, timestamp=TS - 1000))  # a re-run's overlapping copy
    buffer.add(Rec(b'{"n":5}', offset=5, timestamp=TS + 1000))  # the next hour
    second_run, _ = buffer.take()
    objects = {o.key: o.body() for o in [*first_run, *second_run]}
    assert len(objects) == 3
    store = LakeStore(
        lambda prefix: [k for k in objects if k.startswith(prefix)],
        lambda prefix: sorted(
            {k[len(prefix) :].split("/")[0] for k in objects if k.startswith(prefix)}
        ),
        objects.get,  # type: ignore[arg-type]
    )
    window = Window(
        dt.datetime.fromtimestamp((TS - 3000) / 1000, tz=dt.UTC),
        dt.datetime.fromtimestamp((TS + 1) / 1000, tz=dt.UTC),
    )
    assert len(keys_in_window(store, "callstream.cdr.raw", "9024", window)) == 2  # not hour 14
    progress = Progress("t", out=io.StringIO())
    sent = await replay_lake(
        store,
        "callstream.cdr.raw",
        window,
        tenant=None,
        publisher=Republisher(None),
        progress=progress,
    )
    assert sent == 4  # offsets 1..4, each once
    assert progress.counts["duplicates"] == 1
