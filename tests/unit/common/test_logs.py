"""JSON log lines, and the Kafka clients' repeated lines held back: one a window, the next
one through saying how many were held."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from common.logs import JsonFormatter, Repeats

REFUSED = "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lines(clock: Clock) -> Iterator[io.StringIO]:
    """What loggers write through a handler set up as `setup_logging` sets up its own."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(Repeats(("librdkafka", "aiokafka"), window=10.0, capacity=3, clock=clock))
    names = ("librdkafka", "aiokafka.fetcher", "aiokafkax", "ours")
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    yield out
    for logger in loggers:
        logger.removeHandler(handler)
        logger.propagate = True


def written(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_repeated_client_line_is_written_once_a_window_with_how_many_were_held(
    clock: Clock, lines: io.StringIO
) -> None:
    rdkafka = logging.getLogger("librdkafka")
    for _ in range(50):
        rdkafka.error(REFUSED)
        clock.now += 0.06
    assert [(line["msg"], line.get("repeated")) for line in written(lines)] == [(REFUSED, None)]
    clock.now += 7.0  # 10 s after the first
    rdkafka.error(REFUSED)
    assert [line.get("repeated") for line in written(lines)] == [None, 49]
    rdkafka.error(REFUSED)  # the count starts over
    clock.now += 10.0
    rdkafka.error(REFUSED)
    assert [line.get("repeated") for line in written(lines)] == [None, 49, 1]


def test_a_line_differing_in_text_level_or_logger_is_its_own(
    clock: Clock, lines: io.StringIO
) -> None:
    logging.getLogger("librdkafka").error(REFUSED)
    logging.getLogger("librdkafka").warning(REFUSED)
    logging.getLogger("librdkafka").error(REFUSED + " (after 1ms)")
    logging.getLogger("aiokafka.fetcher").error(REFUSED)  # a child of a named logger
    logging.getLogger("aiokafka.fetcher").error(REFUSED)
    assert [(line["logger"], line["level"]) for line in written(lines)] == [
        ("librdkafka", "error"),
        ("librdkafka", "warning"),
        ("librdkafka", "error"),
        ("aiokafka.fetcher", "error"),
    ]


def test_other_loggers_are_never_held_back(lines: io.StringIO) -> None:
    for name in ("ours", "aiokafkax"):  # not a child of aiokafka, only a longer name
        for _ in range(3):
            logging.getLogger(name).warning("lake flush")
    assert len(written(lines)) == 6


def test_the_lines_remembered_are_bounded_oldest_forgotten_first(
    clock: Clock, lines: io.StringIO
) -> None:
    rdkafka = logging.getLogger("librdkafka")
    for n in range(4):  # capacity 3: the first is forgotten
        rdkafka.error(f"broker {n} down")
    rdkafka.error("broker 0 down")  # written again, as if new
    rdkafka.error("broker 3 down")  # remembered: held
    assert [line["msg"] for line in written(lines)] == [
        "broker 0 down",
        "broker 1 down",
        "broker 2 down",
        "broker 3 down",
        "broker 0 down",
    ]
