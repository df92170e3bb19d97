"""Monitoring: PSI, the drift check on a shifted vs an unshifted batch, monitoring.runs lineage, explain_run.

One small world per module (a tmp data root, a warehouse of hand-made tables, a tiny rules-prior champion
registered in a tmp MLflow store); each test scores its own as-of date into it.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb
import mlflow
import numpy as np
import polars as pl
import pytest

from ose_assets.model.registry import FINGERPRINT_ARTIFACT
from ose_assets.model.served_model import CHAMPION_ALIAS, SERVED_MODEL_ARTIFACT, ServedModel
from ose_assets.monitoring import assets as monitoring_assets
from ose_assets.monitoring import drift as psi
from ose_assets.monitoring.lineage import explain_run
from ose_assets.resources import MLflowResource, build_resources
from ose_assets.settings import OSESettings, model_config
from ose_assets.warehouse import AS_OF_TAG

EPSILON = model_config()["drift"]["epsilon"]
TRAIN_DATES = [dt.date(2024, 10, 31), dt.date(2024, 11, 30), dt.date(2024, 12, 31)]
OTHER_SPLITS = {dt.date(2025, 1, 31): "validation", dt.date(2025, 2, 28): "test"}
COMPANIES = 1_200
FEATURES = ["signals_12m", "decayed_signal_intensity", "company_age_years", "category", "has_red_flag"]
MANIFEST = pl.DataFrame(
    {
        "file_path": ["inbox/companies/StockUniteLegale_utf8.csv", "inbox/signals/signals.jsonl"],
        "source": ["companies", "signals"],
        "file_hash": ["a" * 64, "b" * 64],
        "size_bytes": [1000, 2000],
        "records_read": [COMPANIES, 500],
        "records_loaded": [COMPANIES, 500],
        "records_quarantined": [0, 0],
        "duplicates_dropped": [0, 0],
        "ingested_at": [dt.datetime(2025, 3, 1, 1, 0)] * 2,
    }
)


def write_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.register("frame_to_write", frame.to_arrow())
    con.execute(f"create schema if not exists {table.split('.')[0]}")
    con.execute(f"create or replace table {table} as select * from frame_to_write")
    con.unregister("frame_to_write")


# ---- PSI ----------------------------------------------------------------------------------------------
def test_psi_of_identical_distributions_is_zero():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5_000)
    assert psi.numeric_psi(values, values, 10, EPSILON) == pytest.approx(0.0, abs=1e-12)
    same_law = rng.normal(size=5_000)
    assert psi.numeric_psi(values, same_law, 10, EPSILON) < 0.02
    labels = pl.Series("category", rng.choice(["PME", "ETI", "GE", None], size=3_000).tolist())
    assert psi.categorical_psi(labels, labels, EPSILON) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_a_known_shift():
    # Two bins, 50/50 against 90/10: 0.4 ln(0.9/0.5) + (-0.4) ln(0.1/0.5).
    expected = 0.4 * np.log(0.9 / 0.5) - 0.4 * np.log(0.1 / 0.5)
    assert psi.psi_from_counts(np.array([50, 50]), np.array([90, 10]), EPSILON) == pytest.approx(expected)
    reference = pl.Series("c", ["x"] * 50 + ["y"] * 50)
    assert psi.categorical_psi(reference, pl.Series("c", ["x"] * 90 + ["y"] * 10), EPSILON) == pytest.approx(
        expected
    )
    # Uniform reference cut in deciles; today's values all in the top half: five bins at 0.2 against
    # 0.1, five empty bins floored at epsilon.
    uniform = np.linspace(0.0, 1.0, 10_001)
    top_half = np.linspace(0.5, 1.0, 5_000, endpoint=False)
    expected = 5 * 0.1 * np.log(2) + 5 * (EPSILON - 0.1) * np.log(EPSILON / 0.1)
    assert psi.numeric_psi(uniform, top_half, 10, EPSILON) == pytest.approx(expected, rel=1e-3)


def test_psi_bins_count_features_and_missing_values():
    # A count feature piling up on 0 keeps its distinct bins; missing values are a bin of their own.
    reference = np.array([0.0] * 70 + [1.0] * 20 + [2.0] * 10)
    edges = psi.quantile_edges(reference, 10)
    # Deciles interpolate to edges 0, 0.3, 1, 1.1: bins <0, [0,0.3), [0.3,1), [1,1.1), >=1.1, then missing.
    assert edges.tolist() == pytest.approx([0.0, 0.3, 1.0, 1.1])
    assert psi.binned_counts(reference, edges).tolist() == [0, 70, 0, 20, 10, 0]
    assert psi.binned_counts(np.array([np.nan, 0.0]), edges)[-1] == 1
    gone_missing = np.array([np.nan] * 50 + [0.0] * 50)
    assert psi.numeric_psi(reference, gone_missing, 10, EPSILON) > 1.0
    status = pl.DataFrame({"v": [0.05, 0.1, 0.2, 0.3]}).select(psi.status_expr(pl.col("v"), 0.1, 0.25))
    assert status.to_series().to_list() == ["ok", "ok", "warn", "alert"]


# ---- the world ------------------------------------------------------------------------------------------
def population(rng: np.random.Generator, n: int, shift: float = 1.0) -> dict[str, object]:
    """Model features of n companies; shift multiplies the signal activity (1.0 = the training law)."""
    signals = rng.poisson(1.2 * shift, n)
    return {
        "signals_12m": signals.astype(np.int32),
        "decayed_signal_intensity": signals * rng.gamma(2.0, 0.6, n),
        "company_age_years": rng.uniform(0, 30, n).round(2),
        "category": rng.choice(["PME", "ETI", "GE", None], n, p=[0.8, 0.1, 0.04, 0.06]),
        "has_red_flag": rng.random(n) < 0.05,
    }


def champion_model() -> ServedModel:
    return ServedModel(
        kind="rules_prior",
        feature_names=FEATURES,
        categories={"category": ["PME", "ETI", "GE"]},
        prior={
            "intercept": -2.5,
            "weights": {
                "signals_12m": 0.6,
                "decayed_signal_intensity": 0.4,
                "company_age_years": -0.1,
                "category": 0.2,
                "has_red_flag": -1.0,
            },
            "center": {
                "signals_12m": 1.2,
                "decayed_signal_intensity": 1.4,
                "company_age_years": 15.0,
                "category": 0.0,
                "has_red_flag": 0.0,
            },
            "scale": {
                "signals_12m": 1.1,
                "decayed_signal_intensity": 1.5,
                "company_age_years": 9.0,
                "category": 1.0,
                "has_red_flag": 1.0,
            },
        },
    )


def register_champion(resources: dict, fingerprint: dict) -> tuple[str, str]:
    """Log the model and its training fingerprint in a run of experiment 'ose'; alias it champion."""
    mlflow_resource = resources["mlflow"]
    experiment_id = mlflow_resource.configure()
    with mlflow.start_run(experiment_id=experiment_id, run_name="tiny-prior") as run:
        mlflow.log_text(champion_model().to_bytes().decode(), SERVED_MODEL_ARTIFACT)
        mlflow.log_dict(fingerprint, FINGERPRINT_ARTIFACT)
    client = mlflow_resource.client()
    name = mlflow_resource.registered_model_name
    client.create_registered_model(name)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}", run_id=run.info.run_id)
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
    return str(version.version), run.info.run_id


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    settings = OSESettings(data_dir=tmp_path_factory.mktemp("ose_monitoring"))
    resources = build_resources(settings)
    rng = np.random.default_rng(7)
    sirens = [f"{i:09d}" for i in range(COMPANIES)]
    snapshots = pl.concat(
        pl.DataFrame({"siren": sirens, "snapshot_date": [d] * COMPANIES, **population(rng, COMPANIES)})
        for d in [*TRAIN_DATES, *OTHER_SPLITS]
    )
    training_set = snapshots.with_columns(
        label=pl.Series(rng.integers(0, 2, snapshots.height), dtype=pl.Int8),
        split=pl.col("snapshot_date").replace_strict(
            {**{d: "train" for d in TRAIN_DATES}, **OTHER_SPLITS}, return_dtype=pl.String
        ),
    )
    event_dates = [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 420, 600)]
    signals = pl.DataFrame(
        {
            "signal_id": [f"s{i}" for i in range(600)],
            "siren": rng.choice(sirens, 600).tolist(),
            "event_date": event_dates,
            "signal_type": "hiring",
            "source": rng.choice(["bodacc", "france_travail", "crm"], 600).tolist(),
        }
    )
    fingerprint = {
        "snapshot_dates": {
            "train": [d.isoformat() for d in TRAIN_DATES],
            **{split: [d.isoformat()] for d, split in OTHER_SPLITS.items()},
        },
        # The layout of ose_assets.model.pipeline.training_fingerprint.
        "rows": {"train": {"converted": 1_790, "not_converted": 1_810}},
        "training_set_hash": "0123456789abcdef",
        "input_files": MANIFEST.select("file_path", "source", "file_hash").to_dicts(),
    }
    with resources["warehouse"].get_connection() as con:
        write_frame(con, "training.training_set", training_set)
        write_frame(con, "normalized.signals", signals)
        write_frame(con, "raw.manifest", MANIFEST)
    version, run_id = register_champion(resources, fingerprint)
    return {
        "settings": settings,
        "resources": resources,
        "sirens": sirens,
        "version": version,
        "run_id": run_id,
    }


def score_batch(world, as_of: dt.date, shift: float, seed: int) -> None:
    """What features and scoring write for one as-of date: today's features and the champion's scores."""
    features = pl.DataFrame(
        {
            "siren": world["sirens"],
            "as_of_date": as_of,
            **population(np.random.default_rng(seed), COMPANIES, shift),
        }
    )
    model = champion_model()
    scores = features.select(
        "siren",
        score=pl.Series(model.predict_score(features)).round(1),
        model_version=pl.lit(world["version"]),
        model_kind=pl.lit(model.kind),
        as_of_date=pl.lit(as_of),
        scored_at=pl.lit(dt.datetime.combine(as_of, dt.time(2, 0))),
    )
    with world["resources"]["warehouse"].get_connection() as con:
        write_frame(con, "features.company_features", features)
        write_frame(con, "scoring.company_scores", scores)


def run_monitoring(world, as_of: dt.date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [monitoring_assets.drift, monitoring_assets.runs, monitoring_assets.psi_within_thresholds],
        resources=world["resources"],
        tags={AS_OF_TAG: as_of.isoformat()},
    )


def drift_table(world, as_of: dt.date) -> pl.DataFrame:
    with duckdb.connect(str(world["settings"].warehouse_path), read_only=True) as con:
        return con.execute(
            "select * from monitoring.drift where as_of_date = ? order by metric, feature, period_start",
            [as_of],
        ).pl()


def check_evaluation(result: dg.ExecuteInProcessResult):
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


# ---- drift ---------------------------------------------------------------------------------------------
def test_unshifted_batch_does_not_fire(world):
    as_of = dt.date(2025, 3, 3)
    score_batch(world, as_of, shift=1.0, seed=101)
    result = run_monitoring(world, as_of)
    assert result.success
    evaluation = check_evaluation(result)
    assert evaluation.passed, evaluation.description
    rows = drift_table(world, as_of)
    psi_rows = rows.filter(pl.col("metric") == "psi")
    assert set(psi_rows["feature"]) == {*FEATURES, "score", "no_signal_12m"}
    assert psi_rows["value"].max() < model_config()["drift"]["psi_warn"]
    assert set(psi_rows["status"]) == {"ok"}
    assert (rows["model_version"] == world["version"]).all()


def test_shifted_batch_fires_and_names_the_drifting_features(world):
    as_of = dt.date(2025, 3, 4)
    score_batch(world, as_of, shift=3.0, seed=202)
    result = run_monitoring(world, as_of)
    assert result.success  # a failing check does not fail the run (non-blocking)
    evaluation = check_evaluation(result)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    alert = evaluation.metadata["alert_features"].value
    assert {"signals_12m", "decayed_signal_intensity", "score"} <= set(alert)
    assert "company_age_years" not in alert and "category" not in alert
    assert "signals_12m" in evaluation.description
    (materialization,) = result.asset_materializations_for_node("monitoring__drift")
    assert materialization.metadata["reference_source"].value == "fingerprint"
    assert materialization.metadata["reference_train_rows"].value == len(TRAIN_DATES) * COMPANIES
    assert "data:image/png;base64," in materialization.metadata["psi_plot"].value
    rows = drift_table(world, as_of)
    print("\n" + str(rows.filter(pl.col("metric") != "signals_per_week").drop("computed_at")))
    share = rows.filter(pl.col("metric") == "no_signal_12m_share").row(0, named=True)
    assert share["value"] < share["reference_value"]  # fewer silent companies when activity triples
    assert share["value"] == pytest.approx(np.exp(-3.6), abs=0.03)
    volume = rows.filter(pl.col("metric") == "signals_per_week")
    assert set(volume["feature"]) == {"bodacc", "france_travail", "crm"}
    assert volume.height == 3 * model_config()["drift"]["volume_weeks"]
    assert volume["status"].is_null().all()

    # The drift is logged on the champion's MLflow run: headline metrics with the scoring run's ordinal
    # as step (no per-feature metric) and one table artifact per scoring run.
    client = world["resources"]["mlflow"].client()
    history = client.get_metric_history(world["run_id"], "drift_alerts")
    steps = sorted(m.step for m in history)
    assert steps == list(range(1, len(steps) + 1))
    latest = max(history, key=lambda m: m.step)
    assert latest.value == len(alert)
    max_psi = max(client.get_metric_history(world["run_id"], "drift_max_psi"), key=lambda m: m.step)
    assert max_psi.value == pytest.approx(rows.filter(pl.col("metric") == "psi")["value"].max())
    assert not [key for key in client.get_run(world["run_id"]).data.metrics if key.startswith("drift_psi")]
    table = f"drift/scoring_run_{latest.step:04d}_as_of_{as_of.isoformat()}.json"
    assert table in {a.path for a in client.list_artifacts(world["run_id"], "drift")}
    logged = client.load_table(client.get_run(world["run_id"]).info.experiment_id, table, [world["run_id"]])
    assert len(logged) == rows.height

    # Re-running the same as-of replaces its rows: an unshifted batch clears the alert.
    score_batch(world, as_of, shift=1.0, seed=203)
    rerun = run_monitoring(world, as_of)
    assert check_evaluation(rerun).passed
    again = drift_table(world, as_of)
    assert again.height == rows.height
    assert again["computed_at"].n_unique() == 1


def test_warn_severity_between_thresholds(world):
    # A mild shift: PSI between drift.psi_warn and drift.psi_fail for the signal count and the score.
    as_of = dt.date(2025, 3, 5)
    score_batch(world, as_of, shift=1.35, seed=303)
    evaluation = check_evaluation(run_monitoring(world, as_of))
    rows = drift_table(world, as_of).filter(pl.col("metric") == "psi")
    warned = rows.filter(pl.col("status") == "warn")["feature"].to_list()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "signals_12m" in warned
    assert set(evaluation.metadata["warn_features"].value) == set(warned)
    assert evaluation.metadata["alert_features"].value == []


# ---- lineage -------------------------------------------------------------------------------------------
def test_runs_row_traces_scores_to_the_training_fingerprint(world):
    as_of = dt.date(2025, 3, 6)
    score_batch(world, as_of, shift=1.0, seed=404)
    result = run_monitoring(world, as_of)
    with duckdb.connect(str(world["settings"].warehouse_path), read_only=True) as con:
        run = (
            con.execute("select * from monitoring.runs where as_of_date = ?", [as_of]).pl().row(0, named=True)
        )
    assert run["model_version"] == world["version"]
    assert run["model_run_id"] == world["run_id"]
    assert run["scored_at"] == dt.datetime(2025, 3, 6, 2, 0)
    assert run["scored_companies"] == COMPANIES
    assert run["dagster_run_id"] == result.run_id
    assert run["duration_seconds"] is not None and run["duration_seconds"] >= 0
    assert run["drift_status"] == "ok"
    assert json.loads(run["input_manifest"]) == MANIFEST.select("file_path", "file_hash").to_dicts()
    counts = json.loads(run["row_counts"])
    assert counts["features.company_features"] == COMPANIES
    assert counts["training.training_set"] == 5 * COMPANIES
    assert counts["raw.manifest"] == 2 and "monitoring.runs" not in counts

    # The same chain is the runs asset's markdown metadata in the Dagster UI.
    (materialization,) = result.asset_materializations_for_node("monitoring__runs")
    lineage = materialization.metadata["lineage"].value
    assert world["run_id"] in lineage and "b" * 64 in lineage

    # Re-recording the same scoring run replaces its row.
    run_monitoring(world, as_of)
    with duckdb.connect(str(world["settings"].warehouse_path), read_only=True) as con:
        assert (
            con.execute("select count(*) from monitoring.runs where as_of_date = ?", [as_of]).fetchone()[0]
            == 1
        )


def test_explain_run_prints_the_chain(world):
    as_of = dt.date(2025, 3, 7)
    score_batch(world, as_of, shift=1.0, seed=505)
    run_monitoring(world, as_of)
    text = explain_run(world["settings"])  # the latest scoring run
    print("\n" + text)
    assert f"as of {as_of}" in text
    assert f"model version: {world['version']}" in text and "the champion now" in text
    assert world["run_id"] in text
    for file_hash in MANIFEST["file_hash"]:
        assert file_hash in text
    for snapshot in TRAIN_DATES:
        assert snapshot.isoformat() in text
    assert "training_set_hash: 0123456789abcdef" in text and "converted: 1790" in text
    assert "input files landed since the model's training: 0" in text
    past = explain_run(world["settings"], dt.date(2025, 3, 3))
    assert "as of 2025-03-03" in past
    assert "No scoring run recorded as of 2024-01-01" in explain_run(world["settings"], dt.date(2024, 1, 1))


def test_without_champion_or_scores_monitoring_skips_gracefully(world, tmp_path):
    resources = build_resources(OSESettings(data_dir=tmp_path))
    # The module's MLflow store (creating one is slow) under a model name that has no champion.
    store = world["resources"]["mlflow"]
    resources["mlflow"] = MLflowResource(
        tracking_uri=store.tracking_uri,
        artifact_uri=store.artifact_uri,
        registered_model_name="ose-model-without-champion",
    )
    as_of = dt.date(2025, 3, 3)
    empty = dg.materialize(
        [monitoring_assets.drift, monitoring_assets.runs, monitoring_assets.psi_within_thresholds],
        resources=resources,
        tags={AS_OF_TAG: as_of.isoformat()},
    )
    assert empty.success
    (drift_event,) = empty.asset_materializations_for_node("monitoring__drift")
    assert drift_event.metadata["status"].value == "skipped"
    assert "no scores" in drift_event.metadata["reason"].value
    assert check_evaluation(empty).passed

    # Scores but no champion and no training set: only the population metrics are recorded.
    features = pl.DataFrame({"siren": ["000000001", "000000002"], "as_of_date": as_of, "signals_12m": [0, 3]})
    scores = features.select(
        "siren",
        score=pl.lit(5.0),
        model_version=pl.lit("rules_prior"),
        model_kind=pl.lit("rules_prior"),
        as_of_date=pl.lit(as_of),
        scored_at=pl.lit(dt.datetime(2025, 3, 3, 2)),
    )
    with resources["warehouse"].get_connection() as con:
        write_frame(con, "features.company_features", features)
        write_frame(con, "scoring.company_scores", scores)
    partial = dg.materialize(
        [monitoring_assets.drift, monitoring_assets.runs, monitoring_assets.psi_within_thresholds],
        resources=resources,
        tags={AS_OF_TAG: as_of.isoformat()},
    )
    assert partial.success
    (drift_event,) = partial.asset_materializations_for_node("monitoring__drift")
    assert drift_event.metadata["status"].value == "partial"
    assert "no champion" in drift_event.metadata["reason"].value
    assert check_evaluation(partial).passed
    with resources["warehouse"].get_connection() as con:
        share = con.execute(
            "select value from monitoring.drift where metric = 'no_signal_12m_share'"
        ).fetchone()
        run = con.execute("select model_run_id, drift_status from monitoring.runs").fetchone()
    assert share == (0.5,)
    assert run == (None, None)
    assert "model version: rules_prior" in explain_run(OSESettings(data_dir=tmp_path))
