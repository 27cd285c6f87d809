"""The peers' own virtualenvs, made on first use under the stack's directory: a peer pins
versions the project does not (quixstreams 3.28: confluent-kafka < 2.13, pydantic < 2.14)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.measured import ROOT

QUIX = "quixstreams==3.28.1"
# What `Enricher` imports, at the project's locked versions; confluent-kafka is quixstreams'.
PROJECT_PACKAGES = ("aiokafka", "msgspec", "prometheus-client", "tzdata", "orjson")


def locked(names: tuple[str, ...]) -> list[str]:
    text = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", text, flags=re.M))
    return [f"{name}=={pins[name]}" for name in names]


def quix_python(stack_dir: Path) -> Path:
    """The peer's interpreter, its virtualenv made (and the packages installed) if missing."""
    home = stack_dir / "peers" / "quix"
    python = home / "bin" / "python"
    marker = home / ".installed"
    wanted = " ".join([QUIX, *locked(PROJECT_PACKAGES)])
    if marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *wanted.split()], check=True)
    marker.write_text(wanted)
    return python
