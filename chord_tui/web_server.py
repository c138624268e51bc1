"""textual-serve's Server, announcing itself once its socket listens.

Kept apart from ``web.py`` so that importing the CLI never needs the ``web``
extra: this module imports textual-serve (and aiohttp) at the top.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys

from aiohttp import web
from textual_serve.server import Server

from chord_tui.web import READY_LINE


class ChordWebServer(Server):
    def __init__(self, command: str, host: str, port: int, public_url: str | None = None):
        super().__init__(command, host=host, port=port, title="chord-chat", public_url=public_url)

    async def on_startup(self, app: web.Application) -> None:
        # textual-serve prints its banner here, before the socket is bound; ours
        # comes from serve() once it is, so whoever waits for it can connect.
        pass

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.on_cleanup.append(self._finalize_sessions)
        return app

    async def _finalize_sessions(self, app: web.Application) -> None:
        # The tabs' subprocess transports are otherwise collected after the
        # loop has closed, and each prints "Event loop is closed" on Ctrl+C.
        gc.collect()

    def announce(self, *_args) -> None:
        print(f"{READY_LINE} {self.public_url} (Ctrl+C to stop)", flush=True)
        print(f"chord-chat web: each browser tab runs: {self.command}", file=sys.stderr, flush=True)

    def serve(self, debug: bool = False) -> None:
        """As Server.serve, with aiohttp's after-bind message as the announcement."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.add_signal_handler(signal.SIGINT, self.request_exit)
            loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        except NotImplementedError:  # Windows
            pass
        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                    print=self.announce)
