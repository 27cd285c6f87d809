from __future__ import annotations

import json
from pathlib import Path

import pytest

from callstream.cli import main
from common.schemas import render, topic_schemas


def test_callstream_topics_schemas_prints_them_as_one_json_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["topics", "schemas"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(render(topic_schemas()))
    assert main(["topics", "schemas", "--topic", "callstream.cdr"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "call record"
    assert main(["topics", "schemas", "--write", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.schema.json"))) == len(topic_schemas())
