"""Every callstream topic with its partitions, replication, retention and cleanup policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from common.kafka import TopicSpec
from common.settings import load
from common.topics import Topics

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """`CALLSTREAM_TOPIC_{FIELD}`, read once by the entry point."""

    partitions: int = 6
    replication: int = 1  # 3 on a production cluster
    raw_retention_hours: int = 7 * 24
    record_retention_hours: int = 30 * 24
    recordings_retention_hours: int = 90 * 24
    deadletter_retention_hours: int = 30 * 24

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TopicSettings:
        return load(cls, env, "CALLSTREAM_TOPIC_")


def topic_specs(topics: Topics, settings: TopicSettings) -> list[TopicSpec]:
    """What `callstream topics create` makes and `verify` checks, one spec per topic."""
    retention = {
        topics.callstate_raw: settings.raw_retention_hours,
        topics.cdr_raw: settings.raw_retention_hours,
        topics.deadletter: settings.deadletter_retention_hours,
        topics.callstate: settings.record_retention_hours,
        topics.cdr: settings.record_retention_hours,
        topics.recordings: settings.recordings_retention_hours,
        topics.recordings_retry: settings.raw_retention_hours,
        topics.anomalies: settings.record_retention_hours,
    }
    # Keyed upserts (an extension's state, a minute's metrics): the latest per key is kept.
    compacted = [topics.extensions, topics.metrics_minute]
    min_insync = ("min.insync.replicas", str(min(2, settings.replication)))
    deleted = [
        TopicSpec(
            name,
            settings.partitions,
            settings.replication,
            (("cleanup.policy", "delete"), ("retention.ms", str(hours * HOUR_MS)), min_insync),
        )
        for name, hours in retention.items()
    ]
    kept = [
        TopicSpec(
            name,
            settings.partitions,
            settings.replication,
            (("cleanup.policy", "compact"), min_insync),
        )
        for name in compacted
    ]
    return deleted + kept


async def verify_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """What differs between the cluster and `specs`, one line each (empty: all as specified)."""
    existing = set(await admin.list_topics())
    problems = [f"{s.name}: missing" for s in specs if s.name not in existing]
    present = [s for s in specs if s.name in existing]
    if not present:
        return problems
    described = {d["topic"]: d for d in await admin.describe_topics([s.name for s in present])}
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in present]
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            entries = resource["config_entries"]
            configs[resource["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in entries
            }
    for spec in present:
        partitions = described[spec.name]["partitions"]
        if len(partitions) != spec.partitions:
            problems.append(f"{spec.name}: {len(partitions)} partitions, want {spec.partitions}")
        replicas = min(len(p["replicas"]) for p in partitions)
        if replicas != spec.replication:
            problems.append(f"{spec.name}: replication {replicas}, want {spec.replication}")
        actual = configs.get(spec.name, {})
        problems += [
            f"{spec.name}: {key}={actual.get(key)!r}, want {value!r}"
            for key, value in spec.config
            if actual.get(key) != value
        ]
    return problems
