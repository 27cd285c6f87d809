"""`callstream sim`: the platform simulator (token API, downloads, callback traffic)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from callstream.command import Command
from yunhu.sim.poster import TrafficSettings
from yunhu.sim.run import run
from yunhu.sim.settings import Faults, SimSettings
from yunhu.tenants import TenantsError, load_tenants


def _denial(text: str) -> tuple[str, int]:
    code, _, ret = text.partition("=")
    if not ret.isdigit() or int(ret) not in {601, 602, 603, 604}:
        raise argparse.ArgumentTypeError("expected COMPANYCODE=601..604")
    return code, int(ret)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenants", type=Path, help="tenants TOML file (default $CALLSTREAM_TENANTS)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--public-url", default="", help="base URL of download links")
    p.add_argument("--tz", default="Asia/Shanghai", help="the platform's time zone")
    p.add_argument("--token-ttl", type=float, default=12 * 3600.0, help="seconds")
    p.add_argument("--link-ttl", type=float, default=300.0, help="seconds")
    faults = p.add_argument_group("faults (probabilities per API request)")
    faults.add_argument("--fault-ret500", type=float, default=0.0)
    faults.add_argument("--fault-token-invalid", type=float, default=0.0)
    faults.add_argument("--fault-status1003", type=float, default=0.0)
    faults.add_argument("--fault-slow", type=float, default=0.0)
    faults.add_argument("--slow-seconds", type=float, default=2.0)
    faults.add_argument("--fault-expired-link", type=float, default=0.0)
    faults.add_argument("--not-ready-seconds", type=float, default=0.0)
    faults.add_argument(
        "--deny",
        type=_denial,
        action="append",
        default=[],
        metavar="CODE=RET",
        help="answer this tenant's logins with ret 601-604",
    )
    traffic = p.add_argument_group("traffic")
    traffic.add_argument("--target", help="receiver base URL to post callbacks to")
    traffic.add_argument("--rate", type=float, default=5.0, help="calls per second")
    traffic.add_argument("--duration", type=float, help="seconds of traffic")
    traffic.add_argument("--calls", type=int, help="number of calls")
    traffic.add_argument("--seed", type=int)
    traffic.add_argument("--sent-log", type=Path, help="NDJSON of every callback answered 2xx")
    traffic.add_argument(
        "--verbatim",
        action="store_true",
        help="post the API document's two example payloads byte for byte",
    )
    traffic.add_argument(
        "--fault-malformed",
        type=float,
        default=0.0,
        help="per call, the probability of also posting the document's malformed CDR",
    )
    traffic.add_argument(
        "--fault-withhold-cdr",
        type=float,
        default=0.0,
        help="per call, the probability that its CDR is never posted (a board anomaly)",
    )
    traffic.add_argument(
        "--live",
        action="store_true",
        help="post each callback when it happens (calls ring, then talk), not at the call's end",
    )
    traffic.add_argument(
        "--exit-when-done", action="store_true", help="stop serving once the traffic is sent"
    )


def main(args: argparse.Namespace) -> int:
    tenants_path = args.tenants or os.environ.get("CALLSTREAM_TENANTS")
    if not tenants_path:
        print("callstream sim: give --tenants FILE or set CALLSTREAM_TENANTS", file=sys.stderr)
        return 2
    try:
        tenants = load_tenants(Path(tenants_path))
        faults = Faults(
            ret500=args.fault_ret500,
            token_invalid=args.fault_token_invalid,
            status1003=args.fault_status1003,
            slow=args.fault_slow,
            slow_seconds=args.slow_seconds,
            expired_link=args.fault_expired_link,
            not_ready_seconds=args.not_ready_seconds,
        )
    except (TenantsError, ValueError) as err:
        print(f"callstream sim: {err}", file=sys.stderr)
        return 2
    settings = SimSettings(
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        token_ttl=args.token_ttl,
        link_ttl=args.link_ttl,
        tz=ZoneInfo(args.tz),
        faults=faults,
        denials=dict(args.deny),
        seed=args.seed,
    )
    traffic = None
    if args.target:
        if args.calls is None and args.duration is None and not args.verbatim:
            print("callstream sim: --target needs --calls or --duration", file=sys.stderr)
            return 2
        traffic = TrafficSettings(
            target=args.target,
            rate=args.rate,
            calls=args.calls,
            duration=args.duration,
            seed=args.seed,
            sent_log=args.sent_log,
            verbatim=args.verbatim,
            malformed=args.fault_malformed,
            withhold_cdr=args.fault_withhold_cdr,
            live=args.live,
        )
    return asyncio.run(run(settings, tenants, traffic, exit_when_done=args.exit_when_done))


COMMAND = Command("sim", "the platform simulator", main, options, __doc__)
