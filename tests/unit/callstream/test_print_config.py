"""`callstream <service> --print-config` for each long-running service: the effective
settings from the environment, secrets masked, and nothing started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.sim import TENANTS_TOML


@pytest.mark.parametrize(
    ("service", "own"),
    [
        ("ingest", {"CALLSTREAM_INGEST_PORT": "8111"}),
        ("enrich", {"CALLSTREAM_ENRICH_DEDUPE_HOURS": "3", "CALLSTREAM_INSTANCE": "e-7"}),
        ("recordings", {"CALLSTREAM_RECORDINGS_MAX_BYTES": "1024"}),
        ("lake", {"CALLSTREAM_LAKE_FLUSH_SECONDS": "5"}),
        ("board", {"CALLSTREAM_BOARD_LATENESS_SECONDS": "30"}),
    ],
)
def test_print_config_shows_the_effective_settings_with_secrets_masked(
    tmp_path: Path, service: str, own: dict[str, str]
) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS_TOML)
    env = {
        **os.environ,
        "CALLSTREAM_KAFKA_BOOTSTRAP": "kafka.invalid:9092",  # nothing may connect to it
        "CALLSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
        "CALLSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CALLSTREAM_KAFKA_SASL_PASSWORD": "kafka-secret",
        "CALLSTREAM_S3_BUCKET": "b",
        "CALLSTREAM_S3_SECRET_ACCESS_KEY": "s3-secret",
        "CALLSTREAM_TENANTS": str(tenants),
        **own,
    }
    done = subprocess.run(
        [sys.executable, "-m", "callstream", service, "--print-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "kafka-secret" not in done.stdout
    assert "s3-secret" not in done.stdout
    printed = json.loads(done.stdout)
    assert printed["KafkaSettings"]["sasl_password"] == "***"
    assert printed["KafkaSettings"]["bootstrap"] == "kafka.invalid:9092"
    assert printed["RunnerSettings"]["stop_deadline"] == 0.0
    shared = {"KafkaSettings", "S3Settings", "RunnerSettings"}
    [own_settings] = [v for k, v in printed.items() if k not in shared]
    expected = {
        "ingest": ("port", 8111),
        "enrich": ("dedupe_window_hours", 3.0),
        "recordings": ("max_recording_bytes", 1024),
        "lake": ("flush_seconds", 5.0),
        "board": ("lateness_seconds", 30.0),
    }[service]
    assert own_settings[expected[0]] == expected[1]
    if service == "enrich":
        assert own_settings["instance"] == "e-7"
    if "S3Settings" in printed:
        assert printed["S3Settings"]["secret_access_key"] == "***"


def test_a_malformed_setting_is_exit_2_naming_the_variable() -> None:
    env = {
        **os.environ,
        "CALLSTREAM_KAFKA_BOOTSTRAP": "k:9092",
        "CALLSTREAM_ENRICH_DEDUPE_HOURS": "day",
    }
    done = subprocess.run(
        [sys.executable, "-m", "callstream", "enrich", "--print-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "CALLSTREAM_ENRICH_DEDUPE_HOURS='day'" in done.stderr
