from __future__ import annotations

import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from common import asyncapi
from common.schemas import render, topic_schemas
from common.topics import Topics
from yunhu.sim.traffic import callbacks, plan_call

TZ = ZoneInfo("Asia/Shanghai")

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "yunhu" / "examples"


@pytest.mark.parametrize("topic", sorted(topic_schemas()))
def test_the_committed_schema_matches_the_code(topic: str) -> None:
    committed = (ROOT / "docs" / "schemas" / f"{topic}.schema.json").read_bytes()
    assert committed == render(topic_schemas()[topic]), "run: python -m common.schemas"


@pytest.mark.parametrize("topic", sorted(topic_schemas()))
def test_every_schema_is_valid_json_schema(topic: str) -> None:
    jsonschema.Draft202012Validator.check_schema(topic_schemas()[topic])


def _simulated(kind: str, seed: int) -> list[bytes]:
    plan = plan_call(random.Random(seed), "9024", seed, 1_790_000_000)
    return [c.body for c in callbacks(plan, TZ) if c.kind == kind]


def test_the_documents_callstate_example_fits_the_raw_schema() -> None:
    body = json.loads((EXAMPLES / "callstate.json").read_bytes())
    jsonschema.validate(body, topic_schemas()["callstream.callstate.raw"])


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("kind", ["callstate", "cdr"])
def test_simulated_callbacks_fit_the_raw_schemas(kind: str, seed: int) -> None:
    for body in _simulated(kind, seed):
        jsonschema.validate(json.loads(body), topic_schemas()[f"callstream.{kind}.raw"])


def test_a_raw_callback_without_its_uuid_does_not_fit() -> None:
    [cdr] = _simulated("cdr", 1)
    body = json.loads(cdr)
    del body["uuid"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, topic_schemas()["callstream.cdr.raw"])


def test_the_committed_asyncapi_document_is_current_and_names_every_topic() -> None:
    committed = (ROOT / "docs" / "asyncapi.json").read_bytes()
    assert committed == asyncapi.render(), "run: python -m common.asyncapi > docs/asyncapi.json"
    doc = json.loads(committed)
    assert {c["address"] for c in doc["channels"].values()} == set(Topics().all())
    for message in doc["components"]["messages"].values():
        ref = message["payload"].get("$ref")
        if ref:
            assert (ROOT / "docs" / ref).exists(), ref
