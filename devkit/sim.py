"""The simulator's tenants, and a running simulator on a real loopback port."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from devkit.ports import free_port
from yunhu.sim.api import Simulator
from yunhu.sim.run import serving
from yunhu.sim.settings import SimSettings
from yunhu.tenants import Tenant, parse_tenants

TENANTS_TOML = """
[[tenant]]
companycode = "9024"
appid = "sim-appid-9024"
accesskey = "sim-accesskey-9024"
callback_key = "sim-callback-key-9024"
download_hosts = ["127.0.0.1"]

[[tenant]]
companycode = "7001"
appid = "sim-appid-7001"
accesskey = "sim-accesskey-7001"
callback_key = "sim-callback-key-7001"
download_hosts = ["127.0.0.1"]

[[tenant]]
companycode = "20000013"
appid = "sim-appid-20000013"
accesskey = "sim-accesskey-20000013"
callback_key = "sim-callback-key-20000013"
download_hosts = ["127.0.0.1"]
"""


def sim_tenants() -> dict[str, Tenant]:
    return parse_tenants(TENANTS_TOML, "tests")


def sim_tenants_toml(api_url: str) -> str:
    """The simulator's tenants as a tenants file for a callstream process, with the
    simulator's API at `api_url`."""
    return TENANTS_TOML.replace("download_hosts", f'api_url = "{api_url}"\ndownload_hosts')


@contextlib.asynccontextmanager
async def running_simulator(settings: SimSettings | None = None) -> AsyncIterator[Simulator]:
    settings = dataclasses.replace(settings or SimSettings(seed=7), port=free_port())
    simulator = Simulator(settings, sim_tenants())
    async with serving(simulator):
        yield simulator
