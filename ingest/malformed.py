"""Requests aiohttp's parser refuses (framing, header limits): counted, not logged as errors.

aiohttp answers such a request 400 itself and logs it as an error with a traceback.
It is the client's mistake, not the receiver's, and a hostile client could send them
as fast as it likes: each would be an error line in the log and a page for whoever
watches the errors. So they are counted (`callstream_ingest_malformed_requests_total`),
and every other error aiohttp logs is logged as before.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Final

from aiohttp.http_exceptions import HttpProcessingError

HTTP_LOG: Final = "ingest.http"


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
def http_log(malformed: MalformedRequests) -> Iterator[logging.Logger]:
    """The logger for aiohttp's server (its `logger` option), filtered while in use."""
    logger = logging.getLogger(HTTP_LOG)
    logger.addFilter(malformed)
    try:
        yield logger
    finally:
        logger.removeFilter(malformed)
