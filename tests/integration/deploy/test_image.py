"""The service image, built here and proven: `callstream image test` runs every service
from it against the test's Kafka and S3 and checks what the Kubernetes manifests promise."""

from __future__ import annotations

import re

from callstream.dev.image.check import SERVICES
from tests.support.processes import run_callstream
from tests.support.services import Services


def test_every_service_runs_from_the_image_as_its_manifest_says(services: Services) -> None:
    done = run_callstream("image", "test", "--services-from-env", env=services.env(), timeout=1500)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "runs as uid 10001" in out
    assert "result: OK, nothing lost" in out
    assert re.search(r"exit codes: ingest 0, enrich 0, recordings 0, lake 0, board 0, sim 0", out)
    for service in SERVICES:
        line = rf"^{service}\s+uid 10001, read-only root True, answered .+; exit 0 "
        assert re.search(line, out, re.MULTILINE), out
    assert "the callback in flight answered 200" in out
