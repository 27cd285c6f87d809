"""`callstream run`, the local demo, for a few seconds: nothing lost, recordings archived."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import TopicSetFactory
from tests.support.processes import run_callstream
from tests.support.services import Services


async def test_a_short_run_settles_with_nothing_lost(
    services: Services, topic_set: TopicSetFactory, tmp_path: Path
) -> None:
    if services.source != "local stack":
        pytest.skip("`callstream run` is the local-stack demo; these tests use other services")
    suffix, _ = await topic_set()
    env = {
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_RUN_DIR": str(tmp_path),
        **{
            f"CALLSTREAM_{s}_GROUP": f"{s.lower()}-{suffix}"
            for s in ("ENRICH", "RECORDINGS", "LAKE")
        },
    }
    done = run_callstream("run", "--duration", "8", "--rate", "4", env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = dict(re.findall(r"^  ([a-z ()2x]+?)\s{2,}(\d+)$", done.stdout, re.MULTILINE))
    assert int(figures["callbacks accepted (2xx)"]) > 20
    assert figures["accepted but not enriched"] == "0"
    assert int(figures["recordings archived"]) == int(figures["answered calls"]) > 0
    assert "result: OK, nothing lost" in done.stdout
    [summary] = tmp_path.glob("*/summary.txt")
    assert "OK, nothing lost" in summary.read_text()
