"""`replay reset`: move a consumer group's offsets to the first record at or after a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from common.config import KafkaSettings
from common.kafka import commit_within, kafka_admin, partitions_of, stop_consumer


class GroupBusyError(RuntimeError):
    """The group has live members; they would overwrite the reset with their own commits."""

    retriable = True


@dataclass(frozen=True, slots=True)
class Move:
    partition: TopicPartition
    current: int | None  # None: the group had committed nothing there
    target: int


async def live_members(admin: AIOKafkaAdminClient, group: str) -> list[str]:
    [response] = await admin.describe_consumer_groups([group])
    _error, _group, state, *_rest, members = response.groups[0][:6]
    return [] if state in {"Empty", "Dead"} else [m[0] for m in members]


async def plan_reset(
    kafka: KafkaSettings, group: str, topics: list[str], to_ms: int, *, force: bool = False
) -> list[Move]:
    async with kafka_admin(kafka) as admin:
        refuse_busy(group, await live_members(admin, group), force=force)
        committed = await admin.list_consumer_group_offsets(group)
    names = topics or sorted({tp.topic for tp in committed})
    if not names:
        raise ValueError(f"group {group} has committed nothing; name the topics with --topic")
    tps = await partitions_of(kafka, names)
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None)
    try:
        await consumer.start()
        found = await consumer.offsets_for_times(dict.fromkeys(tps, to_ms))
        ends = await consumer.end_offsets(tps)
    finally:
        await stop_consumer(consumer)
    now = {tp: meta.offset for tp, meta in committed.items()}
    return moves(tps, now, {tp: f.offset for tp, f in found.items() if f is not None}, ends)


def refuse_busy(group: str, members: list[str], *, force: bool) -> None:
    if members and not force:
        raise GroupBusyError(
            f"group {group} has {len(members)} live member(s); stop them first "
            "(or --force, which the broker may still refuse)"
        )


def moves(
    tps: list[TopicPartition],
    committed: Mapping[TopicPartition, int],
    found: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
) -> list[Move]:
    """Each partition's move: to the first offset at or after the time (`found`), or to
    its end when nothing is that recent."""
    return [Move(tp, committed.get(tp), found.get(tp, ends[tp])) for tp in tps]


async def apply_reset(kafka: KafkaSettings, group: str, moves: list[Move]) -> None:
    """Commits the targets as the group (a member-less commit, as Kafka's own tool does);
    CommitTimedOut when Kafka does not take it in time (running it again is safe)."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=group, enable_auto_commit=False)
    try:
        await consumer.start()
        consumer.assign([m.partition for m in moves])
        await commit_within(consumer, {m.partition: m.target for m in moves})
    finally:
        await stop_consumer(consumer)
