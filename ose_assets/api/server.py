"""Run the API with uvicorn: `ose api [--host H] [--port P] [--workers N] [--log-level L] [--data-dir D]`."""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn

from ose_assets.api.app import create_app
from ose_assets.api.export import read_only_serving
from ose_assets.settings import OSESettings


def app_from_environment():
    """App factory for uvicorn's worker processes (settings from OSE_* variables)."""
    return create_app(OSESettings())


def serving_summary(path: Path) -> str:
    """'as of 2026-11-23, model version 3 (xgboost), 20,000 companies' of the serving copy at `path`."""
    if not path.is_file():
        return f"no serving copy yet at {path} (run `ose run`): /api/v1 answers 503 until one is published"
    with read_only_serving(path) as con:
        as_of, version, kind, companies = con.execute(
            "select as_of_date, model_version, model_kind, scored_companies from serving.served_model"
        ).fetchone()
    return f"serving copy as of {as_of}, model version {version} ({kind}), {companies:,} companies ({path})"


def startup_line(host: str, port: int, settings: OSESettings) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"OSE API on http://{shown}:{port} (docs /docs, /redoc) — {serving_summary(settings.serving_path)}"


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: OSESettings | None = None,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve on host:port (loopback by default) with uvicorn's access log at `log_level` ('info' logs every
    request, 'warning' only problems). Several workers need an import string, so the settings travel to them
    through OSE_DATA_DIR."""
    settings = settings or OSESettings()
    print(startup_line(host, port, settings), flush=True)
    options = {"host": host, "port": port, "log_level": log_level, "access_log": True}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    os.environ["OSE_DATA_DIR"] = str(settings.data_dir)
    os.environ["OSE_API_MAX_BODY_BYTES"] = str(settings.api_max_body_bytes)
    if settings.api_key is not None:
        os.environ["OSE_API_KEY"] = settings.api_key
    uvicorn.run("ose_assets.api.server:app_from_environment", factory=True, workers=workers, **options)
