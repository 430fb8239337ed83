"""A server on a background thread (notebooks, tests, benchmarks, synchronous programs).

    with serve_in_thread({"ffhq": "exported/ffhq"}, settings=ServerSettings(max_batch=16)) as bg:
        sg.Client(bg.target).generate(0)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any

from .config import ServerSettings
from .metrics import ServerMetrics
from .server import Models, StyleGANServer, create_server


class BackgroundServer:
    """create_server + start on an event loop in a daemon thread; `stop()` (or `with`) shuts it down."""

    def __init__(
        self,
        models: Models,                         # as create_server
        address: str = "127.0.0.1:0",           # host:port (port 0: a free one)
        settings: ServerSettings | None = None,
        wait: bool = True,                      # return once every model is loaded
        timeout: float | None = 120.0,          # seconds to wait for start (and loading)
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stylegan-serve", daemon=True)
        self._thread.start()

        async def create() -> tuple[StyleGANServer, int]:
            server, port = create_server(address, models, settings)
            await server.start()
            return server, port

        try:
            self.server, self.port = self.call(create(), timeout)
            if wait:
                self.call(self.server.wait_until_ready(), timeout)
        except BaseException:
            if hasattr(self, "server"):  # listening, but a model failed to load
                self.call(self.server.stop(0), 30)
            self._shutdown_loop()
            raise

    @property
    def target(self) -> str:
        return self.server.target

    @property
    def metrics(self) -> ServerMetrics:
        return self.server.metrics

    def call(self, coro: Awaitable[Any], timeout: float | None = None) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float = 5.0) -> None:
        if self._loop.is_closed():
            return
        try:
            self.call(self.server.stop(grace), grace + 30)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


serve_in_thread = BackgroundServer
