"""The code location loads: every asset, check, job, schedule and sensor resolves."""

import dagster as dg
import duckdb
import pytest

from ose_assets.definitions import defs
from ose_assets.resources import build_resources
from ose_assets.settings import OSESettings

EXPECTED_TABLES = [
    "raw/manifest",
    "normalized/companies",
    "normalized/signals",
    "normalized/articles",
    "normalized/article_companies",
    "normalized/outcomes",
    "normalized/quarantine",
    "features/company_features",
    "training/training_set",
    "model/opportunity_model",
    "scoring/company_scores",
    "scoring/top_opportunities",
    "scoring/score_history",
    "scoring/serving_copy",
    "monitoring/drift",
    "monitoring/runs",
]


def test_definitions_resolve():
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert set(EXPECTED_TABLES) <= keys
    for job_name in ("ose_full_refresh", "ose_rescoring"):
        assert repository.get_job(job_name).name == job_name
    assert repository.schedule_defs and repository.sensor_defs
    assert repository.asset_graph.asset_check_keys


def test_every_asset_key_prefix_is_its_group():
    for node in defs.get_repository_def().asset_graph.asset_nodes:
        assert node.key.path[0] == node.group_name, node.key
        assert node.key.path[0] in {
            "raw",
            "normalized",
            "features",
            "training",
            "model",
            "scoring",
            "monitoring",
        }


def test_rescoring_job_does_not_retrain():
    job = defs.get_repository_def().get_job("ose_rescoring")
    selected = {key.path[0] for key in job.asset_layer.selected_asset_keys}
    assert "model" not in selected and "training" not in selected
    assert {"normalized", "features", "scoring"} <= selected


def test_kinds_on_every_asset():
    for node in defs.get_repository_def().asset_graph.asset_nodes:
        assert node.kinds, f"{node.key.to_user_string()} declares no kinds"


def test_schedule_and_sensor_default_running():
    for target in (*defs.get_repository_def().schedule_defs, *defs.get_repository_def().sensor_defs):
        assert target.default_status == dg.DefaultScheduleStatus.RUNNING or (
            target.default_status == dg.DefaultSensorStatus.RUNNING
        )


def test_duckdb_limits_come_from_ose_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("OSE_DUCKDB_THREADS", "1")
    resources = build_resources(OSESettings(data_dir=tmp_path))
    with resources["warehouse"].get_connection() as con:
        limit, threads = con.execute(
            "select current_setting('memory_limit'), current_setting('threads')"
        ).fetchone()
    assert (limit, threads) == ("953.6 MiB", 1)  # DuckDB reports 1GB (10^9 bytes) in MiB


def test_warehouse_connection_is_closed_when_the_step_fails(tmp_path):
    warehouse = build_resources(OSESettings(data_dir=tmp_path))["warehouse"]
    with pytest.raises(RuntimeError, match="step failed"):
        with warehouse.get_connection() as failed:
            failed.execute("create table t as select 1 as x")
            raise RuntimeError("step failed")
    with pytest.raises(duckdb.ConnectionException):
        failed.execute("select 1")
    # Closed, not just dropped: the file opens at once with another configuration.
    with duckdb.connect(str(OSESettings(data_dir=tmp_path).warehouse_path), read_only=True) as reader:
        assert reader.execute("select x from t").fetchall() == [(1,)]
