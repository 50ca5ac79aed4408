from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from ._servers import Handler, Server, start_server


@pytest.fixture
def serve(nursery: trio.Nursery) -> Callable[..., Awaitable[Server]]:
    """``await serve(handler)`` starts a real HTTP server for the test; it stops when the test ends."""

    async def _serve(handler: Handler, *, certfile: Path | None = None, keyfile: Path | None = None) -> Server:
        return await start_server(nursery, handler, certfile=certfile, keyfile=keyfile)

    return _serve
