"""`--print-config`: a service's effective settings as JSON, secrets masked, then exit."""

from __future__ import annotations

import argparse

import orjson

from common.settings import describe


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--print-config", action="store_true",
        help="print the effective settings (secrets masked) and exit",
    )  # fmt: skip


def print_config(*settings: object) -> int:
    print(orjson.dumps(describe(*settings), option=orjson.OPT_INDENT_2).decode())
    return 0
