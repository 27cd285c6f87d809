"""`callstream board`: extension states, minute metrics and anomalies, and the live page."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from callstream.command import Command, print_config_option
from common.config import KafkaSettings
from common.runner import Probes, Started, run_service
from common.settings import overridden
from common.topics import Topics
from processors.board.page import serving_page
from processors.board.service import BoardServiceSettings, board_pipe

log = logging.getLogger(__name__)


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--http-port", type=int, help="port of the live page (default 8090)")
    p.add_argument("--metrics-port", type=int, help="port of /healthz and /metrics")
    print_config_option(p)


@dataclass(frozen=True, slots=True)
class BoardConfig:
    kafka: KafkaSettings
    topics: Topics
    settings: BoardServiceSettings

    def shown(self) -> Sequence[object]:
        return (self.settings, self.kafka)


def load(args: argparse.Namespace) -> BoardConfig:
    settings = BoardServiceSettings.from_env(os.environ)
    settings = overridden(settings, http_port=args.http_port, metrics_port=args.metrics_port)
    return BoardConfig(KafkaSettings.from_env(os.environ), Topics.from_env(os.environ), settings)


@contextlib.asynccontextmanager
async def start(config: BoardConfig) -> AsyncIterator[Started]:
    settings = config.settings
    async with (
        board_pipe(config.kafka, config.topics, settings) as (runner, board),
        serving_page(board, settings.page_listen(), runner.metrics.registry) as url,
    ):
        log.info("board page", extra={"url": url})
        yield Started(runner.run, Probes(settings.metrics_port, runner.metrics.registry))


def main(args: argparse.Namespace) -> int:
    return run_service("board", lambda: load(args), start, print_config=args.print_config)


COMMAND = Command("board", "the live call-centre board", main, options, __doc__)
