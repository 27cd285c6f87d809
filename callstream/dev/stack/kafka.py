"""Apache Kafka in KRaft mode, one node, its jars resolved from Maven Central by Maven."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from callstream.dev.stack.errors import StackError
from callstream.dev.stack.process import Managed, require_free_ports
from callstream.dev.stack.settings import HOST, StackSettings

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def managed(settings: StackSettings) -> Managed:
    return Managed("kafka", settings.root, marker=MAIN_CLASS)


def pom_path(settings: StackSettings) -> Path:
    return settings.project / "deploy" / "kafka" / "pom.xml"


def server_properties(settings: StackSettings) -> Path:
    """The broker's configuration template, shared with the Kafka image (deploy/kafka)."""
    return settings.project / "deploy" / "kafka" / "server.properties"


def kafka_version(settings: StackSettings) -> str:
    found = re.search(r"<kafka\.version>([^<]+)<", pom_path(settings).read_text())
    return found.group(1) if found else "unknown"


def resolve_jars(settings: StackSettings) -> Path:
    """The folder of the broker's jars; runs Maven once per pom and caches the result."""
    pom = pom_path(settings)
    if not pom.is_file():
        raise StackError(f"{pom} is missing; run callstream from a checkout of the project")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    lib = settings.cache / "kafka-lib" / digest
    if (lib / ".complete").is_file():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) not found on PATH; install it (apt-get install maven)")
    staging = lib.with_name(f"{digest}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise StackError(f"Maven could not resolve the Kafka jars ({pom}):\n{tail}")
    staging.rename(lib)
    (lib / ".complete").touch()
    return lib


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java not found on PATH; Kafka needs Java 17+ (apt-get install openjdk-17-jre)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)  # noqa: S603
    found = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if found is None or int(found.group(1)) < 17:
        raise StackError(f"Kafka needs Java 17+; {java} reports: {out.stderr.strip()[:200]}")
    return java


def data_dir(settings: StackSettings) -> Path:
    """The broker's log directory."""
    return settings.root / "kafka" / "data"


def deleting(settings: StackSettings) -> int:
    """How many partition logs of deleted topics the broker has yet to remove: Kafka
    renames them `…-delete` at once and removes them after `file.delete.delay.ms`, a
    minute by default."""
    try:
        return sum(entry.name.endswith("-delete") for entry in data_dir(settings).iterdir())
    except FileNotFoundError:
        return 0


def _write_config(settings: StackSettings) -> tuple[Path, Path]:
    data = data_dir(settings)
    home = data.parent
    data.mkdir(parents=True, exist_ok=True)
    server = home / "server.properties"
    template = server_properties(settings).read_text()
    server.write_text(
        template.format(
            host=HOST,
            bind=HOST,
            port=settings.kafka_port,
            controller_port=settings.controller_port,
            data=data,
        )
    )
    log4j = home / "log4j2.properties"
    log4j.write_text(LOG4J2_PROPERTIES.format(log=home / "server.log"))
    return server, log4j


def _cluster_id() -> str:
    """A Kafka cluster id (base64url of a UUID); never one starting with "-", which the
    storage tool's argument parser would take for an option."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate


def _format_storage(java: str, lib: Path, server: Path, data: Path) -> None:
    if (data / "meta.properties").is_file():
        return
    cluster_id = _cluster_id()
    argv = [java, "-cp", f"{lib}/*", STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(server)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise StackError(f"formatting Kafka storage in {data} failed:\n{done.stdout}{done.stderr}")


def ports(settings: StackSettings) -> dict[str, int]:
    """Every port the broker binds, by what it is for."""
    return {"kafka": settings.kafka_port, "kafka controller": settings.controller_port}


def start(settings: StackSettings) -> None:
    java = java_binary()
    lib = resolve_jars(settings)
    require_free_ports(
        ports(settings),
        "stop what holds it or set CALLSTREAM_STACK_KAFKA_PORT / CALLSTREAM_STACK_CONTROLLER_PORT",
    )
    server, log4j = _write_config(settings)
    _format_storage(java, lib, server, data_dir(settings))
    argv = [
        java,
        "-Xms256m",
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{lib}/*",
        MAIN_CLASS,
        str(server),
    ]
    managed(settings).start(argv, env={}, cwd=server.parent)


def wait_ready(settings: StackSettings, timeout: float) -> None:
    """Block until the broker answers a metadata request, or fail naming the logs."""
    proc = managed(settings)
    logs = f"{settings.root / 'kafka' / 'server.log'} and {proc.log_file}"
    what = f"Kafka at {settings.kafka_bootstrap}"
    proc.wait_answering(
        lambda: asyncio.run(answers_metadata(settings.kafka_bootstrap)), timeout, what, logs
    )


async def answers_metadata(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await admin.close()
    return bool(cluster.get("brokers"))
