"""Posts simulated callbacks to a receiver, keeps count, and logs every 2xx it got."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final
from zoneinfo import ZoneInfo

import aiohttp

from yunhu.sim.sentlog import sent_line
from yunhu.sim.traffic import Callback, CallPlan, plan_call, starting_now, timed_callbacks
from yunhu.tenants import Tenant

EXAMPLES: Final = Path(__file__).resolve().parents[1] / "examples"


@dataclass(frozen=True, slots=True)
class TrafficSettings:
    target: str  # receiver base URL, e.g. http://127.0.0.1:8000
    rate: float = 5.0  # calls per second
    calls: int | None = None
    duration: float | None = None
    seed: int | None = None
    sent_log: Path | None = None
    verbatim: bool = False
    malformed: float = 0.0  # per call: also post the document's malformed CDR example
    withhold_cdr: float = 0.0  # per call: its CDR is never posted (a board anomaly)
    speed: float = 1.0  # the calls' clock runs this many times faster than the wall clock
    live: bool = False  # each callback posted when it happens (a call rings, then talks…)
    concurrency: int = 64
    timeout: float = 30.0


@dataclass
class TrafficReport:
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, status)
    calls: int = 0
    withheld: list[tuple[str, str]] = field(default_factory=list)  # (tenant, uuid): no CDR

    @property
    def accepted(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status.startswith("2"))

    def summary(self) -> str:
        lines = [f"sent {sum(self.statuses.values())} callbacks for {self.calls} calls"]
        lines.extend(
            f"  {kind:9} {status:>5}  {count}"
            for (kind, status), count in sorted(self.statuses.items())
        )
        return "\n".join(lines)


def callback_url(target: str, callback: Callback) -> str:
    return f"{target.rstrip('/')}/callbacks/{callback.companycode}/{callback.kind}"


class Poster:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: TrafficSettings,
        tenants: dict[str, Tenant],
        sent_log: IO[bytes] | None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.tenants = tenants
        self.sent_log = sent_log
        self.report = TrafficReport()

    async def post(self, callback: Callback) -> str:
        tenant = self.tenants[callback.companycode]
        try:
            async with self.session.post(
                callback_url(self.settings.target, callback),
                params={"key": tenant.callback_key},
                data=callback.body,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            ) as response:
                await response.read()
                status = str(response.status)
        except (TimeoutError, aiohttp.ClientError) as err:
            status = type(err).__name__
        self.report.statuses[(callback.kind, status)] += 1
        if status.startswith("2") and self.sent_log is not None:
            self.sent_log.write(sent_line(callback))
        return status

    async def post_in_order(self, items: Iterable[Callback]) -> None:
        for callback in items:
            await self.post(callback)


def verbatim_callbacks(companycode: str) -> list[Callback]:
    """The platform document's two example payloads, byte for byte (the CDR is not JSON)."""
    return [
        Callback(
            "callstate",
            companycode,
            "526d637c-e8fe-11ea-a849-cf6e45e88543",
            (EXAMPLES / "callstate.json").read_bytes(),
        ),
        Callback(
            "cdr",
            companycode,
            "cda5c6c4-0a17-11e8-b177-e7cbf2bd1f36",
            (EXAMPLES / "cdr.json").read_bytes(),
        ),
    ]


async def generate(
    poster: Poster,
    tz: ZoneInfo,
    on_call: Callable[[CallPlan], None] | None = None,
) -> TrafficReport:
    """Posts calls at `rate` until `calls` or `duration` is reached.

    Calls overlap (up to `concurrency`); each call's callbacks go out in order."""
    settings = poster.settings
    if settings.verbatim:
        first = next(iter(poster.tenants))
        await poster.post_in_order(verbatim_callbacks(first))
        return poster.report
    rng = random.Random(settings.seed)  # noqa: S311 - simulation, not security
    codes = sorted(poster.tenants)
    next_id = dict.fromkeys(codes, 1)
    limit = asyncio.Semaphore(settings.concurrency)
    started, wall = time.monotonic(), time.time()
    tasks: set[asyncio.Task[None]] = set()

    async def run_call(items: list[tuple[int, Callback]]) -> None:
        if not settings.live:
            async with limit:
                await poster.post_in_order(item for _, item in items)
            return
        for at, item in items:  # the limit is held while posting, not while a call lasts
            await asyncio.sleep(max(0.0, started + (at - wall) / settings.speed - time.monotonic()))
            async with limit:
                await poster.post(item)

    try:
        index = 0
        while settings.calls is None or index < settings.calls:
            due = started + index / settings.rate
            if settings.duration is not None and due - started >= settings.duration:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            code = codes[index % len(codes)] if rng.random() < 0.5 else rng.choice(codes)
            now = wall + (time.monotonic() - started) * settings.speed
            plan = plan_call(rng, code, next_id[code], int(now))
            if settings.live:
                plan = starting_now(plan)
            next_id[code] += 1
            poster.report.calls += 1
            if on_call is not None:
                on_call(plan)
            items = _with_faults(timed_callbacks(plan, tz), plan, settings, rng, poster.report)
            task = asyncio.create_task(run_call(items))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.gather(*tasks)
    except asyncio.CancelledError:  # halted: the calls still being posted end too
        for task in tasks:
            task.cancel()
        raise
    return poster.report


def _with_faults(
    items: list[tuple[int, Callback]],
    plan: CallPlan,
    settings: TrafficSettings,
    rng: random.Random,
    report: TrafficReport,
) -> list[tuple[int, Callback]]:
    """A call's callbacks with the faults asked for: the document's malformed CDR added
    (to be answered 400), or the CDR withheld (a board anomaly)."""
    if settings.malformed and rng.random() < settings.malformed:
        items.append((plan.end, verbatim_callbacks(plan.companycode)[1]))
    if settings.withhold_cdr and rng.random() < settings.withhold_cdr:
        items = [(at, item) for at, item in items if item.kind != "cdr"]
        report.withheld.append((plan.companycode, plan.uuid))
    return items
