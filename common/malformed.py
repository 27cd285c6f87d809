"""Requests aiohttp's parser refuses (framing, header limits): counted, not logged as errors.

aiohttp answers such a request 400 itself and logs it as an error with a traceback.
It is the client's mistake, not the service's, and a hostile client could send them
as fast as it likes: each would be an error line in the log and a page for whoever
watches the errors. So they are counted (a server's `_malformed_requests_total`), and
every other error aiohttp logs is logged as before.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiohttp.http_exceptions import HttpProcessingError


class MalformedRequests(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            self.count += 1
            return False
        return True


@contextlib.contextmanager
def http_log(malformed: MalformedRequests, name: str) -> Iterator[logging.Logger]:
    """The logger `name` for one aiohttp server (its `logger` option), filtered while in
    use; a logger of its own, so that each server counts only its own requests."""
    logger = logging.getLogger(name)
    logger.addFilter(malformed)
    try:
        yield logger
    finally:
        logger.removeFilter(malformed)
