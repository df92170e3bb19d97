"""`ose ui` (Dagster UI and daemon) and `ose api` (the REST API)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ose_assets.cli.common import settings_for

# uvicorn's log levels (`ose api --log-level`).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
# After Ctrl-C, how long the Dagster processes get to stop by themselves before they are killed.
UI_GRACE_SECONDS = 2.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_groups(processes: dict[str, subprocess.Popen], grace: float) -> None:
    """SIGINT each service's process group (the service, its code server and run workers: what Ctrl-C does
    to `dagster dev`), wait up to `grace` seconds, then SIGKILL what is left (a code server can wait a minute
    for open calls). A run killed this way is marked failed by the instance's run monitoring."""
    for process in processes.values():
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for process in processes.values():
            process.poll()  # reap the leader, so an emptied group reads as gone
        if not any(_group_alive(process.pid) for process in processes.values()):
            return
        time.sleep(0.1)
    # Usual for the code servers, which wait up to 60 s for open calls: nothing to report.
    for process in processes.values():
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ui(args: argparse.Namespace) -> int:
    """The Dagster webserver and daemon over this data root's instance, as two supervised processes.

    `dagster dev` is superseded (it warns "Use 'dg dev' instead", and `dg dev` needs a `dg` project layout
    and wraps `dagster dev` itself); the two services it starts are Dagster's own commands, run here
    directly: `dagster-webserver` and `dagster-daemon run`. They start in DAGSTER_HOME, so Dagster finds
    its instance settings there and no other dagster.yaml. Ctrl-C (or SIGTERM) stops both with every child
    (code servers, run workers) within UI_GRACE_SECONDS plus a moment.
    """
    settings = settings_for(args)
    bindir = Path(sys.executable).parent  # the commands installed beside this interpreter
    target = ["-m", "ose_assets.definitions"]
    commands = {
        "webserver": [str(bindir / "dagster-webserver"), *target, "-h", args.host, "-p", str(args.port),
                      "--dagster-log-level", "info"],
        "daemon": [str(bindir / "dagster-daemon"), "run", *target, "--log-level", "info"],
    }  # fmt: skip
    env = os.environ | {"DAGSTER_HOME": str(settings.dagster_home), "OSE_DATA_DIR": str(settings.data_dir)}
    if args.paused:
        env["OSE_AUTOMATION_PAUSED"] = "1"
    automations = (
        "paused (schedules and inbox sensor stopped: start them in the UI, Automation tab)"
        if args.paused
        else "running (nightly rescoring, weekly retraining, inbox sensor; `ose ui --paused` to start them "
        "stopped)"
    )
    print(
        f"Dagster UI on http://{args.host}:{args.port}  instance {settings.dagster_home}\n"
        f"automations: {automations}\nCtrl-C stops the UI, the daemon and their runs.",
        flush=True,
    )
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[str, subprocess.Popen] = {}
    code = 0
    try:
        for name, command in commands.items():
            # Own process group: the terminal's Ctrl-C reaches this supervisor only, which stops each
            # service's whole group in order.
            processes[name] = subprocess.Popen(
                command, cwd=settings.dagster_home, env=env, start_new_session=True
            )
        while not stop.wait(0.5):
            exited = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
            if exited:
                print(f"dagster {', '.join(exited)} exited (code {exited}): stopping", file=sys.stderr)
                code = 1
                break
    finally:
        _stop_groups(processes, UI_GRACE_SECONDS)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    print("Dagster UI and daemon stopped.", flush=True)
    return code == 0


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
        if name == "ui":
            sub.add_argument(
                "--paused",
                action="store_true",
                help="start the schedules and the inbox sensor stopped (unless a state was set in the UI)",
            )
        if name == "api":
            # One process per core: a worker answers a lookup on one core (≈1,000 req/s each).
            sub.add_argument("--workers", type=int, default=os.cpu_count() or 1)
            sub.add_argument(
                "--log-level",
                choices=LOG_LEVELS,
                default="info",
                help="uvicorn's log level: 'info' logs every request (access log), 'warning' only problems",
            )
