"""Serves the receiver's app, with callback POSTs handed straight to their handler.

aiohttp's router resolves a dynamic resource, builds and freezes a match-info object and
runs the app's response signals for every request: about a tenth of the receiver's CPU
per callback. The callback paths are matched here by one regular expression instead;
every other request (probes, metrics, OpenAPI, wrong methods and paths) goes through the
app and its router as usual.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from ingest.app import INGEST, handle_callback

CALLBACK_PATH: Final = re.compile(r"/callbacks/([^/]+)/(callstate|cdr)")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class IngestRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.request_handler = dispatcher(self.app, server.request_handler)
        return server


def dispatcher(app: web.Application, routed: Handler) -> Handler:
    ingest = app[INGEST]
    match = CALLBACK_PATH.fullmatch

    def dispatch(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # A plain function returning the handler's coroutine: one coroutine less per request.
        if request.method == "POST" and (found := match(request.path)) is not None:
            return handle_callback(ingest, request, found[1], found[2])
        return routed(request)

    return dispatch
