"""Garbage-collector settings for a service's steady state.

A consumer allocates a few container objects per record and the receiver a few per
request, so CPython's default thresholds (a young collection every 700 allocations) run
collections often, and each older one walks everything still alive (prefetched records,
open connections). Records, requests and responses are freed by reference counting;
only cycles wait longer. docs/benchmarks.md has what this saves.
"""

from __future__ import annotations

import gc
from typing import Final

THRESHOLDS: Final = (50_000, 20, 100)


def settle_gc() -> None:
    """Call once start-up is done: what exists now is kept out of every later collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
