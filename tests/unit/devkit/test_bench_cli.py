from __future__ import annotations

from devkit.bench_cli import YOUNG_BROKER_SECONDS, wait_for_deletions, young_broker_note


def test_a_young_broker_is_named_with_its_age_and_the_wait_left() -> None:
    note = young_broker_note(45.2)
    assert note is not None
    assert "started 45 s ago" in note
    assert f"after {YOUNG_BROKER_SECONDS - 45.2:.0f} s" in note


def test_no_word_for_a_broker_past_its_warm_up_or_one_the_stack_does_not_run() -> None:
    assert young_broker_note(YOUNG_BROKER_SECONDS) is None
    assert young_broker_note(3600.0) is None
    assert young_broker_note(None) is None


def test_a_bench_waits_until_the_broker_has_removed_deleted_topics_and_says_so() -> None:
    counts = iter([372, 372, 117, 0])
    asked: list[int] = []

    def pending() -> int:
        asked.append(next(counts))
        return asked[-1]

    note = wait_for_deletions(pending, limit=10, pause=0)
    assert asked == [372, 372, 117, 0], "asked until none was left"
    assert note is not None
    assert "remove 372 partition logs" in note


def test_no_wait_and_no_word_when_nothing_is_being_deleted() -> None:
    asked: list[int] = []

    def pending() -> int:
        asked.append(0)
        return 0

    assert wait_for_deletions(pending, limit=10, pause=0) is None
    assert asked == [0]


def test_the_wait_ends_at_its_limit_and_says_what_was_left() -> None:
    note = wait_for_deletions(lambda: 5, limit=0.05, pause=0.01)
    assert note is not None
    assert "still had 5 partition logs" in note
