"""A `callstream NAME …` sub-command: what the CLI registry (`callstream.cli`) lists."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


def no_options(parser: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    main: Callable[[argparse.Namespace], int]
    options: Callable[[argparse.ArgumentParser], None] = no_options
    description: str | None = None  # the command's module docstring, shown by --help


def print_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective settings (secrets masked) and exit",
    )
