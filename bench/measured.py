"""A pipe measured in a process of its own: started fresh, run to the end, its figures
read from the last line it prints (JSON with `records`, `wall` and `cpu`), so that no
runtime shares its interpreter with the benchmark that publishes and checks the records.
Both sides are here: `measured` in the benchmark, the rest in the child."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import msgspec

from common.topics import Topics

ROOT = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """This environment, with the project importable from any interpreter."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def measured(command: list[str], env: dict[str, str], expected: int) -> tuple[float, float]:
    """The wall and CPU seconds the child reports; it fails unless it read `expected`
    records."""
    proc = subprocess.run(
        command, check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{command[2]} exited {proc.returncode}: {proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if figures["records"] != expected:
        raise RuntimeError(f"{command[2]} read {figures['records']} of {expected}")
    return float(figures["wall"]), float(figures["cpu"])


def cpu_seconds() -> float:
    """This process's CPU time so far, every thread's, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pipe_topics(raw_suffix: str, suffix: str) -> Topics:
    """The raw topics of `raw_suffix`, the rest of `suffix`: a measured pipe reads the raw
    records every pipe shares and writes output topics of its own."""
    raw = Topics.with_suffix(raw_suffix)
    return msgspec.structs.replace(
        Topics.with_suffix(suffix), callstate_raw=raw.callstate_raw, cdr_raw=raw.cdr_raw
    )


def report(records: int, wall: float, cpu: float) -> None:
    """The child's side of `measured`: its figures, as the last line it prints."""
    print(json.dumps({"records": records, "wall": wall, "cpu": cpu}), flush=True)
