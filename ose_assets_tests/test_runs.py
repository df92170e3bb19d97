"""One run at a time, replays, dead runs, failures that say what and where, leftovers.

Real parts: `ose run` subprocesses on a generated data root (its Dagster instance, DuckDB warehouse,
MLflow store and serving copy), a real kill -9, Dagster's own run-monitoring function, a real tmpfs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ose_assets.automation.execution import served_as_of
from ose_assets.automation.failures import describe_failure
from ose_assets.automation.instance import (
    PID_TAG,
    RunSlotBusy,
    prepare_dagster_home,
    run_slot,
)
from ose_assets.model.champions import champion_at, record_champion
from ose_assets.scoring import publish
from ose_assets.settings import OSESettings, today_paris

COMPANIES = 500
NEWER = today_paris()
OLDER = dt.date(NEWER.year, 8, 31) if NEWER.month > 9 else NEWER - dt.timedelta(days=91)


def ose_run(data_dir: Path, as_of: dt.date, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ose_assets.cli",
            "run",
            "--data-dir",
            str(data_dir),
            "--as-of",
            str(as_of),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OSE_DATA_DIR": str(data_dir)},
    )


def wait_for(predicate, timeout: float = 300, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def registry_state(settings: OSESettings) -> tuple[list[str], str]:
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )
    versions = sorted(str(v.version) for v in client.search_model_versions("name = 'ose-opportunity-model'"))
    return versions, str(client.get_model_version_by_alias("ose-opportunity-model", "champion").version)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> OSESettings:
    from ose_assets.demo.generate import generate_demo_data

    settings = OSESettings(data_dir=tmp_path_factory.mktemp("ose_runs"))
    generate_demo_data(settings.data_dir, companies=COMPANIES, seed=3)
    return settings


@pytest.fixture
def scored_root(data_root) -> OSESettings:
    """The data root with a published run (the concurrency test's, or one run here when run alone)."""
    if served_as_of(data_root.serving_path) is None:
        run = ose_run(data_root.data_dir, NEWER)
        output, _ = run.communicate(timeout=900)
        assert run.returncode == 0, output
    return data_root


@pytest.mark.slow
def test_concurrent_runs_serve_the_newer_date_and_the_older_is_a_replay(data_root):
    """The newer as-of takes the slot first; the older waits (saying for whom), then runs as a replay:
    the serving copy, the registered versions and the champion alias are untouched, history is ordered."""
    newer = ose_run(data_root.data_dir, NEWER)
    lock = data_root.dagster_home / "ose_run.lock"
    wait_for(lambda: lock.is_file() and NEWER.isoformat() in lock.read_text(), what="the newer run's slot")
    older = ose_run(data_root.data_dir, OLDER)
    newer_out, _ = newer.communicate(timeout=900)
    assert newer.returncode == 0, newer_out
    served_bytes = sha256(data_root.serving_path)
    registry = registry_state(data_root)
    older_out, _ = older.communicate(timeout=900)
    assert older.returncode == 0, older_out

    assert f"Waiting for the run slot, held by ose run pid {newer.pid} as of {NEWER}" in older_out
    assert f"as-of date      : {OLDER} (replay" in older_out and "serving copy    : untouched" in older_out
    assert f"as-of date      : {NEWER} (current)" in newer_out and "serving copy    : published" in newer_out
    assert served_as_of(data_root.serving_path) == NEWER
    assert sha256(data_root.serving_path) == served_bytes
    assert registry_state(data_root) == registry
    with duckdb.connect(str(data_root.warehouse_path), read_only=True) as con:
        stored = con.execute("select as_of_date from scoring.score_history").fetchall()
        recorded = con.execute("select distinct as_of_date from monitoring.runs").fetchall()
        replay_versions = con.execute(
            "select distinct model_version from scoring.score_history where as_of_date = ?", [OLDER]
        ).fetchall()
    assert stored == sorted(stored) and {d for (d,) in stored} == {OLDER, NEWER}
    assert recorded == [(NEWER,)]  # monitoring.runs: published runs only
    assert replay_versions == [(registry[1],)]
    with dg.DagsterInstance.from_config(str(data_root.dagster_home)) as instance:
        (replay_run,) = instance.get_runs(filters=dg.RunsFilter(job_name="ose_replay"))
        assert replay_run.tags["ose/replay"] == "true" and replay_run.tags["ose/as_of"] == OLDER.isoformat()
        materialized = {
            record.event_log_entry.dagster_event.asset_key.to_user_string()
            for record in instance.get_records_for_run(
                replay_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
        }
    assert "scoring/score_history" in materialized
    assert not {"model/opportunity_model", "scoring/serving_copy", "monitoring/runs"} & materialized


@pytest.mark.slow
def test_a_killed_run_is_marked_failed_and_frees_the_slot(data_root):
    """kill -9 a running `ose run`: the OS frees its lock, and Dagster's run monitoring (one poll of the
    daemon's own function, with OSE's launcher) marks its run failed at once instead of after hours."""
    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    victim = ose_run(data_root.data_dir, NEWER)
    home = prepare_dagster_home(data_root)
    with dg.DagsterInstance.from_config(str(home)) as instance:

        def started():
            runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            return next((r for r in runs if r.tags.get(PID_TAG) == str(victim.pid)), None)

        run = wait_for(started, what="the victim's run to start")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        record = instance.get_run_record_by_id(run.run_id)
        monitor_started_run(instance, None, record, logging.getLogger("test"))
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
        assert f"pid {victim.pid}" in failure.message and "gone" in failure.message
        with run_slot(data_root, instance, {"pid": os.getpid(), "as_of": "x"}, wait=False):
            pass  # free again, without waiting


def test_a_busy_slot_refuses_or_names_its_holder(tmp_path):
    settings = OSESettings(data_dir=tmp_path / "data")
    home = prepare_dagster_home(settings)
    holder = {"command": "ose run", "pid": 4242, "as_of": "2026-11-29"}
    messages = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        with run_slot(settings, instance, holder, say=messages.append):
            with pytest.raises(RunSlotBusy, match=r"ose run pid 4242 as of 2026-11-29 since .* UTC"):
                with run_slot(settings, instance, {"pid": 1}, wait=False):
                    pass
        with run_slot(settings, instance, {"pid": 1}, wait=False):
            pass  # released
    assert messages == []


def test_champion_at_a_date_follows_the_recorded_alias_history(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = "ose-opportunity-model"
    client.create_registered_model(name)
    for as_of in ("2026-03-31", "2026-06-30", "2026-09-30"):
        version = client.create_model_version(name, source=str(tmp_path)).version
        client.set_registered_model_alias(name, "champion", version)
        record_champion(client, name, version, as_of)
    client.create_model_version(name, source=str(tmp_path))  # v4: refused, never champion
    assert champion_at(client, name, dt.date(2026, 7, 15)).version == "2"
    assert champion_at(client, name, dt.date(2026, 6, 30)).version == "2"
    assert champion_at(client, name, dt.date(2026, 11, 29)).version == "3"
    early = champion_at(client, name, dt.date(2026, 1, 31))
    assert early.version == "1" and early.later_than_date and "no champion existed" in early.reason


def test_failure_names_the_root_cause_first_the_table_and_the_free_space(tmp_path):
    from dagster._utils.error import serializable_error_info_from_exc_info

    try:
        try:
            raise OSError(28, "No space left on device", "/data/warehouse/ose.duckdb.wal")
        except OSError as cause:
            raise RuntimeError("TransactionException: cannot rollback - no transaction is active") from cause
    except RuntimeError as error:
        info = serializable_error_info_from_exc_info((type(error), error, error.__traceback__))
    message = describe_failure("training__training_set", info, tmp_path)
    assert message.startswith("No space left on device while writing training.training_set (free: ")
    assert f"MB in {tmp_path})" in message and "[step training__training_set]" in message
    try:
        try:
            raise ValueError("bad header in signals.csv")
        except ValueError as cause:
            raise RuntimeError("Error occurred while executing op") from cause
    except RuntimeError as error:
        info = serializable_error_info_from_exc_info((type(error), error, error.__traceback__))
    assert describe_failure("raw__inbox", info).startswith(
        "ValueError: bad header in signals.csv while writing raw.inbox"
    )


@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (mount -t tmpfs); this runner is not root")
    command = ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]
    done = subprocess.run(command, capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"this runner can not mount a tmpfs: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_disk_full_publish_says_so_and_keeps_the_serving_copy(scored_root, tmpfs, monkeypatch):
    """A serving copy on a 16 MB tmpfs: the free-space check refuses a publish that can not fit; with the
    check out of the way the real ENOSPC is reported root cause first; the published copy stays intact
    and no temporary file is left behind."""
    from dagster._utils.error import serializable_error_info_from_exc_info

    serving = tmpfs / "ose_serving.duckdb"
    with duckdb.connect(str(scored_root.warehouse_path)) as con:
        from ose_assets.model.served_model import ServedModel

        names = ServedModel.from_bytes(
            bytes(con.execute("select model_bytes from scoring.served_model").fetchone()[0])
        ).feature_names
        publish.publish_serving_copy(con, serving, names)
        published = sha256(serving)
        ballast = tmpfs / "ballast"
        free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
        ballast.write_bytes(b"\0" * int(free - serving.stat().st_size * 0.5))
        with pytest.raises(OSError, match="Not enough free disk space to publish the serving copy"):
            publish.publish_serving_copy(con, serving, names)
        monkeypatch.setattr(publish, "FREE_SPACE_FACTOR", 0)
        monkeypatch.setattr(publish, "MIN_FREE_MB", 0)
        with pytest.raises(Exception) as raised:
            publish.publish_serving_copy(con, serving, names)
    info = serializable_error_info_from_exc_info((raised.type, raised.value, raised.tb))
    message = describe_failure("scoring__serving_copy", info, tmpfs)
    assert message.startswith("No space left on device while writing scoring.serving_copy (free: ")
    assert f"MB in {tmpfs})" in message
    assert sha256(serving) == published and served_as_of(serving) is not None
    assert sorted(p.name for p in tmpfs.iterdir()) == ["ballast", "ose_serving.duckdb"]


def test_a_publish_starts_by_removing_leftover_temporary_serving_files(tmp_path):
    serving = tmp_path / "ose_serving.duckdb"
    leftovers = [
        tmp_path / ".ose_serving.0123abcd.tmp.duckdb",
        tmp_path / ".ose_serving.0123abcd.tmp.duckdb.wal",
    ]
    for path in leftovers:
        path.write_bytes(b"partial")
    keep = tmp_path / "notes.txt"
    keep.write_text("not ours")
    assert publish.remove_leftovers(serving) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_serving_copy_never_publishes_an_older_as_of_whoever_runs_it(tmp_path):
    """Even outside `ose run` (a job launched by hand with an old date): scored into history, not served."""
    from ose_assets.resources import build_resources
    from ose_assets_tests.test_scoring import AS_OF, make_features, write_warehouse, xgb_model
    from ose_assets_tests.test_scoring_assets import materialize, register_champion

    settings = OSESettings(data_dir=tmp_path)
    settings.ensure_dirs()
    features = make_features(60, seed=4)
    write_warehouse(settings.warehouse_path, features).close()
    register_champion(build_resources(settings)["mlflow"], xgb_model(features))
    assert materialize(settings).success
    published = sha256(settings.serving_path)
    older = AS_OF - dt.timedelta(days=30)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("update features.company_features set as_of_date = ?", [older])
    refused = materialize(settings)
    assert not refused.success
    (failure,) = refused.get_step_failure_events()
    assert failure.step_key == "scoring__serving_copy"
    assert f"Not published: this run is as of {older}" in failure.step_failure_data.error.message
    assert sha256(settings.serving_path) == published and served_as_of(settings.serving_path) == AS_OF
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        dates = con.execute("select distinct as_of_date from scoring.score_history order by 1").fetchall()
    assert dates == [(older,), (AS_OF,)]


def test_a_failed_step_logs_its_root_cause_first_in_the_run(tmp_path):
    """The jobs' failure hook: the sentence lands in the run's event log, where the Dagster UI shows it."""
    from ose_assets.jobs import HOOKS
    from ose_assets.resources import DataRootResource

    @dg.asset(key_prefix=["training"], name="training_set")
    def failing() -> None:
        try:
            raise OSError(28, "No space left on device")
        except OSError as cause:
            raise RuntimeError("cannot rollback - no transaction is active") from cause

    job = dg.define_asset_job("failing", selection=[failing], hooks=HOOKS)
    defs = dg.Definitions(
        assets=[failing], jobs=[job], resources={"data_root": DataRootResource(data_dir=str(tmp_path))}
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("failing").execute_in_process(instance=instance, raise_on_error=False)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert not result.success
    assert any(
        m.startswith("No space left on device while writing training.training_set (free: ") for m in messages
    ), messages
