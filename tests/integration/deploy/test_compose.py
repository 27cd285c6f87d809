"""deploy/compose.yaml, run: `callstream image compose` builds its images here and brings
the whole pipeline up as a user's `docker compose up` does, then stops it."""

from __future__ import annotations

import re

import pytest

from tests.support.processes import run_callstream


# Building the images and bringing eight services up takes most of the suite's default
# 300 s on a slow machine: the run's own budget (900 s) is the one that applies.
@pytest.mark.timeout(900)
def test_compose_brings_every_service_up_passes_traffic_and_stops_cleanly() -> None:
    done = run_callstream("image", "compose", env={}, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    healthy = "board, enrich, ingest, kafka, lake, recordings, s3, sim"
    assert f"compose: 8 services healthy ({healthy})" in out
    assert "ingest on :8000 ready, publishing to Kafka directly" in out
    for service, topic in (("enrich", "callstream.cdr"), ("recordings", "callstream.recordings")):
        wrote = re.search(rf"compose: {service} wrote (\d+) records .*{re.escape(topic)}", out)
        assert wrote is not None, out
        assert int(wrote.group(1)) > 0, out
    assert "exit codes board 0, enrich 0, ingest 0, lake 0, recordings 0" in out
