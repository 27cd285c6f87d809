"""The one way a service reads its settings: a frozen dataclass declared next to the
service, each field from a `CALLSTREAM_*` variable, converted and checked by msgspec.

A field `flush_seconds` of a service whose prefix is `CALLSTREAM_LAKE_` is read from
`CALLSTREAM_LAKE_FLUSH_SECONDS`; `names` maps the few fields whose variable is named
otherwise. Unset or empty variables keep the default. Tuples are comma-separated lists.
A value that does not convert is a `ConfigError` naming the variable. Fields declared
with `repr=False` are secrets: `describe` masks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import msgspec

from common.config import ConfigError

T = TypeVar("T")
S = TypeVar("S")
MASK = "***"


def variable(field: str, prefix: str, names: Mapping[str, str]) -> str:
    return names.get(field) or f"{prefix}{field.upper()}"


def load(
    cls: type[T], env: Mapping[str, str], prefix: str, names: Mapping[str, str] | None = None
) -> T:
    """`cls` with every field whose variable is set read from `env`, the rest defaults."""
    names = names or {}
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = variable(field.name, prefix, names)
        value: Any = env.get(key, "")
        if not value:
            continue
        if getattr(hints[field.name], "__origin__", None) is tuple:
            value = [v.strip() for v in value.split(",") if v.strip()]
        try:  # one field at a time: a failure names its variable
            values[field.name] = msgspec.convert(
                value, hints[field.name], strict=False, dec_hook=_decode
            )
        except msgspec.ValidationError as err:
            raise ConfigError(f"{key}={env[key]!r}: {err}") from None
    return cls(**values)


def _decode(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read a {kind} from the environment")


def describe(*settings: object) -> dict[str, dict[str, Any]]:
    """The effective settings by type, as JSON-ready values, secrets masked."""
    out: dict[str, dict[str, Any]] = {}
    for item in settings:
        fields: dict[str, Any] = {}
        for field in dataclasses.fields(item):  # type: ignore[arg-type]
            value = getattr(item, field.name)
            if not field.repr and value is not None:
                value = MASK
            fields[field.name] = msgspec.to_builtins(value, enc_hook=str)
        out[type(item).__name__] = fields
    return out


def overridden(settings: S, **values: Any) -> S:
    """`settings` with the command-line values given (those not None) in place."""
    chosen = {name: value for name, value in values.items() if value is not None}
    return dataclasses.replace(settings, **chosen)  # type: ignore[type-var]
