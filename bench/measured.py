"""A pipe measured in a process of its own: started fresh, run to the end, its figures
read from the last line it prints (JSON with `records`, `wall` and `cpu`), so that no
runtime shares its interpreter with the benchmark that publishes and checks the records."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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
