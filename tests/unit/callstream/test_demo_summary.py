from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from callstream.dev.demo.procs import Child, Launcher
from callstream.dev.demo.run import Run, _summary
from callstream.dev.demo.verify import Verdict
from common.config import KafkaSettings
from common.topics import Topics
from yunhu.sim.sentlog import SentEntry


def _run(tmp_path: Path) -> Run:
    none: Any = None
    return Run(
        argparse.Namespace(duration=60),
        KafkaSettings("x:1"),
        Topics(),
        tmp_path,
        [],
        none,
        "http://x",
        time.monotonic(),
        none,
        none,
    )


def _result(tmp_path: Path, verdict: Verdict, **codes: int) -> str:
    return _summary(_run(tmp_path), "settled", {"ingest": 0, **codes}, verdict)[-1]


def test_nothing_lost_is_ok(tmp_path: Path) -> None:
    verdict = Verdict(accepted=3, enriched=3, answered={"a"}, archived={"a"})
    assert "OK, nothing lost" in _result(tmp_path, verdict)


def test_a_lost_callback_a_missing_recording_no_traffic_or_a_bad_exit_fail(
    tmp_path: Path,
) -> None:
    lost = Verdict(accepted=3, missing=[SentEntry("cdr", "9024", "u1", "sha")])
    assert "FAILED" in _result(tmp_path, lost)
    unarchived = Verdict(accepted=3, answered={"a", "b"}, archived={"a"})
    assert "FAILED" in _result(tmp_path, unarchived)
    assert "FAILED" in _result(tmp_path, Verdict(accepted=0))
    assert "FAILED" in _result(tmp_path, Verdict(accepted=3), enrich=1)


def test_a_record_enriched_twice_or_a_raw_record_missing_from_the_lake_fail(
    tmp_path: Path,
) -> None:
    fine = {"accepted": 3, "enriched": 3, "answered": {"a"}, "archived": {"a"}}
    assert "FAILED" in _result(tmp_path, Verdict(**fine, twice=1))  # type: ignore[arg-type]
    assert "FAILED" in _result(tmp_path, Verdict(**fine, lake_missing=2))  # type: ignore[arg-type]
    assert "OK" in _result(tmp_path, Verdict(**fine, lake_missing=0))  # type: ignore[arg-type]


def test_a_service_that_exited_badly_has_its_last_log_lines_in_the_summary(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path)
    for name, text in (("enrich-1", "fine\n"), ("recordings-2", "start\nTraceback: boom\n")):
        log = tmp_path / f"{name}.log"
        log.write_text(text)
        proc: Any = None
        run.children.append(Child(name, proc, log, None, [], {}, None, Launcher()))
    verdict = Verdict(accepted=3, enriched=3, answered={"a"}, archived={"a"})
    lines = _summary(run, "settled", {"enrich-1": 0, "recordings-2": 1}, verdict)
    assert "  last lines of recordings-2.log:" in lines
    assert "    Traceback: boom" in lines
    assert not any("enrich-1.log" in line for line in lines[:-1])
    assert "FAILED" in lines[-1]
