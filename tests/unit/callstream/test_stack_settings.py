from __future__ import annotations

from pathlib import Path

import pytest

from callstream.dev.stack import StackSettings


def test_defaults_bind_loopback_with_the_usual_ports() -> None:
    settings = StackSettings.from_env({})
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.s3_endpoint == "http://127.0.0.1:8333"
    assert settings.root.name == ".stack"


def test_ports_and_folder_come_from_the_environment(tmp_path: Path) -> None:
    settings = StackSettings.from_env(
        {
            "CALLSTREAM_STACK_DIR": str(tmp_path),
            "CALLSTREAM_STACK_KAFKA_PORT": "19092",
            "CALLSTREAM_STACK_S3_PORT": "18333",
            "CALLSTREAM_STACK_SEAWEED_PORT_BASE": "30000",
        }
    )
    assert settings.root == tmp_path
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.s3_endpoint == "http://127.0.0.1:18333"
    assert settings.seaweed_ports == {
        "master": 30333,
        "volume": 30080,
        "filer": 30888,
        "admin": 30646,
    }


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_bad_port_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="CALLSTREAM_STACK_KAFKA_PORT"):
        StackSettings.from_env({"CALLSTREAM_STACK_KAFKA_PORT": value})


def test_env_exports_point_clients_at_the_stack() -> None:
    exports = StackSettings.from_env({"CALLSTREAM_STACK_KAFKA_PORT": "19092"}).env_exports()
    assert exports["CALLSTREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
    assert exports["CALLSTREAM_S3_ENDPOINT"] == "http://127.0.0.1:8333"
    assert exports["CALLSTREAM_S3_BUCKET"] == "callstream"


def test_cluster_ids_never_look_like_options() -> None:
    from callstream.dev.stack.kafka import _cluster_id  # noqa: PLC0415

    ids = {_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
