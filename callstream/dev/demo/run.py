"""`callstream run`: the local stack, the topics, the simulator and every service, watched.

Traffic runs for `--duration` seconds (or until Ctrl-C); then the pipeline settles (the
receiver's spool drains, enrich and recordings catch up), every service is stopped with
SIGTERM, and the run is checked end to end: exit 0 only without losses, nothing enriched
twice, every raw record in the lake, and every service exiting 0. `--chaos` injects
faults meanwhile (`callstream.dev.demo.chaos`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from botocore.exceptions import BotoCoreError, ClientError

from callstream.command import Command
from callstream.dev.demo import chaos, procs
from callstream.dev.demo.procs import Child
from callstream.dev.demo.verify import Lake, Verdict, verify
from callstream.dev.demo.watch import LatestCalls, Samples, ok_requests, scrape, total
from callstream.dev.ports import free_port
from callstream.dev.stack.errors import StackError
from callstream.dev.stack.settings import PROJECT_ROOT, StackSettings
from callstream.dev.stack.stack import Stack
from common.config import ConfigError, KafkaSettings, S3Settings
from common.kafka import ensure_topics, kafka_admin, partitions_of
from common.s3 import ensure_bucket, make_client
from common.topic_catalog import TopicSettings, topic_specs
from common.topics import Topics
from yunhu.sim.run import TRAFFIC_DONE

EXAMPLE_TENANTS = PROJECT_ROOT / "deploy" / "tenants.example.toml"


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="seconds of traffic (default: until Ctrl-C)")
    p.add_argument("--rate", type=float, default=4.0, help="calls per second")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--settle", type=float, default=180.0, help="seconds to let the pipeline catch up"
    )
    p.add_argument("--no-faults", action="store_true", help="a well-behaved platform")
    p.add_argument("--keep-stack", action="store_true", help="leave Kafka and S3 running")
    p.add_argument("--chaos", action="store_true", help="inject faults during the traffic")
    p.add_argument("--replicas", type=int, default=1, help="enrich and recordings processes each")
    p.add_argument("--workers", type=int, default=1, help="ingest worker processes")
    p.add_argument(
        "--image",
        default="",
        help="run every service from this image (docker run --network host), not this Python",
    )
    p.add_argument(
        "--live-calls",
        action="store_true",
        help="the simulator posts each call's events as they happen (the board shows calls "
        "ringing and talking); otherwise each call's events come together when it ends",
    )
    p.add_argument(
        "--services-from-env",
        action="store_true",
        help="use the Kafka and S3 of CALLSTREAM_KAFKA_*/CALLSTREAM_S3_*, not the local stack",
    )


@dataclass(frozen=True)
class Services:
    """Where Kafka and S3 are: the local stack, or what the environment names."""

    kafka: KafkaSettings
    env: dict[str, str]  # CALLSTREAM_* the services need for them (beyond our own environment)
    stack: StackSettings | None = None  # the local stack, which chaos may kill

    def lake(self) -> Lake:
        s3 = S3Settings.from_env({**os.environ, **self.env})
        return Lake(make_client(s3), s3.bucket, s3.prefix)


@dataclass
class Run:
    args: argparse.Namespace
    kafka: KafkaSettings
    topics: Topics
    folder: Path
    children: list[Child]
    sim: Child
    ingest_url: str
    started: float
    services: Services
    lake: Lake  # where the lake writes: checked when settling and at the end
    chaos: chaos.Chaos | None = None
    board_url: str = ""

    @property
    def sent_log(self) -> Path:
        return self.folder / "sent.ndjson"


def _tenants_file(folder: Path, api_url: str) -> Path:
    text = EXAMPLE_TENANTS.read_text()
    path = folder / "tenants.toml"
    path.write_text(re.sub(r'api_url\s*=\s*"[^"]*"', f'api_url = "{api_url}"', text))
    return path


async def _create_topics(kafka: KafkaSettings, topics: Topics) -> dict[TopicPartition, int]:
    """Creates what is missing; returns where every topic ends now (this run starts there)."""
    async with kafka_admin(kafka) as admin:
        await ensure_topics(admin, topic_specs(topics, TopicSettings.from_env(os.environ)))
    tps = await partitions_of(kafka, topics.all())
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


def _start_children(args: argparse.Namespace, services: Services, folder: Path) -> Run:
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    sim_port, ingest_port = free_port(8080), free_port(8000)
    env = {
        **services.env,
        "CALLSTREAM_TENANTS": str(_tenants_file(folder, f"http://127.0.0.1:{sim_port}")),
        "CALLSTREAM_INGEST_HOST": "127.0.0.1",
        "CALLSTREAM_INGEST_PORT": str(ingest_port),
        "CALLSTREAM_INGEST_SPOOL_DIR": str(folder / "spool"),
        "CALLSTREAM_RECORDINGS_FIRST_BACKOFF": "1",
        "CALLSTREAM_RECORDINGS_MAX_BACKOFF": "5",
        "CALLSTREAM_LAKE_FLUSH_SECONDS": "10",
    }
    if args.chaos:  # a frozen enricher's partitions move within the freeze
        env["CALLSTREAM_ENRICH_SESSION_TIMEOUT_MS"] = str(chaos.SESSION_TIMEOUT_MS)
    workers = ["--workers", str(args.workers)] if args.workers > 1 else []
    launcher = procs.Launcher(args.image, folder if args.image else None)
    if args.image:  # the containers' user writes the spool, the lake's files, the sent log
        for path in (folder, folder / "spool", logs):
            path.mkdir(exist_ok=True)
            path.chmod(0o777)
    children = [
        procs.start("ingest", ["ingest", *workers], env, logs, ingest_port, launcher=launcher)
    ]
    for service, count in (("enrich", args.replicas), ("recordings", args.replicas), ("lake", 1)):
        for index in range(1, count + 1):
            port = free_port()
            name = f"{service}-{index}" if count > 1 or args.chaos else service
            own = {**env, "CALLSTREAM_INSTANCE": str(index)}
            children.append(
                procs.start(
                    name, [service, "--metrics-port", str(port)], own, logs, port, launcher=launcher
                )
            )
    board_port, board_metrics = free_port(8090), free_port()
    board_args = ["board", "--http-port", str(board_port), "--metrics-port", str(board_metrics)]
    children.append(procs.start("board", board_args, env, logs, board_metrics, launcher=launcher))
    ingest_url = f"http://127.0.0.1:{ingest_port}"
    sim_args = ["sim", "--port", str(sim_port), "--target", ingest_url, "--rate", str(args.rate)]
    sim_args += [
        "--duration",
        str(args.duration or 7 * 86400),
        "--sent-log",
        str(folder / "sent.ndjson"),
    ]
    if args.seed is not None:
        sim_args += ["--seed", str(args.seed)]
    if args.live_calls:
        sim_args.append("--live")
    # The token API misbehaves now and then, recordings come late, and a few callbacks are
    # the document's malformed CDR (answered 400, kept in the dead-letter topic).
    if not args.no_faults:
        sim_args += [
            "--fault-ret500",
            "0.05",
            "--fault-token-invalid",
            "0.05",
            "--fault-slow",
            "0.02",
            "--slow-seconds",
            "1",
            "--fault-expired-link",
            "0.05",
            "--not-ready-seconds",
            "3",
            "--fault-malformed",
            "0.02",
        ]
    sim = procs.start("sim", sim_args, env, logs, launcher=launcher)
    return Run(
        args,
        services.kafka,
        Topics.from_env(os.environ),
        folder,
        children,
        sim,
        ingest_url,
        time.monotonic(),
        services,
        services.lake(),
        board_url=f"http://127.0.0.1:{board_port}/",
    )


@dataclass
class Figures:
    received: int = 0
    refused: int = 0
    spooled: int = 0
    enriched: int = 0
    deadletters: int = 0
    archived: int = 0
    lake_records: int = 0
    lag: dict[str, int] = field(default_factory=dict)


async def _figures(session: aiohttp.ClientSession, run: Run) -> Figures:
    samples = await asyncio.gather(*(scrape(session, c.metrics_url) for c in run.children))
    scraped: dict[str, Samples] = {}
    for child, found in zip(run.children, samples, strict=True):  # replicas add up
        scraped.setdefault(child.name.split("-")[0], []).extend(found)
    ingest, enrich = scraped["ingest"], scraped["enrich"]
    recordings, lake = scraped["recordings"], scraped["lake"]
    requests = total(ingest, "callstream_ingest_requests_total")
    received = ok_requests(ingest)
    return Figures(
        received=received,
        refused=requests - received,
        spooled=total(ingest, "callstream_ingest_spool_records"),
        enriched=total(enrich, "callstream_produced_records_total", topic=run.topics.callstate)
        + total(enrich, "callstream_produced_records_total", topic=run.topics.cdr),
        deadletters=total(ingest, "callstream_ingest_deadletters_total")
        + total(enrich, "callstream_deadletters_total")
        + total(recordings, "callstream_deadletters_total"),
        archived=total(
            recordings, "callstream_produced_records_total", topic=run.topics.recordings
        ),
        lake_records=total(lake, "callstream_lake_records_total"),
        lag={
            "enrich": total(enrich, "callstream_consumer_lag"),
            "recordings": total(recordings, "callstream_consumer_lag"),
        },
    )


def _screen(run: Run, figures: Figures, latest: LatestCalls, phase: str) -> str:
    elapsed = time.monotonic() - run.started
    of = f" of {run.args.duration:.0f}s" if run.args.duration else ""
    lag = figures.lag
    lines = [
        f"callstream run — {elapsed:5.0f}s{of} · {phase} · logs in {run.folder / 'logs'}",
        f"  the live board: {run.board_url}",
        "",
        f"  callbacks received (2xx)   {figures.received:>8}    refused {figures.refused}",
        f"  waiting in ingest spool    {figures.spooled:>8}",
        f"  enriched records           {figures.enriched:>8}    dead letters {figures.deadletters}",
        f"  recordings archived        {figures.archived:>8}",
        f"  raw events in the lake     {figures.lake_records:>8}",
        f"  consumer lag               enrich {lag.get('enrich', 0)}"
        f" · recordings {lag.get('recordings', 0)}",
    ]
    if run.chaos is not None:
        lines += ["", "  chaos", *(f"    {event}" for event in run.chaos.events[-8:])]
    lines += ["", "  latest calls"]
    for call in reversed(latest.calls):
        cause = call.hangup_cause.name if call.hangup_cause else "?"
        side = call.hangup_direction.name if call.hangup_direction else "?"
        talk = f"talk {call.talk_seconds or 0:>3}s" if call.answered else "not answered"
        lines.append(
            f"    {call.tenant:>8}  {call.uuid[:8]}  {talk:<13}  {cause} (hung up by {side})"
        )
    return "\n".join(lines)


def _show(run: Run, figures: Figures, latest: LatestCalls, phase: str, tty: bool) -> None:
    if tty:
        sys.stdout.write("\x1b[H\x1b[2J" + _screen(run, figures, latest, phase) + "\n")
    else:  # a log: one line per refresh
        lag = figures.lag
        sys.stdout.write(
            f"{time.monotonic() - run.started:5.0f}s {phase}: received {figures.received}, "
            f"enriched {figures.enriched}, archived {figures.archived}, "
            f"lake {figures.lake_records}, dead letters {figures.deadletters}, "
            f"lag {lag.get('enrich', 0)}/{lag.get('recordings', 0)}\n"
        )
    sys.stdout.flush()


def _traffic_done(sim: Child) -> bool:
    return TRAFFIC_DONE in sim.log.read_text(errors="replace")


async def _spool_empty(session: aiohttp.ClientSession, run: Run) -> bool:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        async with session.get(f"{run.ingest_url}/readyz") as response:
            state = await response.json()
            return bool(state["spool_records"] == 0 and state["kafka"] == "direct")
    return False


class Interrupts:
    """Ctrl-C once: end the traffic and settle. Twice: stop without waiting."""

    def __init__(self) -> None:
        self.count = 0
        self.wake = asyncio.Event()  # cuts the view's one-second wait short

    def __call__(self) -> None:
        self.count += 1
        self.wake.set()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()


async def _watch(run: Run, starts: dict[TopicPartition, int], interrupts: Interrupts) -> str:
    """Shows the live view until the run is over; returns how it ended."""
    tty = sys.stdout.isatty()
    consumer = AIOKafkaConsumer(
        **run.kafka.client_kwargs(), group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    latest = LatestCalls(
        consumer, {tp: o for tp, o in starts.items() if tp.topic == run.topics.cdr}
    )
    follow = asyncio.create_task(latest.follow())
    phase, settle_until, checked_at, shown_at = "traffic", 0.0, 0.0, 0.0
    try:
        async with aiohttp.ClientSession() as session:
            while True:
                now = time.monotonic()
                figures = await _figures(session, run)
                if tty or now - shown_at >= 5:
                    _show(run, figures, latest, phase, tty)
                    shown_at = now
                down = run.chaos.down if run.chaos is not None else set()
                died = [
                    c.name for c in [*run.children, run.sim] if not c.alive() and c.name not in down
                ]
                if died:
                    return f"stopped: {', '.join(died)} exited unexpectedly"
                if interrupts.count >= 2:
                    return "stopped without settling (Ctrl-C twice)"
                if phase == "traffic":
                    over = run.args.duration is not None and now - run.started >= run.args.duration
                    if interrupts.count or over:
                        run.sim.proc.send_signal(signal.SIGUSR1)
                    if interrupts.count or over or _traffic_done(run.sim):
                        phase, settle_until = "settling", now + run.args.settle
                elif now - checked_at >= 3:
                    checked_at = now
                    if await _settled(session, run, figures, starts):
                        return "settled"
                    if now > settle_until:
                        return f"not settled within {run.args.settle:.0f}s"
                await interrupts.wait(1.0)
    finally:
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        # aiokafka re-raises the cancellation of a fetch that was waiting on a broker
        # being restarted; the view is done with it either way.
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def _settled(
    session: aiohttp.ClientSession, run: Run, figures: Figures, starts: dict[TopicPartition, int]
) -> bool:
    """Traffic over, spool empty, consumers caught up, and then (reading the topics, so
    only then) nothing missing."""
    caught_up = not any(figures.lag.values())
    return (
        caught_up
        and (run.chaos is None or run.chaos.done)
        and _traffic_done(run.sim)
        and await _spool_empty(session, run)
        and (await verify(run.kafka, run.topics, starts, run.sent_log, run.lake)).ok
    )


def _summary(run: Run, ended: str, codes: dict[str, int], verdict: Verdict) -> list[str]:
    took = time.monotonic() - run.started
    lines = [
        f"callstream run: {ended} after {took:.0f}s",
        *("  " + line for line in verdict.lines()),
    ]
    if run.chaos is not None:
        lines += ["  faults injected:", *(f"    {event}" for event in run.chaos.events)]
    lines.append("  exit codes: " + ", ".join(f"{name} {code}" for name, code in codes.items()))
    lines += [f"  MISSING {e.kind} {e.tenant} {e.uuid}" for e in verdict.missing[:10]]
    lines += [f"  NO RECORDING for call {u}" for u in sorted(verdict.recordings_missing)[:10]]
    healthy = verdict.ok and verdict.accepted > 0 and all(c == 0 for c in codes.values())
    failed = [c for c in [*run.children, run.sim] if isinstance(c, Child) and codes.get(c.name)]
    for child in failed:
        lines += [f"  last lines of {child.log.name}:", *(f"    {t}" for t in procs.tail(child))]
    lines.append(
        f"  result: {'OK, nothing lost' if healthy else 'FAILED'} · logs in {run.folder / 'logs'}"
    )
    return lines


async def _run(args: argparse.Namespace, services: Services, folder: Path) -> int:
    starts = await _create_topics(services.kafka, Topics.from_env(os.environ))
    run = _start_children(args, services, folder)
    print(f"callstream run: the live board is at {run.board_url}", flush=True)
    interrupts = Interrupts()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupts)
    faults = _start_chaos(run) if args.chaos else None
    try:
        ended = await _watch(run, starts, interrupts)
    finally:
        if faults is not None:
            await _end_chaos(faults)
        codes = await asyncio.to_thread(procs.stop, [*run.children, run.sim])
    verdict = await verify(run.kafka, run.topics, starts, run.sent_log, run.lake)
    lines = _summary(run, ended, codes, verdict)
    print("\n".join(lines))
    (folder / "summary.txt").write_text("\n".join(lines) + "\n")
    return 0 if lines[-1].startswith("  result: OK") else 1


def _start_chaos(run: Run) -> asyncio.Task[None]:
    events = run.folder / "chaos.log"
    run.chaos = chaos.Chaos(run.children, run.services.stack, events, started=run.started)
    faults = chaos.schedule(
        run.args.replicas, local_stack=run.services.stack is not None, seed=run.args.seed
    )
    duration = run.args.duration or 120.0
    return asyncio.create_task(chaos.inject(run.chaos, faults, duration))


async def _end_chaos(task: asyncio.Task[None]) -> None:
    """A fault still running is let finish (a frozen process is resumed, a killed one
    restarted) before the services are stopped."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(task), 90)
    task.cancel()


