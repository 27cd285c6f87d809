"""Lenient field types shared by the platform's wire Structs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from msgspec.structs import force_setattr

if TYPE_CHECKING:
    Ident = str
else:
    # Decoded as sent (JSON string or number); `stringify_idents` then turns a number into
    # its decimal string, so the attribute is always a str, as the type checker is told.
    Ident = str | int


def ident_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(cls) if f.type == (str | int))


def stringify_idents(struct: msgspec.Struct, names: tuple[str, ...]) -> None:
    """Call from `__post_init__` (works on frozen Structs)."""
    for name in names:
        value = getattr(struct, name)
        if type(value) is int:
            force_setattr(struct, name, str(value))
