"""`callstream run` for a few seconds, on the session's Kafka and S3: nothing lost,
recordings archived."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tests.integration.conftest import TopicSetFactory
from tests.support.processes import run_callstream
from tests.support.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def test_a_short_run_settles_with_nothing_lost(
    services: Services,
    topic_set: TopicSetFactory,
    s3_client: S3Client,
    s3_prefix: str,
    tmp_path: Path,
) -> None:
    suffix, _ = await topic_set()
    env = {
        **services.env(s3_prefix),  # the session's Kafka and S3, whichever they are
        "CALLSTREAM_TOPIC_SUFFIX": suffix,
        "CALLSTREAM_RUN_DIR": str(tmp_path),
        **{
            f"CALLSTREAM_{s}_GROUP": f"{s.lower()}-{suffix}"
            for s in ("ENRICH", "RECORDINGS", "LAKE")
        },
    }
    args = ["--services-from-env", "--duration", "8", "--rate", "4"]
    done = run_callstream("run", *args, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = dict(re.findall(r"^  ([a-z ()2x]+?)\s{2,}(\d+)$", done.stdout, re.MULTILINE))
    assert int(figures["callbacks accepted (2xx)"]) > 20
    assert figures["accepted but not enriched"] == "0"
    assert int(figures["recordings archived"]) == int(figures["answered calls"]) > 0
    assert "result: OK, nothing lost" in done.stdout
    assert re.search(r"the live board is at http://127\.0\.0\.1:\d+/", done.stdout)
    assert re.search(r"exit codes: .*board 0", done.stdout), "the board ran and stopped cleanly"
    [summary] = tmp_path.glob("*/summary.txt")
    assert "OK, nothing lost" in summary.read_text()