def _services_from_env() -> Services:
    kafka = KafkaSettings.from_env(os.environ)
    s3 = S3Settings.from_env(os.environ)
    ensure_bucket(make_client(s3), s3.bucket)
    return Services(kafka, {})


def main(args: argparse.Namespace) -> int:
    # The view's own Kafka clients would print each failed connection while a broker is
    # restarted; the services' logs hold what matters.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = StackSettings.from_env(os.environ)
    runs = Path(os.environ.get("CALLSTREAM_RUN_DIR") or settings.root / "runs")
    folder = runs / time.strftime("%Y%m%d-%H%M%S")
    if args.services_from_env:
        try:
            services = _services_from_env()
        except (ConfigError, BotoCoreError, ClientError) as err:
            print(f"callstream run: {err}", file=sys.stderr)
            return 2
        folder.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_run(args, services, folder))
    print("callstream run: starting the local stack (Kafka, S3)…", flush=True)
    stack = Stack(settings)
    try:
        started = stack.up()
    except StackError as err:
        print(f"callstream run: {err}", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    try:
        services = Services(settings.kafka_settings(), settings.env_exports(), settings)
        return asyncio.run(_run(args, services, folder))
    finally:
        if started and not args.keep_stack:  # leave a stack that was already running alone
            print("callstream run: " + ", ".join(stack.down()) + " (the local stack it started)")


COMMAND = Command("run", "the whole pipeline with the simulator, live", main, options, __doc__)
