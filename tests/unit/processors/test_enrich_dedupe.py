"""The deduper's memory: per input partition, bounded, published only on commit."""

from __future__ import annotations

from processors.enrich.dedupe import Deduper, compact

P0, P1 = ("callstream.cdr.raw", 0), ("callstream.cdr.raw", 1)


def test_an_id_is_admitted_once_and_a_rolled_back_batch_forgets_it() -> None:
    dedupe = Deduper(per_partition=3)
    assert dedupe.admit(P0, "a")
    assert not dedupe.admit(P0, "a"), "twice in one batch"
    dedupe.aborted()
    assert dedupe.admit(P0, "a"), "a rolled-back batch did not publish it"
    dedupe.committed()
    assert not dedupe.admit(P0, "a")


def test_each_partition_is_bounded_on_its_own() -> None:
    dedupe = Deduper(per_partition=3)
    for record_id in "abcd":
        dedupe.remember(P0, record_id)
    dedupe.remember(P1, "x")
    assert len(dedupe) == 4, "three in partition 0, one in partition 1"
    assert dedupe.admit(P0, "a"), "the oldest id of partition 0 was evicted"
    assert not dedupe.admit(P0, "d")
    assert not dedupe.admit(P1, "x")


def test_partitions_given_away_are_forgotten() -> None:
    dedupe = Deduper()
    dedupe.remember(P0, "a")
    dedupe.remember(P1, "b")
    dedupe.keep_only([P1])
    assert dedupe.partitions() == {P1}
    assert dedupe.admit(P0, "a")
    assert not dedupe.admit(P1, "b")


def test_ids_read_back_are_loaded_oldest_first_within_the_bound() -> None:
    dedupe = Deduper(per_partition=3)
    dedupe.load(P0, {compact(i): None for i in "abcd"})
    assert len(dedupe) == 3
    assert dedupe.admit(P0, "a"), "the oldest beyond the bound"
    dedupe.load(P0, {compact("e"): None})
    assert not dedupe.admit(P0, "e")
    assert dedupe.admit(P0, "b"), "pushed out by e"


def test_record_ids_are_kept_compactly_and_other_ids_as_they_are() -> None:
    record_id = "0123456789abcdef0123456789abcdef"
    assert compact(record_id) == int(record_id, 16)
    assert compact(record_id.upper()) == record_id.upper(), "only enrich's own form"
    assert compact("ab") == "ab"
    dedupe = Deduper()
    dedupe.remember(P0, record_id)
    assert not dedupe.admit(P0, record_id)
