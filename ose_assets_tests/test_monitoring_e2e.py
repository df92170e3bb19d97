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
