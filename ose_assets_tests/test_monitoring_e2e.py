"""Monitoring over the real graph: the session's full refresh on generated data (conftest e2e_run)."""

import datetime as dt
import json

import duckdb
import pytest

from ose_assets.model.served_model import load_champion
from ose_assets.monitoring.lineage import explain_run

pytestmark = pytest.mark.slow


def test_full_refresh_records_drift_and_lineage(e2e_run):
    as_of = dt.date.fromisoformat(e2e_run.as_of)
    champion = load_champion(e2e_run.mlflow)
    assert champion is not None
    with duckdb.connect(str(e2e_run.settings.warehouse_path), read_only=True) as con:
        psi = dict(
            con.execute(
                "select feature, value from monitoring.drift where as_of_date = ? and metric = 'psi'", [as_of]
            ).fetchall()
        )
        run = con.execute(
            "select model_version, model_run_id, input_manifest, dagster_run_id from monitoring.runs "
            "where as_of_date = ?",
            [as_of],
        ).fetchone()
        hashes = [h for (h,) in con.execute("select file_hash from raw.manifest").fetchall()]
    assert {*champion.feature_names, "score"} <= set(psi)
    assert all(value >= 0 for value in psi.values())
    model_version, model_run_id, manifest, dagster_run_id = run
    assert (model_version, model_run_id) == (champion.version, champion.run_id)
    assert dagster_run_id == e2e_run.result.run_id
    assert sorted(f["file_hash"] for f in json.loads(manifest)) == sorted(hashes)

    text = explain_run(e2e_run.settings, as_of)
    assert champion.run_id in text and f"model version: {champion.version}" in text
    assert all(h in text for h in hashes)
    assert "training data fingerprint (training_fingerprint.json)" in text


def test_first_run_on_unshifted_data_raises_no_drift_alert(e2e_run):
    """Training snapshots and today's scoring read the same lookback of history, so the first run on a
    generated world (whose law does not change over time) raises no alert: the PSI of every feature and
    of the score stays at or below drift.psi_fail."""
    as_of = dt.date.fromisoformat(e2e_run.as_of)
    with duckdb.connect(str(e2e_run.settings.warehouse_path), read_only=True) as con:
        table = con.execute(
            "select feature, round(value, 4), status from monitoring.drift "
            "where as_of_date = ? and metric = 'psi' order by value desc",
            [as_of],
        ).fetchall()
    print("\n".join(f"{feature}: {value} {status}" for feature, value, status in table))
    assert table and all(status != "alert" for _, _, status in table), table[:5]
    (check,) = [
        e
        for e in e2e_run.result.get_asset_check_evaluations()
        if e.asset_check_key.name == "psi_within_thresholds"
    ]
    assert check.passed or check.severity.value == "WARN", check.description
