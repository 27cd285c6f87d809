"""How a long-running service learns to stop: the first SIGTERM or SIGINT.

Later ones are ignored. A signal can reach a process twice during one shutdown (from the
process group, as Ctrl-C in a terminal sends it, and again from a supervisor); the
second must not end, with the signal's default action, a process that is stopping
cleanly.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Final

SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals() -> asyncio.Event:
    """An event the first SIGTERM or SIGINT sets; call from inside the running loop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def first() -> None:
        stop.set()
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        ignore_further_signals()

    for sig in SIGNALS:
        loop.add_signal_handler(sig, first)
    return stop


def ignore_further_signals() -> None:
    """From now on SIGTERM and SIGINT do nothing. Ignored, not merely unhandled: Python
    restores each handled signal's default action as it exits, and a signal arriving
    then would kill a process that had stopped cleanly."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
