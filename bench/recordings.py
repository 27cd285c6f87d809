"""Recordings benchmark: peak RSS while archiving a 500 MB recording, and archive
throughput against a direct download-then-upload of the same files, in one run.

The simulator serves the recordings from this process; each archiving run is a child
process (bench/recordings_child.py) so that its peak RSS is measured alone."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import uuid

import orjson

from callstream.dev.stack import StackSettings
from devkit.bench_cli import stack_up
from devkit.ports import free_port
from devkit.sim import sim_tenants
from yunhu.sim.api import Simulator
from yunhu.sim.audio import SECOND_BYTES
from yunhu.sim.run import serving
from yunhu.sim.settings import SimSettings


def _serve(simulator: Simulator, ready: threading.Event, stop: threading.Event) -> None:
    async def main() -> None:
        async with serving(simulator):
            ready.set()
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def _child(
    mode: str, sim: Simulator, filename: str, key: str, env: dict[str, str]
) -> dict[str, float]:
    tenant = sim.tenants["9024"]
    argv = [
        sys.executable,
        "-m",
        "bench.recordings_child",
        mode,
        sim.settings.base_url,
        tenant.appid,
        tenant.accesskey,
        filename,
        key,
    ]
    out = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, check=True)
    result: dict[str, float] = orjson.loads(out.stdout.splitlines()[-1])
    return result


def run(big_mb: int, files: int, file_mb: int) -> str:
    stack = StackSettings.from_env(os.environ)
    stack_up(stack)
    env = dict(stack.env_exports())
    prefix = f"bench/{uuid.uuid4().hex[:8]}/"
    sim = Simulator(SimSettings(port=free_port(), link_ttl=3600), sim_tenants())
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_serve, args=(sim, ready, stop), daemon=True)
    thread.start()
    ready.wait(10)
    lines = []
    try:
        big = f"bench/9024/big-{big_mb}mb.wav"
        sim.add_recording(big, "9024", big_mb * 1_000_000 // SECOND_BYTES)
        streamed = _child("stream", sim, big, f"{prefix}big.wav", env)
        lines.append(
            f"{streamed['bytes'] / 1e6:.0f} MB recording archived by streaming: peak RSS "
            f"{streamed['max_rss_kb'] / 1024:.0f} MiB (target < 100 MiB), "
            f"{streamed['bytes'] / 1e6 / streamed['seconds']:.0f} MB/s"
        )
        rates: dict[str, list[float]] = {"stream": [], "direct": []}
        rss: dict[str, list[float]] = {"stream": [], "direct": []}
        for index in range(files):
            name = f"bench/9024/file-{index}.wav"
            sim.add_recording(name, "9024", file_mb * 1_000_000 // SECOND_BYTES)
            for mode in ("stream", "direct"):
                got = _child(mode, sim, name, f"{prefix}{mode}-{index}.wav", env)
                rates[mode].append(got["bytes"] / 1e6 / got["seconds"])
                rss[mode].append(got["max_rss_kb"] / 1024)
        lines.extend(
            f"{mode:6} {files} x {file_mb} MB: median {statistics.median(rates[mode]):.0f} "
            f"MB/s, peak RSS median {statistics.median(rss[mode]):.0f} MiB"
            for mode in ("stream", "direct")
        )
        ratio = statistics.median(rates["stream"]) / statistics.median(rates["direct"])
        lines.append(f"streaming archive vs direct download-then-upload: {ratio:.2f}x throughput")
    finally:
        stop.set()
        thread.join(10)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench recordings")
    parser.add_argument("--big-mb", type=int, default=500)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--file-mb", type=int, default=50)
    args = parser.parse_args(argv if argv is not None else [])
    print(run(args.big_mb, args.files, args.file_mb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
