"""`callstream run --chaos`: faults injected on a schedule while traffic flows.

The schedule is spread over the traffic's duration, in a seeded order: an enricher
SIGKILLed and restarted, the Kafka broker SIGKILLed and restarted 20 s later, one ingest
worker SIGKILLed (its supervisor restarts it), the whole ingest process group SIGKILLed
and restarted, a recordings replica SIGKILLed and restarted, S3 frozen (SIGSTOP) for
15 s, and an enricher frozen past the group's session timeout, then resumed. Broker and
S3 faults need the local stack (`callstream run` without `--services-from-env`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from callstream.dev.demo import procs
from callstream.dev.demo.procs import Child
from callstream.dev.stack import kafka as stack_kafka
from callstream.dev.stack import s3 as stack_s3
from callstream.dev.stack.process import Managed
from callstream.dev.stack.settings import StackSettings

BROKER_DOWN = 20.0
S3_FROZEN = 15.0
RESTART_AFTER = 5.0
# Longer than the session timeout chaos runs give the enrichers, so their partitions move.
ENRICHER_FROZEN = 30.0
SESSION_TIMEOUT_MS = 10_000
WORKERS_WAIT = 15.0


@dataclass
class Chaos:
    """What the faults act on, and what happened (shown live and in the summary)."""

    children: list[Child]
    stack: StackSettings | None  # None: Kafka and S3 are not ours to kill
    log: Path | None = None  # each event is appended here as it happens
    started: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)
    down: set[str] = field(default_factory=set)  # children being restarted on purpose
    done: bool = False  # every fault injected and over

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:5.0f}s  {text}"
        self.events.append(line)
        if self.log is not None:
            with self.log.open("a") as out:
                out.write(line + "\n")

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def replace(self, old: Child, new: Child) -> None:
        self.children[self.children.index(old)] = new


Fault = Callable[[Chaos], Awaitable[None]]


async def _kill_and_restart(chaos: Chaos, name: str) -> None:
    child = chaos.child(name)
    chaos.down.add(name)
    try:
        _signal_group(child.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(child.proc.wait)
        chaos.note(f"{name} SIGKILLed")
        await asyncio.sleep(RESTART_AFTER)
        chaos.replace(child, procs.restart(child))
        chaos.note(f"{name} restarted")
    finally:
        chaos.down.discard(name)


def kill_replica(name: str) -> Fault:
    async def fault(chaos: Chaos) -> None:
        await _kill_and_restart(chaos, name)

    return fault


async def kill_ingest_group(chaos: Chaos) -> None:
    await _kill_and_restart(chaos, "ingest")


async def kill_ingest_worker(chaos: Chaos) -> None:
    supervisor = chaos.child("ingest").proc.pid
    workers = procs.child_pids(supervisor)
    waited_until = time.monotonic() + WORKERS_WAIT  # a supervisor just restarted forks soon
    while not workers and time.monotonic() < waited_until:
        await asyncio.sleep(0.2)
        workers = procs.child_pids(supervisor)
    if not workers:
        chaos.note("ingest has no worker processes to kill (run with --workers 2)")
        return
    os.kill(workers[0], signal.SIGKILL)
    chaos.note(f"ingest worker {workers[0]} SIGKILLed (its supervisor restarts it)")


def freeze_replica(name: str) -> Fault:
    async def fault(chaos: Chaos) -> None:
        child = chaos.child(name)
        chaos.down.add(name)
        try:
            child.proc.send_signal(signal.SIGSTOP)
            chaos.note(f"{name} frozen (SIGSTOP) for {ENRICHER_FROZEN:.0f}s")
            await asyncio.sleep(ENRICHER_FROZEN)
            child.proc.send_signal(signal.SIGCONT)
            chaos.note(f"{name} resumed (SIGCONT)")
        finally:
            chaos.down.discard(name)

    return fault


def _stack_pid(chaos: Chaos, server: Managed, what: str) -> int | None:
    """The local stack server's pid, or None (noted) when it is not running."""
    pid = server.pid()
    if pid is None:
        chaos.note(f"{what} is not running: its fault is skipped")
    return pid


async def restart_broker(chaos: Chaos) -> None:
    stack = chaos.stack
    assert stack is not None  # noqa: S101 - scheduled only with the local stack
    pid = _stack_pid(chaos, stack_kafka.managed(stack), "Kafka")
    if pid is None:
        return
    _signal_group(pid, signal.SIGKILL)
    chaos.note(f"Kafka broker SIGKILLed; back in {BROKER_DOWN:.0f}s")
    await asyncio.sleep(BROKER_DOWN)
    await asyncio.to_thread(stack_kafka.start, stack)
    await asyncio.to_thread(stack_kafka.wait_ready, stack, stack.ready_timeout)
    chaos.note("Kafka broker restarted")


async def freeze_s3(chaos: Chaos) -> None:
    stack = chaos.stack
    assert stack is not None  # noqa: S101 - scheduled only with the local stack
    pid = _stack_pid(chaos, stack_s3.managed(stack), "S3")
    if pid is None:
        return
    _signal_group(pid, signal.SIGSTOP)
    chaos.note(f"S3 frozen (SIGSTOP) for {S3_FROZEN:.0f}s")
    try:
        await asyncio.sleep(S3_FROZEN)
    finally:
        _signal_group(pid, signal.SIGCONT)
    chaos.note("S3 resumed (SIGCONT)")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def schedule(replicas: int, *, local_stack: bool, seed: int | None) -> list[tuple[str, Fault]]:
    """The faults, in order: the process faults in a seeded order, the enricher freeze
    last (its resume must come while traffic still flows or just after)."""
    last = f"enrich-{replicas}"
    faults: list[tuple[str, Fault]] = [
        ("kill an enricher", kill_replica("enrich-1")),
        ("kill an ingest worker", kill_ingest_worker),
        ("kill the ingest process group", kill_ingest_group),
        ("kill a recordings replica", kill_replica(f"recordings-{replicas}")),
    ]
    if local_stack:
        faults += [("restart the broker", restart_broker), ("freeze S3", freeze_s3)]
    random.Random(seed).shuffle(faults)  # noqa: S311 - a schedule, not a secret
    return [*faults, ("freeze an enricher past its session", freeze_replica(last))]


async def inject(chaos: Chaos, faults: list[tuple[str, Fault]], duration: float) -> None:
    """Each fault in turn, one at a time, spread from 10 % of `duration` (traffic is
    flowing by then) to 80 %; a fault that takes long delays the ones after it."""
    step = 0.7 * duration / max(len(faults), 1)
    for index, (_, fault) in enumerate(faults):
        due = chaos.started + 0.1 * duration + step * index
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await fault(chaos)
    chaos.done = True
    chaos.note("every fault injected")
