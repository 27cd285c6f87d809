"""Serves the receiver's app behind the callback fast path (`ingest.fastpath`)."""

from __future__ import annotations

from aiohttp import web

from ingest.app import INGEST
from ingest.fastpath import CallbackServer


class IngestRunner(web.AppRunner):
    """An AppRunner whose site listens with `CallbackServer`: connections start on the
    fast path, and the app's own server takes over those it hands off."""

    async def _make_server(self) -> web.Server:
        return CallbackServer(await super()._make_server(), self.app[INGEST])
