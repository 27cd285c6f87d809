"""The one backoff helper: delays double up to a ceiling, jittered, and start over after
a success; `until_done` tries again on the errors it is told of, and only on those."""

from __future__ import annotations

import pytest

from common.retry import Backoff, until_done


def test_delays_double_to_the_ceiling_within_the_jitter_and_reset() -> None:
    backoff = Backoff(first=1.0, most=5.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [1, 2, 4, 5, 5, 5], strict=True):
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    backoff.reset()
    assert backoff.next() <= 1.2


async def test_until_done_retries_the_named_errors_only() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "up"

    fast = Backoff(first=0.001, most=0.002)
    assert await until_done(flaky, "flaky", retry_on=(ConnectionError,), backoff=fast) == "up"
    assert len(calls) == 3

    async def broken() -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await until_done(broken, "broken", retry_on=(ConnectionError,), backoff=fast)
