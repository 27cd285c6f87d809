"""What the Kubernetes manifests promise, checked on the image: each service runs as its
manifest says (user, read-only root file system, its volumes), answers its probes on the
manifest's ports, and exits 0 within the manifest's grace period on SIGTERM — ingest
with a callback in flight, which is still answered 200."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from callstream.dev.image.engine import ImageError, docker
from yunhu.sim.traffic import callbacks, plan_call

SERVICES = ("ingest", "enrich", "recordings", "lake", "board")
TENANT, CALLBACK_KEY = "9024", "demo-callback-key-9024-change-me"  # deploy/tenants.example.toml


@dataclass(frozen=True)
class Workload:
    name: str
    args: list[str]
    user: int
    read_only: bool
    grace: int
    probes: list[tuple[str, int]]  # (path, port)
    mounts: list[tuple[str, str]]  # (volume kind, mount path)
    config: dict[str, str]  # the ConfigMap's paths the image must find (CALLSTREAM_TENANTS)


def workload(manifest: Path, config: dict[str, str]) -> Workload:
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    spec = next(d for d in docs if d["kind"] in {"Deployment", "StatefulSet"})
    pod = spec["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    probes = []
    for key in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container.get(key, {}).get("httpGet")
        if get:
            probes.append((get["path"], int(ports.get(get["port"], get["port"]))))
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    kinds = {v["name"]: next(k for k in v if k != "name") for v in pod.get("volumes", [])}
    mounts = [(kinds[m["name"]], m["mountPath"]) for m in container.get("volumeMounts", [])]
    return Workload(
        manifest.stem,
        list(container.get("args", [])),
        int(security["runAsUser"]),
        bool(security.get("readOnlyRootFilesystem")),
        int(pod.get("terminationGracePeriodSeconds", 30)),
        list(dict.fromkeys(probes)),  # readiness and liveness often ask the same
        mounts,
        {"CALLSTREAM_TENANTS": config["CALLSTREAM_TENANTS"]},
    )


def config_map(k8s: Path) -> dict[str, str]:
    docs = yaml.safe_load_all((k8s / "config.yaml").read_text())
    found: dict[str, str] = next(d for d in docs if d and d["kind"] == "ConfigMap")["data"]
    return found


def check_workload(
    env: dict[str, str], image: str, work: Workload, services: dict[str, str], tenants: Path
) -> str:
    """Run it as its manifest says, probe it, stop it; one line of what held."""
    name = f"callstream-check-{work.name}-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="callstream-volume-") as scratch:
        flags = _flags(work, services, tenants, Path(scratch))
        started = docker(env, "run", "--detach", f"--name={name}", *flags, image, *work.args)
        if started.returncode != 0:
            raise ImageError(f"{work.name}: docker run failed: {started.stderr.strip()}")
        try:
            _probe(env, name, work)
            in_flight = _callback_in_flight(work) if work.name == "ingest" else None
            began = time.monotonic()
            docker(env, "kill", "--signal=TERM", name)
            answer = _finish(in_flight) if in_flight is not None else ""
            code, took = _exit_code(env, name, work.grace), time.monotonic() - began
            if code != 0:
                raise ImageError(f"{work.name}: exit {code} on SIGTERM\n{_logs(env, name)}")
        finally:
            docker(env, "rm", "--force", name)
    if in_flight is not None and not answer.startswith("HTTP/1.1 200"):
        raise ImageError(f"{work.name}: the callback in flight got {answer[:60]!r}")
    probes = ", ".join(f"{path} on {port}" for path, port in work.probes)
    during = "; the callback in flight answered 200" if in_flight is not None else ""
    return (
        f"{work.name:10} uid {work.user}, read-only root {work.read_only}, "
        f"answered {probes}; exit 0 {took:.1f} s after SIGTERM (grace {work.grace} s){during}"
    )


def _flags(work: Workload, services: dict[str, str], tenants: Path, scratch: Path) -> list[str]:
    flags = ["--network=host", f"--user={work.user}"]
    tenants_in_image = Path(work.config["CALLSTREAM_TENANTS"])
    if work.read_only:
        flags.append("--read-only")
    for kind, path in work.mounts:
        if kind in {"secret", "configMap"} and path == str(tenants_in_image.parent):
            secret = scratch / "secret"
            secret.mkdir(mode=0o755)
            (secret / tenants_in_image.name).write_bytes(tenants.read_bytes())
            (secret / tenants_in_image.name).chmod(0o644)
            flags.append(f"--volume={secret}:{path}:ro")
        elif path == "/tmp":  # noqa: S108 - the container's own /tmp, a tmpfs
            flags.append("--tmpfs=/tmp")
        else:  # an emptyDir: writable, owned by nobody in particular
            own = scratch / path.strip("/").replace("/", "-")
            own.mkdir(mode=0o777)
            own.chmod(0o777)
            flags.append(f"--volume={own}:{path}")
    for key, value in {**services, **work.config}.items():
        flags.append(f"--env={key}={value}")
    return flags


def _probe(env: dict[str, str], name: str, work: Workload) -> None:
    deadline = time.monotonic() + 90
    pending = list(work.probes)
    while pending and time.monotonic() < deadline:
        path, port = pending[0]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
                if answer.status == 200:
                    pending.pop(0)
                    continue
        except (urllib.error.URLError, OSError):
            pass
        if docker(env, "inspect", "--format={{.State.Running}}", name).stdout.strip() != "true":
            break
        time.sleep(0.5)
    if pending:
        raise ImageError(f"{work.name}: no 200 from {pending[0]}\n{_logs(env, name)}")


def _logs(env: dict[str, str], name: str) -> str:
    """The container's last lines, for a failure's message."""
    logs = docker(env, "logs", "--tail=20", name)
    return logs.stdout + logs.stderr


@dataclass
class InFlight:
    sock: socket.socket
    rest: bytes  # of the body, sent after the SIGTERM


def _callback_in_flight(work: Workload) -> InFlight:
    """A CDR's head and half its body sent."""
    port = next(port for _, port in work.probes)
    plan = plan_call(random.Random(7), TENANT, 1, int(time.time()))  # noqa: S311 - test data
    cdr = next(c for c in callbacks(plan, ZoneInfo("Asia/Shanghai")) if c.kind == "cdr")
    head = (
        f"POST /callbacks/{TENANT}/cdr?key={CALLBACK_KEY} HTTP/1.1\r\nHost: callstream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(cdr.body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    half = len(cdr.body) // 2
    sock.sendall(head + cdr.body[:half])
    return InFlight(sock, cdr.body[half:])


def _finish(in_flight: InFlight) -> str:
    time.sleep(1)  # the SIGTERM has arrived: the rest of the body comes during the drain
    with in_flight.sock as sock:
        sock.sendall(in_flight.rest)
        return sock.recv(4096).decode(errors="replace")


def _exit_code(env: dict[str, str], name: str, grace: int) -> int:
    try:
        waited = docker(env, "wait", name, timeout=grace)
    except subprocess.TimeoutExpired as err:
        raise ImageError(f"{name}: still running {grace} s after SIGTERM") from err
    return int(waited.stdout.strip() or -1)


def manifest_checks(
    env: dict[str, str], image: str, project: Path, services: dict[str, str], tenants: Path
) -> list[str]:
    k8s = project / "deploy" / "k8s"
    config = config_map(k8s)
    return [
        check_workload(env, image, workload(k8s / f"{name}.yaml", config), services, tenants)
        for name in SERVICES
    ]


def image_user(env: dict[str, str], image: str) -> str:
    found = docker(env, "run", "--rm", "--entrypoint=id", image, "-u").stdout.strip()
    if found != "10001":
        raise ImageError(f"the image runs as uid {found!r}, not 10001")
    return found
