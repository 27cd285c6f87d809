from __future__ import annotations

from common.config import KafkaSettings
from ingest.rdkafka import rdkafka_config


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
