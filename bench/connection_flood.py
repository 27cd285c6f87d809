"""Connection-flood benchmark: what connections that never finish their head cost the
receiver, with its bound on open connections and without it, in one run.

`callstream ingest` runs twice on the local Kafka: as deployed (the default
`CALLSTREAM_INGEST_MAX_CONNECTIONS`) and with a bound too high to be reached, which is how
it served before the bound. Each is sent the same floods: many connections, each with
part of a head that never ends, the smallest (half a request line) and the largest the
head limits let through. Printed per receiver and flood: how much its RSS grew, the
descriptors it holds, its CPU per connection (accepting it, and closing the oldest when
bounded), and whether a callback on a fresh connection is still accepted, and how fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from bench.receiver import TICK_US, cpu_ticks, ingest_setup, wait_ready
from devkit.ports import free_port
from devkit.proc import open_files, status_kib
from devkit.sim import sim_tenants
from ingest.settings import IngestSettings

BOUND = IngestSettings().max_connections
UNREACHED = 1_000_000
PATH = f"/callbacks/9024/callstate?key={sim_tenants()['9024'].callback_key}"
REQUEST_LINE = f"POST {PATH} HTTP/1.1\r\n".encode()
# Host and 30 more header lines of 2 040 bytes (name and value): 32 with Content-Length.
PADS = b"".join(b"X-Pad-%04d%s: %s\r\n" % (i, b"n" * 1010, b"a" * 1020) for i in range(30))
HEADS = {"smallest": REQUEST_LINE[:20], "largest": REQUEST_LINE + b"Host: t\r\n" + PADS}


@dataclass(frozen=True)
class Flood:
    receiver: str
    head: str
    connections: int
    rss_grown_kib: int
    descriptors: int
    cpu_us: float
    callback: int
    callback_ms: float

    def line(self) -> str:
        return (
            f"{self.receiver:9} {self.head:8} head ({len(HEADS[self.head]):6} bytes) "
            f"x {self.connections}: RSS +{self.rss_grown_kib / 1024:7.1f} MiB   "
            f"{self.descriptors:6} descriptors   {self.cpu_us:6.1f} µs CPU/connection   "
            f"a callback after it: {self.callback} in {self.callback_ms:.1f} ms"
        )


async def _callback(port: int) -> tuple[int, float]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"uuid": uuid.uuid4().hex, "companycode": "9024", "status": "ring"})
    head = b"Host: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    writer.write(REQUEST_LINE + head + body.encode())
    status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
    writer.close()
    return status, (time.monotonic() - started) * 1000


async def _flood(pid: int, port: int, head: bytes, count: int) -> tuple[int, int, float]:
    rss, ticks = status_kib(pid, "VmRSS"), cpu_ticks(pid)
    writers = []
    try:
        for index in range(count):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            writers.append(writer)
            if index % 200 == 199:
                await asyncio.sleep(0.05)  # the receiver reads what was sent
        await asyncio.sleep(1)
        cpu = (cpu_ticks(pid) - ticks) * TICK_US / count
        return status_kib(pid, "VmRSS") - rss, open_files(pid), cpu
    finally:
        for writer in writers:
            writer.close()
        await asyncio.sleep(1)


def measure(name: str, bound: int, env: dict[str, str], count: int) -> list[Flood]:
    port = free_port()
    env = {**os.environ, **env, "CALLSTREAM_INGEST_PORT": str(port)}
    env["CALLSTREAM_INGEST_MAX_CONNECTIONS"] = str(bound)
    argv = [sys.executable, "-m", "callstream", "ingest"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    floods = []
    try:
        asyncio.run(wait_ready(f"http://127.0.0.1:{port}{PATH}", proc))
        for head_name, head in HEADS.items():
            grown, descriptors, cpu = asyncio.run(_flood(proc.pid, port, head, count))
            status, took = asyncio.run(_callback(port))
            floods.append(Flood(name, head_name, count, grown, descriptors, cpu, status, took))
            print("  " + floods[-1].line(), flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    return floods


def run(count: int) -> list[Flood]:
    with ingest_setup() as (_, _, env):
        return measure("bounded", BOUND, env, count) + measure("unbounded", UNREACHED, env, count)


def report(floods: list[Flood]) -> str:
    lines = [f"bound: {BOUND} (CALLSTREAM_INGEST_MAX_CONNECTIONS)"]
    by = {(f.receiver, f.head): f for f in floods}
    for head in HEADS:
        ours, before = by["bounded", head], by["unbounded", head]
        lines.append(
            f"{head} heads: RSS growth bounded/unbounded "
            f"{ours.rss_grown_kib / max(before.rss_grown_kib, 1):.2f}x, "
            f"CPU per connection {ours.cpu_us / max(before.cpu_us, 1e-9):.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench connection_flood")
    parser.add_argument("--connections", type=int, default=3 * BOUND)
    args = parser.parse_args(argv if argv is not None else [])
    if args.connections + 256 > os.sysconf("SC_OPEN_MAX"):
        raise SystemExit(f"raise the open-files limit (ulimit -n) above {args.connections + 256}")
    print(report(run(args.connections)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
