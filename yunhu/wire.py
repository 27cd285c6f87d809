"""Lenient field types shared by the platform's wire Structs."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec
from msgspec.structs import force_setattr

if TYPE_CHECKING:
    Ident = str
else:
    # Decoded as sent (JSON string or number); `stringify_idents` then turns a number into
    # its decimal string, so the attribute is always a str, as the type checker is told.
    Ident = str | int


class IdentFields:
    """The `Ident` fields of a Struct, and a C-level getter of their values."""

    __slots__ = ("names", "values")

    def __init__(self, cls: type[msgspec.Struct]) -> None:
        self.names = tuple(f.name for f in msgspec.structs.fields(cls) if f.type == (str | int))
        # attrgetter of several names returns a tuple; of one, the value: keep it a tuple.
        getter = operator.attrgetter(*self.names, *self.names[:1])
        self.values: Callable[[msgspec.Struct], tuple[object, ...]] = getter


def stringify_idents(struct: msgspec.Struct, idents: IdentFields) -> None:
    """Call from `__post_init__` (works on frozen Structs)."""
    # Runs for every callback decoded: one pass in C finds whether any number came at all.
    values = idents.values(struct)
    if int not in map(type, values):
        return
    for name, value in zip(idents.names, values, strict=False):
        if type(value) is int:
            force_setattr(struct, name, str(value))


# Values that become part of an S3 key or a lake path (company codes, call uuids) are
# checked against these patterns where they enter (the receiver) and again where a key is
# built: letters, digits, '_' and '-', starting with a letter or digit, so no '/', '.'
# or '..' can reach a key. `(?![\s\S])` is the end of the text in Python and in the
# JSON Schemas' ECMAScript alike (`$` would let a trailing newline through in Python).
SAFE_NAME_PATTERN: Final = r"^[0-9A-Za-z][0-9A-Za-z_-]{0,127}(?![\s\S])"
# Recording file names are sent back to the platform's API, and their extension names
# the archived object: path separators are allowed, a '..' segment and control bytes not.
FILE_NAME_PATTERN: Final = r"^(?!.*\.\.)[0-9A-Za-z._:/+-]{0,255}(?![\s\S])"
_SAFE_NAME: Final = re.compile(SAFE_NAME_PATTERN)


def is_safe_name(value: str) -> bool:
    return _SAFE_NAME.match(value) is not None
