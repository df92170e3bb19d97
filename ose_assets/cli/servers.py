"""`ose ui` (Dagster UI and daemon) and `ose api` (the REST API)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ose_assets.cli.common import settings_for

# uvicorn's log levels (`ose api --log-level`).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def ui(args: argparse.Namespace) -> None:
    settings = settings_for(args)
    # The dagster executable installed beside this interpreter, whether or not the venv is activated.
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-m", "ose_assets.definitions", "-h", args.host, "-p", str(args.port)]
    print(f"DAGSTER_HOME={settings.dagster_home}\n$ {' '.join(command)}")
    sys.exit(subprocess.call(command))


def api(args: argparse.Namespace) -> None:
    settings = settings_for(args)
    from ose_assets.api.server import serve

    serve(host=args.host, port=args.port, settings=settings, workers=args.workers, log_level=args.log_level)


def register(add_command) -> None:
    for name, handler, help_text, port in (
        ("ui", ui, "start the Dagster UI and daemon on this project's instance", 3000),
        ("api", api, "serve the REST API over the serving copy", 8000),
    ):
        sub = add_command(name, handler, help_text)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=port)
        if name == "api":
            # One process per core: a worker answers a lookup on one core (≈1,000 req/s each).
            sub.add_argument("--workers", type=int, default=os.cpu_count() or 1)
            sub.add_argument(
                "--log-level",
                choices=LOG_LEVELS,
                default="info",
                help="uvicorn's log level: 'info' logs every request (access log), 'warning' only problems",
            )
