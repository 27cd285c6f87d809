"""The alert rules are valid, behave as their unit tests say (promtool), and name only
metrics that the service responsible for them exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from common.http_serving import ServerMetrics
from ingest.metrics import IngestMetrics
from processors.board.page import PAGE_METRICS
from processors.board.service import BoardServiceSettings
from processors.lake.service import LakeMetrics
from processors.recordings.service import retries_counter
from processors.runtime import PipeMetrics

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs it (Debian package prometheus)"
    return found


@pytest.mark.parametrize(
    "argv", [["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]]
)
def test_promtool_accepts_the_rules(argv: list[str]) -> None:
    done = subprocess.run(
        [_promtool(), *argv], cwd=RULES, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _exported(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{end}" for end in ("bucket", "sum", "count")}
    return names


def _recordings_registry() -> CollectorRegistry:
    """What `callstream recordings` exports: the pipe metrics and its retries counter."""
    metrics = PipeMetrics()
    retries_counter(metrics)
    return metrics.registry


def _board_registry() -> CollectorRegistry:
    """What `callstream board` exports: the pipe metrics and its page server's."""
    metrics = PipeMetrics()
    setting = BoardServiceSettings().page_listen().setting
    metrics.registry.register(ServerMetrics(PAGE_METRICS, setting))
    return metrics.registry


def _exporters() -> dict[str, set[str]]:
    return {
        "ingest": _exported(IngestMetrics().registry),
        "enrich": _exported(PipeMetrics().registry),
        "recordings": _exported(_recordings_registry()),
        "lake": _exported(LakeMetrics().registry),
        "board": _exported(_board_registry()),
    }


def _owners(metric: str) -> list[str]:
    """Who must export `metric`, by its name."""
    for prefix, owners in [
        ("callstream_ingest_", ["ingest"]),
        ("callstream_lake_", ["lake"]),
        ("callstream_board_", ["board"]),
        ("callstream_recordings_", ["recordings"]),
        ("callstream_consumer_lag", ["enrich", "recordings"]),
        ("callstream_deadletters", ["enrich", "recordings"]),
    ]:
        if metric.startswith(prefix):
            return owners
    raise AssertionError(f"no service is known to export {metric}")


def test_every_metric_a_rule_names_is_exported_by_its_service() -> None:
    rules = yaml.safe_load((RULES / "alerts.yaml").read_text())
    named = {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in re.findall(r"\bcallstream_[a-z_]+", rule["expr"])
    }
    assert len(named) >= 8
    exporters = _exporters()
    for metric in sorted(named):
        for owner in _owners(metric):
            assert metric in exporters[owner], f"{owner} does not export {metric}"
