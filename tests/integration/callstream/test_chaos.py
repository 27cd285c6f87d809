"""`callstream run --chaos`, scaled out, on a local stack of its own (the run kills its
broker and freezes its S3): every fault is injected, and nothing is lost, nothing is
enriched twice, the lake holds every raw record, and every service exits 0."""

from __future__ import annotations

import re
from pathlib import Path

from devkit.ports import free_ports, free_seaweed_block
from tests.support.processes import run_callstream

FAULTS = [
    r"enrich-1 SIGKILLed",
    r"enrich-1 restarted",
    r"ingest worker \d+ SIGKILLed",
    r"ingest SIGKILLed",
    r"ingest restarted",
    r"recordings-2 SIGKILLed",
    r"recordings-2 restarted",
    r"Kafka broker SIGKILLed",
    r"Kafka broker restarted",
    r"S3 frozen \(SIGSTOP\)",
    r"S3 resumed \(SIGCONT\)",
    r"enrich-2 frozen \(SIGSTOP\)",
    r"enrich-2 resumed \(SIGCONT\)",
]


def test_a_chaos_run_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    kafka_port, controller_port = free_ports(2)
    seaweed = free_seaweed_block()
    env = {
        "CALLSTREAM_STACK_DIR": str(tmp_path / "stack"),
        "CALLSTREAM_STACK_KAFKA_PORT": str(kafka_port),
        "CALLSTREAM_STACK_CONTROLLER_PORT": str(controller_port),
        "CALLSTREAM_STACK_S3_PORT": str(seaweed + 1),
        "CALLSTREAM_STACK_SEAWEED_PORT_BASE": str(seaweed),
        "CALLSTREAM_RUN_DIR": str(tmp_path / "runs"),
    }
    args = ["--chaos", "--duration", "50", "--replicas", "2", "--workers", "2", "--settle", "300"]
    done = run_callstream("run", *args, env=env, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out[-5000:] + done.stderr[-3000:]
    for fault in FAULTS:
        assert re.search(fault, out), f"not injected: {fault}\n{out[-3000:]}"
    figures = dict(re.findall(r"^  ([a-z ()2x]+?)\s{2,}(\d+)$", out, re.MULTILINE))
    assert int(figures["callbacks accepted (2xx)"]) > 50
    assert figures["accepted but not enriched"] == "0"
    assert figures["enriched twice"] == "0"
    assert figures["raw records not in the lake"] == "0"
    assert int(figures["recordings archived"]) == int(figures["answered calls"]) > 0
    assert "result: OK, nothing lost" in out
