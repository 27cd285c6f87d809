from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from common.config import KafkaSettings
from ingest.durable import PublishError
from ingest.rdkafka import RdkafkaProducer, rdkafka_config


def test_the_producer_is_idempotent_acks_all_and_places_keys_as_the_java_client() -> None:
    config = rdkafka_config(KafkaSettings("k1:9092,k2:9092"), ack_timeout=5.0, linger_ms=2.0)
    assert config["bootstrap.servers"] == "k1:9092,k2:9092"
    assert (config["enable.idempotence"], config["acks"]) == (True, "all")
    assert config["partitioner"] == "murmur2_random"
    assert config["linger.ms"] == 2.0
    assert config["message.timeout.ms"] >= 30_000
    assert "sasl.mechanism" not in config


def test_sasl_and_tls_settings_carry_over() -> None:
    settings = KafkaSettings(
        "k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",  # noqa: S106 - a test value
        ssl_cafile="/ca.pem",
    )
    config = rdkafka_config(settings, ack_timeout=5.0, linger_ms=2.0)
    assert config["security.protocol"] == "SASL_SSL"
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
        "SCRAM-SHA-512",
        "u",
        "p",
    )
    assert config["ssl.ca.location"] == "/ca.pem"


class FakeRdkafka:
    """librdkafka's producer as the receiver uses it: reports are served by `poll`."""

    def __init__(self, config: dict[str, Any], fail_with: KafkaError | None = None) -> None:
        self.fail_with = fail_with
        self.reports: list[Callable[[], None]] = []
        self.produced: list[bytes] = []
        self.purged = False

    def produce(
        self, topic: str, value: bytes, key: bytes | None, *, headers: Any, on_delivery: Any
    ) -> None:
        self.produced.append(value)
        self.reports.append(lambda: on_delivery(self.fail_with, None))

    def list_topics(self, timeout: float) -> None:
        return None

    def poll(self, timeout: float) -> int:
        if not self.reports:
            time.sleep(min(timeout, 0.01))  # librdkafka waits for an event
        served, self.reports = self.reports, []
        for report in served:
            report()
        return len(served)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self.reports)

    def purge(self) -> None:
        self.purged = True

    def __len__(self) -> int:
        return len(self.reports)


async def test_after_a_fatal_error_the_next_send_uses_a_new_producer() -> None:
    built: list[FakeRdkafka] = []

    def factory(config: dict[str, Any]) -> Any:
        fatal = KafkaError(KafkaError._FATAL, "sequence lost", fatal=True)
        built.append(FakeRdkafka(config, fail_with=fatal if not built else None))
        return built[-1]

    producer = RdkafkaProducer({"bootstrap.servers": "k:9092"}, factory=factory)
    await producer.start(wait=1)
    with pytest.raises(PublishError) as failed:
        await asyncio.wait_for(producer.send("raw", b"first"), 1)
    assert failed.value.retriable is False
    await asyncio.wait_for(producer.send("raw", b"second"), 1)  # acknowledged
    assert [p.produced for p in built] == [[b"first"], [b"second"]]
    assert built[0].purged
    await producer.stop(within=1)


async def test_a_retriable_delivery_error_keeps_the_producer() -> None:
    built: list[FakeRdkafka] = []

    def factory(config: dict[str, Any]) -> Any:
        timed_out = KafkaError(KafkaError._MSG_TIMED_OUT, "timed out", retriable=True)
        built.append(FakeRdkafka(config, fail_with=timed_out))
        return built[-1]

    producer = RdkafkaProducer({}, factory=factory)
    await producer.start(wait=1)
    for value in [b"a", b"b"]:
        with pytest.raises(PublishError) as failed:
            await asyncio.wait_for(producer.send("raw", value), 1)
        assert failed.value.retriable is True
    assert len(built) == 1
    await producer.stop(within=1)
