"""Receiver benchmark: callstream ingest beside its baselines, in one run.

The baselines (`bench/servers/`): the app-route ceiling and the bare low-level handler
(aiohttp answering without Kafka), the floor (the low-level handler that produces each
body keyed by its call uuid and answers after Kafka's acknowledgement, nothing else) and
the naive receiver (aiokafka's `send_and_wait` per request).

For each server, wrk drives the same duration and connections with the platform's
example call-state body (a fresh call uuid per request), against the local Kafka.
Printed per server: requests/s, p50/p99 latency, and the server's CPU microseconds
per request (from /proc, user+system); then the ratios the targets are set on.
The servers take turns for several rounds and the medians are compared: on a small
shared VM one run of the same code varies by half again, so single runs mislead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from callstream.dev.stack import StackSettings
from common.topics import Topics
from devkit.bench_cli import stack_up
from devkit.ports import free_port
from devkit.sim import TENANTS_TOML, sim_tenants
from devkit.topics import create_topics, delete_topics

ROOT = Path(__file__).resolve().parents[1]
BODY = ROOT / "yunhu" / "examples" / "callstate.json"
LUA = Path(__file__).with_name("wrk_callstate.lua")
TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int

    def line(self) -> str:
        return (
            f"{self.name:10} {self.rps:9.0f} req/s   p50 {self.p50_ms:6.2f} ms   "
            f"p99 {self.p99_ms:6.2f} ms   {self.cpu_us:6.1f} µs CPU/request   "
            f"non-2xx/errors {self.errors}"
        )


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _ms(text: str) -> float:
    if re.fullmatch(r"([\d.]+)(us|ms|s)", text) is None:
        raise ValueError(f"wrk printed a latency of {text!r}")
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, seconds: int, connections: int) -> tuple[int, float, float, float, int]:
    argv = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    env = {**os.environ, "CALLSTREAM_BENCH_BODY": str(BODY)}
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return requests, rps, p50, p99, errors


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.post(url, data=BODY.read_bytes()) as response:
                    if response.status == 200 and await _publishing_directly(session, url):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200 with Kafka connected")


async def _publishing_directly(session: aiohttp.ClientSession, url: str) -> bool:
    """False while callstream still spools (its first callbacks arrive before Kafka is
    connected); the baselines have no /readyz and publish directly from the start."""
    async with session.get(url.split("/callbacks/", maxsplit=1)[0] + "/readyz") as response:
        if response.status == 404:
            return True
        return bool((await response.json()).get("kafka") == "direct")


def measure(
    name: str, argv: list[str], env: dict[str, str], url: str, *, seconds: int, connections: int
) -> Result:
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    try:
        asyncio.run(wait_ready(url, proc))
        _wrk(url, 3, connections)  # warm-up: connections, JIT-free but caches and batches
        before = cpu_ticks(proc.pid)
        requests, rps, p50, p99, errors = _wrk(url, seconds, connections)
        cpu = (cpu_ticks(proc.pid) - before) * TICK_US
    finally:
        proc.terminate()
        proc.wait(30)
    return Result(name, requests, rps, p50, p99, cpu / max(requests, 1), errors)


def run(
    seconds: int, connections: int, rounds: int, only: set[str] | None = None
) -> list[list[Result]]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench.receiver needs wrk (Debian: apt-get install wrk)")
    with ingest_setup() as (settings, suffix, ingest_env):
        return _rounds(
            settings,
            suffix,
            ingest_env,
            rounds,
            seconds=seconds,
            connections=connections,
            only=only,
        )


@contextlib.contextmanager
def ingest_setup() -> Iterator[tuple[StackSettings, str, dict[str, str]]]:
    """The local stack up, raw topics of a fresh suffix and the simulator's tenants,
    deleted afterwards: the stack's settings, the suffix, and `callstream ingest`'s
    environment but for its port."""
    settings = StackSettings.from_env(os.environ)
    stack_up(settings)
    suffix = f"bench-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_suffix(suffix)
    kafka = settings.kafka_settings()
    asyncio.run(create_topics(kafka, topics, partitions=6))
    try:
        with tempfile.TemporaryDirectory() as folder:
            tenants = Path(folder) / "tenants.toml"
            tenants.write_text(TENANTS_TOML)
            yield (
                settings,
                suffix,
                {
                    "CALLSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                    "CALLSTREAM_TOPIC_SUFFIX": suffix,
                    "CALLSTREAM_TENANTS": str(tenants),
                    "CALLSTREAM_INGEST_HOST": "127.0.0.1",
                    "CALLSTREAM_INGEST_SPOOL_DIR": str(Path(folder) / "spool"),
                    "CALLSTREAM_LOG_LEVEL": "WARNING",
                },
            )
    finally:
        asyncio.run(delete_topics(kafka, list(topics.all())))  # a broker piling them up slows


def _rounds(
    settings: StackSettings,
    suffix: str,
    ingest_env: dict[str, str],
    rounds: int,
    *,
    seconds: int,
    connections: int,
    only: set[str] | None,
) -> list[list[Result]]:
    tenant = sim_tenants()["9024"]
    path = f"/callbacks/9024/callstate?key={tenant.callback_key}"
    python = sys.executable
    ports = [free_port() for _ in range(5)]
    ingest_env = {**ingest_env, "CALLSTREAM_INGEST_PORT": str(ports[4])}
    servers = [
        ("ceiling", [python, "-m", "bench.servers.ceiling", str(ports[0])], {}),
        ("lowlevel", [python, "-m", "bench.servers.lowlevel", str(ports[1])], {}),
        (
            "naive",
            [
                python,
                "-m",
                "bench.servers.naive",
                str(ports[2]),
                settings.kafka_bootstrap,
                suffix,
            ],
            {},
        ),
        (
            "floor",
            [
                python,
                "-m",
                "bench.servers.floor",
                str(ports[3]),
                settings.kafka_bootstrap,
                suffix,
            ],
            {},
        ),
        ("callstream", [python, "-m", "callstream", "ingest"], ingest_env),
    ]
    chosen = [
        (name, argv, env, f"http://127.0.0.1:{port}{path}")
        for (name, argv, env), port in zip(servers, ports, strict=True)
        if only is None or name in only
    ]
    all_rounds = []
    for index in range(rounds):
        results = [
            measure(n, a, e, url, seconds=seconds, connections=connections)
            for n, a, e, url in chosen
        ]
        print(f"round {index + 1}:", *(r.line() for r in results), sep="\n  ", flush=True)
        all_rounds.append(results)
    return all_rounds


def median(rounds: list[list[Result]]) -> list[Result]:
    names = [r.name for r in rounds[0]]
    medians = []
    for name in names:
        mine = [r for results in rounds for r in results if r.name == name]
        medians.append(
            Result(
                name,
                int(statistics.median(r.requests for r in mine)),
                statistics.median(r.rps for r in mine),
                statistics.median(r.p50_ms for r in mine),
                statistics.median(r.p99_ms for r in mine),
                statistics.median(r.cpu_us for r in mine),
                sum(r.errors for r in mine),
            )
        )
    return medians


@dataclass
class Ratios:
    """Per round, callstream's CPU per request over the ceiling's, the bare low-level
    handler's and the floor's; the floor's over the low-level handler's; callstream's
    requests/s and the floor's over the naive receiver's. The servers of one round ran
    minutes apart on the same machine, so a round's ratio is steadier than a ratio of
    medians taken across rounds."""

    cpu: list[float]
    cpu_low: list[float]
    cpu_floor: list[float]
    floor_low: list[float]
    rps: list[float]
    floor_rps: list[float]


def paired_ratios(rounds: list[list[Result]]) -> Ratios:
    ratios = Ratios([], [], [], [], [], [])
    for results in rounds:
        by = {r.name: r for r in results}
        ours = by["callstream"].cpu_us
        ratios.cpu.append(ours / by["ceiling"].cpu_us)
        ratios.cpu_low.append(ours / by["lowlevel"].cpu_us)
        ratios.cpu_floor.append(ours / by["floor"].cpu_us)
        ratios.floor_low.append(by["floor"].cpu_us / by["lowlevel"].cpu_us)
        ratios.rps.append(by["callstream"].rps / by["naive"].rps)
        ratios.floor_rps.append(by["floor"].rps / by["naive"].rps)
    return ratios


def report(rounds: list[list[Result]], seconds: int, connections: int) -> str:
    results = median(rounds)
    ours = {r.name: r for r in results}["callstream"]
    ratios = paired_ratios(rounds)

    def ratio(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"

    lines = [
        f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; wrk -t2 -c{connections} -d{seconds}s; "
        f"medians of {len(rounds)} rounds",
        *(r.line() for r in results),
        "median of the rounds' ratios (range):",
        f"CPU per accepted callback vs ceiling: {ratio(ratios.cpu)} (target <= 1.3x)",
        f"CPU per accepted callback vs lowlevel: {ratio(ratios.cpu_low)} (target <= 1.6x)",
        f"requests/s vs naive receiver:         {ratio(ratios.rps)} (target >= 1.5x)",
        f"p99 at {connections} connections:            {ours.p99_ms:.1f} ms (target <= 20 ms)",
        "what answering after Kafka's acknowledgement costs by itself:",
        f"floor CPU vs lowlevel:                {ratio(ratios.floor_low)}",
        f"callstream CPU vs floor:              {ratio(ratios.cpu_floor)}",
        f"floor requests/s vs naive receiver:   {ratio(ratios.floor_rps)}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench receiver")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", action="append", help="measure only this server (repeatable)")
    args = parser.parse_args(argv if argv is not None else [])
    rounds = run(args.seconds, args.connections, args.rounds, set(args.only) if args.only else None)
    if args.only:
        print("medians:", *(r.line() for r in median(rounds)), sep="\n  ")
    else:
        print(report(rounds, args.seconds, args.connections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
