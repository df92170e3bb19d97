"""Run the API with uvicorn: `ose api [--host 127.0.0.1] [--port 8000] [--data-dir DIR]`."""

from __future__ import annotations

import os

import uvicorn

from ose_assets.api.app import create_app
from ose_assets.settings import OSESettings


def app_from_environment():
    """App factory for uvicorn's worker processes (settings from OSE_* variables)."""
    return create_app(OSESettings())


def serve(
    host: str = "127.0.0.1", port: int = 8000, settings: OSESettings | None = None, workers: int = 1
) -> None:
    """Serve on host:port (loopback by default). Several workers need an import string, so the settings
    travel to them through OSE_DATA_DIR."""
    settings = settings or OSESettings()
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
        return
    os.environ["OSE_DATA_DIR"] = str(settings.data_dir)
    if settings.api_key is not None:
        os.environ["OSE_API_KEY"] = settings.api_key
    uvicorn.run(
        "ose_assets.api.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
