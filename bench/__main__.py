"""`python -m bench [NAME …] [OPTIONS]`: run the benchmarks (every one by default) and print
their figures; options (from the first argument starting with `-`) go to each one named."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(here)])
        if not m.name.startswith("_") and not m.ispkg and not m.name.endswith("_child")
    )


def main(argv: list[str]) -> int:
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    names, options = argv[:split] or available(), argv[split:]
    if not names:
        print("no benchmarks yet: they arrive with the receiver and the consumers")
        return 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name}")
        status: int = module.main(options)
        if status:
            return status
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
