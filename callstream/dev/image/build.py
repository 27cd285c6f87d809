"""The Debian base (debootstrap, then `docker import`; kept between runs) and the image
built on it from wheels downloaded on the host (builds here cannot reach PyPI with a
certificate they trust)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from callstream.dev.image.engine import ImageError, docker

BASE_TAG = "callstream-base:bookworm"
IMAGE_TAG = "callstream:local"
MIRROR = "http://deb.debian.org/debian"
# Python 3.11 at `python`, as in python:3.11-slim.
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"


def debian_base(env: dict[str, str], tag: str = BASE_TAG, packages: str = BASE_PACKAGES) -> str:
    """A minimal Debian image with `packages`, made first if the engine does not have it."""
    if docker(env, "image", "inspect", tag).returncode == 0:
        return tag
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="callstream-base-") as root:
        subprocess.run(  # noqa: S603
            [
                debootstrap,
                "--variant=minbase",
                f"--include={packages}",
                "bookworm",
                root,
                MIRROR,
            ],
            check=True,
            capture_output=True,
        )
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)  # noqa: S603,S607
        imported = docker(env, "import", "-", tag, stdin=tar.stdout)
        tar.wait()
    if imported.returncode != 0:
        raise ImageError(f"docker import failed: {imported.stderr.strip()}")
    return tag


def pip_download(into: Path, *what: str) -> None:
    """`pip download WHAT` into `into`, on the host (where PyPI's certificate is trusted)."""
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *what, "-d", str(into)], check=True)  # noqa: S603


def download_wheels(project: Path) -> Path:
    """Every locked package, and the build backend, into deploy/wheels/."""
    wheels = project / "deploy" / "wheels"
    pip_download(wheels, "--require-hashes", "-r", str(project / "requirements.lock"))
    pip_download(wheels, "hatchling>=1.25")
    return wheels


def docker_build(
    env: dict[str, str], dockerfile: Path, context: Path, tag: str, args: dict[str, str]
) -> None:
    """`docker build` with the host's network and these build arguments."""
    built = docker(
        env,
        "build", "--network=host", "--file", str(dockerfile),
        *(f"--build-arg={name}={value}" for name, value in args.items()),
        "--tag", tag, str(context),
    )  # fmt: skip
    if built.returncode != 0:
        raise ImageError(f"building {tag} failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")


def build_image(env: dict[str, str], project: Path, base: str, tag: str = IMAGE_TAG) -> float:
    """`docker build` of deploy/Dockerfile on `base`, offline; the seconds it took."""
    download_wheels(project)
    started = time.monotonic()
    args = {"BASE": base, "PIP_NO_INDEX": "1"}
    docker_build(env, project / "deploy" / "Dockerfile", project, tag, args)
    return time.monotonic() - started
