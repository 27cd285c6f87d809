"""`callstream image build` makes the service image on a Debian base built here
(debootstrap; no registry needed) from wheels downloaded on the host; `callstream image
test` then runs every service from it against the local stack (or, with
`--services-from-env`, the Kafka and S3 that CALLSTREAM_KAFKA_BOOTSTRAP and
CALLSTREAM_S3_* name) — `callstream run --image` end to end, and each Kubernetes
manifest's user, read-only root, volumes, probes and SIGTERM — and prints what it
checked. `callstream image services` builds the Kafka and S3 images (deploy/kafka,
deploy/s3) the same way; `callstream image compose` runs deploy/compose.yaml on them
(every service healthy, traffic through, each service stopped with exit 0). A Docker
engine that answers is used; otherwise, as root, dockerd is started (state under
.stack/docker) and stopped afterwards."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from callstream.command import Command
from callstream.dev.image.build import IMAGE_TAG, build_image, debian_base
from callstream.dev.image.check import image_user, manifest_checks
from callstream.dev.image.compose import check_compose
from callstream.dev.image.engine import ImageError, docker_engine
from callstream.dev.image.services import kafka_image, s3_image
from callstream.dev.stack import Stack, StackSettings
from callstream.dev.stack.settings import PROJECT_ROOT

SERVICE_VARIABLES = frozenset(StackSettings().env_exports())


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "test", "services", "compose"])
    parser.add_argument("--tag", default=IMAGE_TAG)
    parser.add_argument(
        "--base", default="", help="a base image to use instead of the Debian one made here"
    )
    parser.add_argument(
        "--services-from-env",
        action="store_true",
        help="test against the Kafka and S3 that CALLSTREAM_* name, not the local stack",
    )


def main(args: argparse.Namespace) -> int:
    settings = StackSettings.from_env(os.environ)
    began = time.monotonic()
    try:
        with docker_engine(settings.root / "docker") as env:
            if args.action == "services":
                print(f"images {kafka_image(env, settings)} and {s3_image(env, settings)} built")
            elif args.action == "compose":
                for line in check_compose(env, settings):
                    print(line, flush=True)
            else:
                base = args.base or debian_base(env)
                took = build_image(env, PROJECT_ROOT, base, args.tag)
                print(f"image {args.tag} built on {base} in {took:.0f} s", flush=True)
            if args.action == "test":
                _test(env, args.tag, settings, args.services_from_env)
    except (ImageError, subprocess.CalledProcessError) as err:
        print(f"callstream image: {err}", file=sys.stderr)
        return 1
    print(f"callstream image {args.action}: OK in {time.monotonic() - began:.0f} s")
    return 0


def _test(env: dict[str, str], tag: str, settings: StackSettings, from_env: bool) -> None:
    print(f"runs as uid {image_user(env, tag)}", flush=True)
    stack = Stack(settings)
    started = False if from_env else bool(stack.up())
    try:
        _end_to_end(env, tag, from_env)
        services = _services_from_env() if from_env else settings.env_exports()
        tenants = PROJECT_ROOT / "deploy" / "tenants.example.toml"
        for line in manifest_checks(env, tag, PROJECT_ROOT, services, tenants):
            print(line, flush=True)
    finally:
        if started:
            stack.down()


def _services_from_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name in SERVICE_VARIABLES}


def _end_to_end(env: dict[str, str], tag: str, from_env: bool) -> None:
    """`callstream run` with every service (and the simulator) from the image."""
    argv = [
        sys.executable,
        "-m",
        "callstream",
        "run",
        "--image",
        tag,
        "--duration",
        "30",
        "--services-from-env" if from_env else "--keep-stack",
    ]
    done = subprocess.run(  # noqa: S603 - our own CLI
        argv, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0:
        raise ImageError(
            "callstream run --image failed:\n" + "\n".join(lines[-30:]) + done.stderr[-2000:]
        )
    print("callstream run --image, 30 s of simulated traffic:", flush=True)
    settled = next(i for i, line in enumerate(lines) if "settled after" in line)
    for line in lines[settled:]:
        print(f"  {line.strip()}", flush=True)


COMMAND = Command(
    name="image",
    help="build the service image here, and prove it (every service run from it)",
    main=main,
    options=options,
    description=__doc__,
)
