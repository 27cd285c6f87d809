"""Garbage-collector settings for the consumers' steady state.

A consumer allocates a few container objects per record, so CPython's default
thresholds (a young collection every 700 allocations) run collections often, and each
older one walks every record aiokafka has prefetched. Measured on enrich (bench/enrich.py
pipes, 26 073 records): about 45-50 µs of CPU per record with the defaults, 38-43 with
these. Records and outputs are freed by reference counting; only cycles wait longer.
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
