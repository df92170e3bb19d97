"""A real uvicorn server over a serving copy, for the API and page tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from ose_assets.api.app import create_app
from ose_assets.settings import OSESettings

# Companies of the synthetic serving copy the `served` fixture builds.
SERVED_COMPANIES = 300


@contextlib.contextmanager
def live_server(settings: OSESettings) -> Iterator[str]:
    """uvicorn serving create_app(settings) in a thread on a free loopback port; yields the base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
