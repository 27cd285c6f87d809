from __future__ import annotations

import pytest

from common.config import ConfigError, KafkaSettings, S3Settings


def test_kafka_bootstrap_is_required() -> None:
    with pytest.raises(ConfigError, match="CALLSTREAM_KAFKA_BOOTSTRAP"):
        KafkaSettings.from_env({})


def test_plaintext_kafka_needs_only_the_bootstrap() -> None:
    settings = KafkaSettings.from_env({"CALLSTREAM_KAFKA_BOOTSTRAP": "k1:9092,k2:9092"})
    assert settings.client_kwargs() == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_settings_reach_the_client_and_the_password_stays_out_of_repr() -> None:
    settings = KafkaSettings.from_env(
        {
            "CALLSTREAM_KAFKA_BOOTSTRAP": "k:9093",
            "CALLSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "CALLSTREAM_KAFKA_SASL_MECHANISM": "scram-sha-512",
            "CALLSTREAM_KAFKA_SASL_USERNAME": "svc",
            "CALLSTREAM_KAFKA_SASL_PASSWORD": "hunter2-secret",
        }
    )
    kwargs = settings.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc"
    assert kwargs["sasl_plain_password"] == "hunter2-secret"
    assert kwargs["ssl_context"] is not None
    assert "hunter2-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [("CALLSTREAM_KAFKA_SECURITY_PROTOCOL", "TLS"), ("CALLSTREAM_KAFKA_SASL_MECHANISM", "GSSAPI")],
)
def test_unknown_security_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        KafkaSettings.from_env({"CALLSTREAM_KAFKA_BOOTSTRAP": "k:9092", name: value})


def test_s3_settings_keep_the_secret_out_of_repr() -> None:
    settings = S3Settings.from_env(
        {
            "CALLSTREAM_S3_BUCKET": "calls",
            "CALLSTREAM_S3_ENDPOINT": "http://127.0.0.1:8333",
            "CALLSTREAM_S3_SECRET_ACCESS_KEY": "very-secret-key",
        }
    )
    assert settings.bucket == "calls"
    assert settings.endpoint == "http://127.0.0.1:8333"
    assert "very-secret-key" not in repr(settings)
    with pytest.raises(ConfigError, match="CALLSTREAM_S3_BUCKET"):
        S3Settings.from_env({})
