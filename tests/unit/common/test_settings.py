from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.config import ConfigError
from common.settings import MASK, describe, load


@dataclass(frozen=True, slots=True)
class Example:
    port: int = 8000
    ratio: float = 0.5
    name: str = "x"
    folder: Path = Path("spool")
    proxies: tuple[str, ...] = ()
    flag: bool = False
    token: str | None = field(default=None, repr=False)


def test_each_field_comes_from_its_variable_converted_or_keeps_its_default() -> None:
    env = {
        "APP_PORT": "9000",
        "APP_RATIO": "1.5",
        "APP_FOLDER": "/var/spool",
        "APP_PROXIES": "10.0.0.0/8, 127.0.0.1/32,",
        "APP_FLAG": "true",
        "APP_NAME": "",  # empty: the default
        "OTHER_PORT": "1",
    }
    assert load(Example, env, "APP_") == Example(
        port=9000,
        ratio=1.5,
        folder=Path("/var/spool"),
        proxies=("10.0.0.0/8", "127.0.0.1/32"),
        flag=True,
    )
    assert load(Example, {}, "APP_") == Example()


def test_a_field_can_be_read_from_a_variable_of_another_name() -> None:
    assert load(Example, {"LEGACY": "7"}, "APP_", {"port": "LEGACY"}).port == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_PORT": "eighty"}, "APP_PORT='eighty': Expected `int`"),
        ({"APP_RATIO": "half"}, "APP_RATIO='half': Expected `float`"),
        ({"APP_FLAG": "maybe"}, "APP_FLAG='maybe': Expected `bool`"),
    ],
)
def test_a_value_that_does_not_convert_names_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("`", ".")):
        load(Example, env, "APP_")


def test_describe_masks_secrets_and_gives_json_values() -> None:
    secret = "s3cret"
    described = describe(Example(token=secret, folder=Path("/x"), proxies=("a",)))
    assert described == {
        "Example": {
            "port": 8000,
            "ratio": 0.5,
            "name": "x",
            "folder": "/x",
            "proxies": ("a",),
            "flag": False,
            "token": MASK,
        }
    }
    assert describe(Example())["Example"]["token"] is None, "an unset secret is shown unset"
