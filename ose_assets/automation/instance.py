"""The Dagster instance of a data root (DAGSTER_HOME=OSE_DATA_DIR/dagster_home, the repo's dagster.yaml),
its run launcher, and the one run slot every run takes."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES

from ose_assets.settings import REPO_ROOT, OSESettings
from ose_assets.warehouse import AS_OF_TAG

DAGSTER_YAML = REPO_ROOT / "dagster.yaml"


def prepare_dagster_home(settings: OSESettings) -> Path:
    """Create the data root's DAGSTER_HOME and (re)write its dagster.yaml from the repo's; return it.

    A copy rather than a symlink, so a data root moved or mounted elsewhere stays a complete instance.
    Run `dagster dev` / `dagster-daemon` with the environment variable DAGSTER_HOME set to the result.
    """
    if not DAGSTER_YAML.is_file():
        raise FileNotFoundError(
            f"{DAGSTER_YAML} is missing: OSE's Dagster instance config ships with the repo"
        )
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = DAGSTER_YAML.read_text(encoding="utf-8")
    target = home / "dagster.yaml"
    if not target.is_file() or target.read_text(encoding="utf-8") != config:
        staged = home / "dagster.yaml.tmp"
        staged.write_text(config, encoding="utf-8")
        staged.replace(target)
    # Create the SQLite run, event and schedule storages once: `dagster dev` starts the webserver and
    # the daemon together, and two processes migrating a fresh store at once fail ("more than one head").
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
    return home


# ---- one run at a time, and dead runs freed ----------------------------------------------------------
# The worker process of a run: the tag set by `ose run`, else the pid Dagster logs when a worker starts.
PID_TAG = "ose/pid"
RUN_LOCK_FILE = "ose_run.lock"
WAIT_MESSAGE_SECONDS = 5.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not reaped yet is a zombie: dead for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def worker_pid(instance, run) -> int | None:
    """The pid of the process executing `run` (this machine), or None when not recorded yet."""
    if run.tags.get(PID_TAG):
        return int(run.tags[PID_TAG])
    from dagster._core.events import DagsterEventType

    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = getattr(record.dagster_event.event_specific_data, "metadata", None) or {}
        if "pid" in metadata:
            return int(metadata["pid"].value)
    return None


def dead_worker_message(instance, run) -> str | None:
    """Why `run` is dead (its worker process is gone), or None while it may still be running."""
    pid = worker_pid(instance, run)
    if pid is None or _pid_alive(pid):
        return None
    return f"the worker process (pid {pid}) of run {run.run_id} is gone (killed or crashed): marked failed"


class OSERunLauncher(DefaultRunLauncher):
    """The default launcher, plus a worker health check for run monitoring: a run whose worker process
    died (kill -9, OOM killer) is marked failed at the next monitoring poll instead of holding the only
    run slot until max_runtime_seconds."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        message = dead_worker_message(self._instance, run)
        if message:
            return CheckRunHealthResult(WorkerStatus.FAILED, message)
        return CheckRunHealthResult(WorkerStatus.RUNNING, "")


class RunSlotBusy(RuntimeError):
    """Another run holds the slot and the caller asked not to wait."""


def fail_dead_runs(instance, say=print) -> None:
    """Mark failed every active run of the instance whose worker process is gone (frees the slot)."""
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES)):
        message = dead_worker_message(instance, run)
        if message:
            instance.report_run_failed(run, message)
            say(message)


def describe_run(run) -> str:
    as_of = run.tags.get(AS_OF_TAG, "?")
    return f"Dagster run {run.run_id[:8]} ({run.job_name}, as of {as_of}, {run.status.value})"


def _describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another run (starting)"
    return (
        f"{holder.get('command', 'ose run')} pid {holder.get('pid')} as of {holder.get('as_of')} "
        f"since {holder.get('since')} UTC"
    )


@contextmanager
def run_slot(settings: OSESettings, instance, holder: dict, wait: bool = True, say=print):
    """Hold the data root's only run slot: the lock every `ose run` takes, then no other active Dagster
    run (the daemon's queue counts ours too, so it waits for us). Says every few seconds who it waits
    for; with wait=False raises RunSlotBusy instead. A dead holder frees the slot: the OS drops the lock
    of a killed process, and fail_dead_runs marks its Dagster run failed."""
    path = settings.dagster_home / RUN_LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (released in finally)
    try:
        _wait(lambda: _try_lock(handle), lambda: f"held by {_describe_holder(path)}", wait, say)
        holder = {**holder, "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder))
        handle.flush()

        def no_active_run() -> bool:
            fail_dead_runs(instance, say)
            return not instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES), limit=1)

        def active() -> str:
            runs = instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES))
            return "held by " + ", ".join(describe_run(run) for run in runs)

        _wait(no_active_run, active, wait, say)
        _wait(
            lambda: warehouse_lock_holder(settings) is None,
            lambda: warehouse_lock_holder(settings),
            wait,
            say,
        )
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def warehouse_lock_holder(settings: OSESettings) -> str | None:
    """Who holds the warehouse file outside the run slot (a notebook, the duckdb CLI), or None when free.
    DuckDB's lock error names the process: "Conflicting lock is held in /usr/bin/python3 (PID 1234)"."""
    import duckdb

    if not settings.warehouse_path.is_file():
        return None
    try:
        duckdb.connect(str(settings.warehouse_path)).close()
    except duckdb.IOException as error:
        held = next((line for line in str(error).splitlines() if "lock" in line.lower()), None)
        if held is None:
            raise
        return f"the warehouse {settings.warehouse_path} is held by another process: {held.strip()}"
    return None


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait(ready, holder, wait: bool, say, poll_seconds: float = 0.5) -> None:
    """Poll `ready()` until true, saying who holds the slot now and then every WAIT_MESSAGE_SECONDS."""
    started = last = None
    while not ready():
        who = holder()
        if not wait:
            raise RunSlotBusy(f"Another run is active ({who}): not started. Retry when it has finished.")
        now = time.monotonic()
        if last is None or now - last >= WAIT_MESSAGE_SECONDS:
            waited = "" if started is None else f" ({now - started:.0f} s so far)"
            say(f"Waiting for the run slot, {who}{waited}")
            started, last = started or now, now
        time.sleep(poll_seconds)
