"""The CLI registry: every registered command parses and reaches its own main; without
the developer tools (the image) the service commands are all still there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from callstream import cli

ROOT = Path(__file__).resolve().parents[3]


def _commands(parser: object) -> set[str]:
    text = parser.format_help()  # type: ignore[attr-defined]
    return {c for c in ("ingest", "enrich", "recordings", "lake", "stack", "run") if c in text}


def test_every_registered_command_reaches_its_main() -> None:
    parser = cli.build_parser()
    for command in (*cli.COMMANDS, *cli.dev_commands()):
        args = parser.parse_args([command.name, *_required(command.name)])
        assert args.handler is command.main, command.name


def _required(name: str) -> list[str]:
    """The positional arguments a command cannot go without."""
    needed = {
        "bucket": ["ensure"],
        "topics": ["verify"],
        "replay": ["deadletter"],
        "image": ["test"],
    }
    return needed.get(name, ["up"] if name == "stack" else [])


def test_without_the_developer_tools_the_services_are_all_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "callstream.dev" else real(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    names = {c.name for c in cli.COMMANDS}
    assert cli.dev_commands() == ()
    assert {"ingest", "enrich", "recordings", "lake", "sim", "topics"} <= names
    assert not names & {"stack", "run", "image"}
    assert _commands(cli.build_parser()) == {"ingest", "enrich", "recordings", "lake"}


def test_no_module_types_against_argparse_internals() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "callstream").rglob("*.py")
        if "_SubParsersAction" in p.read_text()
    ]
    assert offenders == []
