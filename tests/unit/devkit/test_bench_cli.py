from __future__ import annotations

from devkit.bench_cli import YOUNG_BROKER_SECONDS, young_broker_note


def test_a_young_broker_is_named_with_its_age_and_the_wait_left() -> None:
    note = young_broker_note(45.2)
    assert note is not None
    assert "started 45 s ago" in note
    assert f"after {YOUNG_BROKER_SECONDS - 45.2:.0f} s" in note


def test_no_word_for_a_broker_past_its_warm_up_or_one_the_stack_does_not_run() -> None:
    assert young_broker_note(YOUNG_BROKER_SECONDS) is None
    assert young_broker_note(3600.0) is None
    assert young_broker_note(None) is None
