"""`python -m bench [NAME …]`: run the benchmarks (every one by default) and print their figures."""

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
    names = argv or available()
    if not names:
        print("no benchmarks yet: they arrive with the receiver and the consumers")
        return 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name}")
        status: int = module.main()
        if status:
            return status
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
