"""Runs queue on the project's Dagster instance instead of colliding on the DuckDB file.

A real instance in a temporary DAGSTER_HOME (dagster.yaml written by prepare_dagster_home), a real
`dagster-daemon` subprocess, two runs of two jobs writing the same DuckDB file, both submitted at
once through `dagster job launch` (the instance's run coordinator). This module is also the code
location the daemon loads: `queue_defs` below.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster_duckdb import DuckDBResource

from ose_assets.automation.instance import prepare_dagster_home
from ose_assets.settings import OSESettings

QUEUE_DB_ENV = "OSE_QUEUE_TEST_DB"
LOCATION = "ose_queue_test"
HOLD_SECONDS = 2.0
BIN = Path(sys.executable).parent


def write_holding_the_lock(warehouse: DuckDBResource, writer: str) -> None:
    """Hold the DuckDB file for a while, as a real stage does, and record when."""
    with warehouse.get_connection() as con:
        started = time.time()
        con.execute("create table if not exists writes (writer varchar, started double, finished double)")
        time.sleep(HOLD_SECONDS)
        con.execute("insert into writes values (?, ?, ?)", [writer, started, time.time()])


@dg.asset
def first_writer(warehouse: DuckDBResource) -> None:
    write_holding_the_lock(warehouse, "first")


@dg.asset
def second_writer(warehouse: DuckDBResource) -> None:
    write_holding_the_lock(warehouse, "second")


queue_defs = dg.Definitions(
    assets=[first_writer, second_writer],
    jobs=[
        dg.define_asset_job("write_first", selection=[first_writer]),
        dg.define_asset_job("write_second", selection=[second_writer]),
    ],
    resources={"warehouse": DuckDBResource(database=dg.EnvVar(QUEUE_DB_ENV))},
    executor=dg.in_process_executor,
)


def test_prepare_dagster_home_keeps_instance_state_under_the_data_root(tmp_path):
    settings = OSESettings(data_dir=tmp_path / "data")
    home = prepare_dagster_home(settings)
    assert home == tmp_path / "data" / "dagster_home"
    assert prepare_dagster_home(settings) == home  # idempotent
    with dg.DagsterInstance.from_config(str(home)) as instance:
        queue = instance.run_coordinator.get_run_queue_config()
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert queue.max_concurrent_runs == 1
        assert instance.run_monitoring_enabled
        instance.get_runs()  # touches the run storage
        assert Path(instance.storage_directory()).is_relative_to(home)
    created = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert created and all(p.is_relative_to(home) for p in created)


@pytest.fixture
def queue_instance(tmp_path):
    """A DAGSTER_HOME with the project's dagster.yaml, a workspace on this module, a daemon."""
    home = prepare_dagster_home(OSESettings(data_dir=tmp_path / "data"))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_file": {
                            "relative_path": __file__,
                            "attribute": "queue_defs",
                            "location_name": LOCATION,
                        }
                    }
                ]
            }
        )
    )
    database = tmp_path / "data" / "warehouse" / "queue.duckdb"
    database.parent.mkdir(parents=True)
    env = {**os.environ, "DAGSTER_HOME": str(home), QUEUE_DB_ENV: str(database)}
    # Its own process group: the daemon's code server and run workers are stopped with it.
    daemon = subprocess.Popen(
        [BIN / "dagster-daemon", "run", "-w", str(workspace)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("w"),
        start_new_session=True,
    )
    try:
        yield home, workspace, database, env
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def test_two_warehouse_writers_queue_and_both_succeed(queue_instance):
    home, workspace, database, env = queue_instance
    launches = [
        subprocess.Popen(
            [BIN / "dagster", "job", "launch", "-w", str(workspace), "-j", job],
            env=env,
            cwd=workspace.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for job in ("write_first", "write_second")
    ]
    for launch in launches:
        output, _ = launch.communicate(timeout=60)
        assert launch.returncode == 0, output

    with dg.DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + 60
        while True:
            records = instance.get_run_records()
            if len(records) == 2 and all(r.dagster_run.is_finished for r in records):
                break
            assert time.monotonic() < deadline, [
                (r.dagster_run.job_name, r.dagster_run.status) for r in records
            ]
            time.sleep(1)

    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    earlier, later = sorted(records, key=lambda r: r.start_time)
    assert later.start_time >= earlier.end_time, "the two runs overlapped"
    with duckdb.connect(str(database), read_only=True) as con:
        writes = con.execute("select writer, started, finished from writes order by started").fetchall()
    assert sorted(writer for writer, _, _ in writes) == ["first", "second"]
    assert writes[1][1] >= writes[0][2], "the two writers held the DuckDB file at the same time"
