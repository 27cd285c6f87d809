"""How many connections a server keeps open: a bound, kept as nginx keeps its own.

aiohttp's `web.Server` makes a protocol for every connection the listening socket
accepts and has no bound of its own. Each open connection costs memory and a file
descriptor, whether it is idle, half-way through its head or handling a request. Past
the bound a new connection is still served, and the oldest open connections are closed
the way aiohttp's own shutdown closes them (`close()`, then `shutdown(grace)`): an idle
one or one whose head is not all in at once, one handling a request once it is answered
or the grace is over. So a client that opens connections without end cannot grow the
service, nor lock a legitimate client's next connection out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import resource
from typing import Final

from aiohttp import web

log = logging.getLogger(__name__)
# Descriptors a service needs besides its connections: Kafka's sockets, the receiver's
# spool files, the event loop's own.
OTHER_FILES: Final = 256


def check_open_files(limit: int, setting: str) -> bool:
    """Whether the process may open `limit` connections and the rest it needs; logs a
    warning naming `setting` when it may not (the bound would then not keep descriptors
    for the rest)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or limit + OTHER_FILES <= soft:
        return True
    log.warning(
        "%s is %d, but the process may open only %d files: "
        "raise its open-files limit (ulimit -n) to at least %d, or lower the bound",
        setting,
        limit,
        soft,
        limit + OTHER_FILES,
    )
    return False


class ConnectionBound:
    """The listening socket's protocol factory: aiohttp's own, with at most `limit`
    connections open besides those being closed.

    The server's list of connections is looked at on a later turn of the event loop
    than the one that made the protocol: an event loop accepts a burst of connections
    (making their protocols) before it connects any of them, and a connection is in the
    list only once connected. A look that closed some looks again on the next turn, and
    so does one that sees fewer than were counted, for the rest of a burst. Between two
    looks the bound may be passed by the connections accepted in one turn."""

    def __init__(self, server: web.Server, limit: int, grace: float) -> None:
        if limit < 1:
            raise ValueError(f"the connection limit must be at least 1, not {limit}")
        self._server = server
        self._limit = limit
        self._grace = grace
        # Past the bound, close a few at a time (nginx drains in batches too), so that a
        # flood of new connections does not cost a look at every open one for each.
        self._batch = max(1, limit // 64)
        # Open at the last look (those being closed aside), and made since: the server's
        # list is looked at only when the bound may be near.
        self._counted = 0
        self._look_handle: asyncio.TimerHandle | None = None
        self._closing: set[web.RequestHandler] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed_at_bound = 0

    @property
    def open(self) -> int:
        return len(self._server.connections)

    def __call__(self) -> web.RequestHandler:
        self._counted += 1
        if self._counted > self._limit:
            self._look_soon()
        return self._server()

    def _look_soon(self) -> None:
        if self._look_handle is None:
            # A timer, not call_soon: it runs after the callbacks already due, those
            # that connect the protocols made on this turn among them.
            self._look_handle = asyncio.get_running_loop().call_later(0, self._look)

    def _look(self) -> None:
        self._look_handle = None
        connections = self._server.connections  # oldest first
        # One leaves the server's list once its task is done, not when asked to close.
        self._closing.intersection_update(connections)
        live = len(connections) - len(self._closing)
        again = live < self._counted  # some made may not be connected yet
        if live > self._limit:
            oldest = (handler for handler in connections if handler not in self._closing)
            for handler in itertools.islice(oldest, max(live - self._limit, self._batch)):
                self._close(handler)
                live -= 1
            again = True
        self._counted = live
        if again:
            self._look_soon()

    def _close(self, handler: web.RequestHandler) -> None:
        self._closing.add(handler)
        task = asyncio.get_running_loop().create_task(self._shut(handler))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.closed_at_bound += 1

    async def _shut(self, handler: web.RequestHandler) -> None:
        handler.close()  # an idle handler stops waiting for a request
        await handler.shutdown(self._grace)
