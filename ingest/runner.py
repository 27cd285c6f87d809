"""Serves the receiver's app behind the callback fast path (`ingest.fastpath`).

Connections the fast path hands to aiohttp still skip the router for callback POSTs (a
gzipped or chunked callback, say): aiohttp's router resolves a dynamic resource, builds
and freezes a match-info object and runs the app's response signals for every request.
The callback paths are matched here by one regular expression instead; every other
request (probes, metrics, OpenAPI, wrong methods and paths) goes through the app and its
router as usual.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from ingest.app import INGEST, handle_callback
from ingest.fastpath import CallbackServer

CALLBACK_PATH: Final = re.compile(r"/callbacks/([^/]+)/(callstate|cdr)")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class IngestRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        routed = await super()._make_server()
        routed.request_handler = dispatcher(self.app, routed.request_handler)
        return CallbackServer(routed, self.app[INGEST])


def dispatcher(app: web.Application, routed: Handler) -> Handler:
    ingest = app[INGEST]
    match = CALLBACK_PATH.fullmatch

    def dispatch(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # A plain function returning the handler's coroutine: one coroutine less per request.
        if request.method == "POST" and (found := match(request.path)) is not None:
            return handle_callback(ingest, request, found[1], found[2])
        return routed(request)

    return dispatch
