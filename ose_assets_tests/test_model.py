"""model.opportunity_model: fit, calibration, promotion rule, cold start, reproducibility, Dagster run."""

from __future__ import annotations

import datetime as dt

import duckdb
import mlflow
import numpy as np
import pytest

from ose_assets.features.catalog import categorical_feature_names, model_feature_names
from ose_assets.model.pipeline import MODEL_VERSIONS_TABLE, load_training_frame, train_and_publish
from ose_assets.model.registry import Evaluation, decide_promotion
from ose_assets.model.served_model import load_champion
from ose_assets.model.train import fit_model, with_validation_roles
from ose_assets.resources import REGISTERED_MODEL_NAME
from ose_assets.settings import OSESettings, model_config
from ose_assets_tests.training_fixtures import (
    AS_OF,
    RULES,
    TRAINED_AT,
    build_training,
    champion_version,
    data_root,
    version_tag,
)


# ---- the promotion rule ------------------------------------------------------------------------
def test_promotion_rule_both_ways():
    champion = Evaluation("xgboost", "3", roc_auc=0.80, ece=0.010)
    better = Evaluation("xgboost", None, roc_auc=0.81, ece=0.012)
    within_tolerance = Evaluation("xgboost", None, roc_auc=0.796, ece=0.015)
    worse_auc = Evaluation("xgboost", None, roc_auc=0.79, ece=0.005)
    worse_ece = Evaluation("xgboost", None, roc_auc=0.85, ece=0.03)
    assert decide_promotion(better, champion, RULES)[0]
    assert decide_promotion(within_tolerance, champion, RULES)[0]
    promoted, reason = decide_promotion(worse_auc, champion, RULES)
    assert not promoted and "0.7900" in reason and "0.8000" in reason
    assert not decide_promotion(worse_ece, champion, RULES)[0]
    assert decide_promotion(better, None, RULES) == (True, "no champion yet")
    prior = Evaluation("rules_prior", "1", None, None)
    assert decide_promotion(worse_auc, prior, RULES)[0]  # a learned model always beats the prior
    assert decide_promotion(Evaluation("rules_prior", None, None, None), prior, RULES)[0]
    assert not decide_promotion(Evaluation("rules_prior", None, None, None), champion, RULES)[0]


# ---- learned models on one synthetic warehouse ----------------------------------------------------
@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    settings, resources = data_root(tmp_path_factory.mktemp("model"))
    con = duckdb.connect(str(settings.warehouse_path))
    build_training(con, companies=1500)
    yield con, resources
    con.close()


def test_reproducible_fit(learned):
    con, _ = learned
    config = model_config()
    frame = with_validation_roles(load_training_frame(con), config["training"]["early_stopping_share"])
    args = (frame, model_feature_names(), categorical_feature_names(), config["xgboost"], config["training"])
    first, second = fit_model(*args), fit_model(*args)
    assert first.served.booster_raw == second.served.booster_raw
    assert first.served.calibrator == second.served.calibrator
    assert np.array_equal(first.served.predict_score(frame), second.served.predict_score(frame))
    assert first.params["nthread"] == OSESettings().threads()


def test_worse_challenger_is_not_promoted_and_better_one_is(learned, monkeypatch):
    con, resources = learned
    xgb_config = model_config()["xgboost"]
    with monkeypatch.context() as weak:
        # A stump forest of 3 rounds: a clearly weaker model on the same data.
        weak.setitem(xgb_config, "max_depth", 1)
        weak.setitem(xgb_config, "n_estimators", 3)
        weak.setitem(xgb_config, "early_stopping_rounds", 3)
        first = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT)
    assert first.promoted and first.reason == "no champion yet"

    strong = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(hours=1))
    assert strong.promoted, strong.reason
    assert strong.metrics["roc_auc"] > first.metrics["roc_auc"]
    assert champion_version(resources) == strong.served.version

    with monkeypatch.context() as weak:
        weak.setitem(xgb_config, "max_depth", 1)
        weak.setitem(xgb_config, "n_estimators", 3)
        weak.setitem(xgb_config, "early_stopping_rounds", 3)
        # The first run's inputs again: only a forced retrain trains (and the rule refuses it).
        kept = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(hours=2))
        assert not kept.retrained and kept.served.version == strong.served.version
        assert kept.decision == f"training inputs unchanged since v{first.served.version}, " + (
            f"champion v{strong.served.version} kept"
        )
        worse = train_and_publish(
            con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(hours=2), retrain=True
        )
    assert not worse.promoted and "ROC-AUC too low" in worse.reason
    # The champion was re-scored on the same test rows: its AUC there is the strong model's.
    assert worse.champion_test_roc_auc == pytest.approx(strong.metrics["roc_auc"])
    assert champion_version(resources) == strong.served.version
    assert version_tag(resources, worse.served.version, "promotion_decision") == "not_promoted"
    assert version_tag(resources, worse.served.version, "promotion_reason") == worse.reason
    assert version_tag(resources, strong.served.version, "model_kind") == "xgboost"

    versions = con.execute(
        f"select version, promoted, is_champion, champion_version from {MODEL_VERSIONS_TABLE} "
        "order by version"
    ).fetchall()
    v_strong = int(strong.served.version)
    assert [(v, p) for v, p, *_ in versions][-3:] == [
        (v_strong - 1, True),
        (v_strong, True),
        (v_strong + 1, False),
    ]
    assert [v for v, _, is_champion, _ in versions if is_champion] == [v_strong]

    champion = load_champion(resources["mlflow"])
    assert champion.kind == "xgboost" and champion.version == strong.served.version
    assert champion.calibrator["method"] in ("isotonic", "platt")
    frame = load_training_frame(con).head(200)
    scores = champion.predict_score(frame)
    contributions, base = champion.contributions(frame, exact=True)
    assert np.all((scores >= 0) & (scores <= 100))
    assert np.allclose(contributions.sum(axis=1) + base, scores, atol=1e-6)


def test_test_metrics_are_sane(learned):
    con, resources = learned
    outcome = train_and_publish(
        con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(hours=3), retrain=True
    )
    metrics = outcome.metrics
    assert metrics["roc_auc"] > 0.7
    assert metrics["ece"] < 0.03
    assert metrics["top_decile_lift"] > 2
    assert set(outcome.segments["segment_type"].unique()) == {"naf_section", "region_code", "size_band"}
    assert set(outcome.plots) == {"shap_summary.png", "calibration_curve.png", "gains_lift.png"}
    assert all(png.startswith(b"\x89PNG") for png in outcome.plots.values())
    card = outcome.card_markdown
    assert "## Promotion decision" in card and "data:image/png;base64," in card and "## Known limits" in card
    run = resources["mlflow"].client().get_run(outcome.served.run_id)
    artifacts = {a.path for a in resources["mlflow"].client().list_artifacts(run.info.run_id)}
    assert {"model_card.md", "training_fingerprint.json", "feature_list.json", "plots"} <= artifacts
    assert run.data.metrics["test_roc_auc"] == pytest.approx(metrics["roc_auc"])
    # A unique, meaningful run name; the training set as one dataset per split; a pyfunc with a signature.
    version = outcome.served.version
    assert run.info.run_name.startswith(f"v{version} · as of {AS_OF.isoformat()} · ")
    inputs = {
        d.dataset.name: (d.dataset.digest, {t.key: t.value for t in d.tags})
        for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training_set/train", "training_set/validation", "training_set/test"}
    test_rows = con.execute("select count(*) from training.training_set where split = 'test'").fetchone()[0]
    assert inputs["training_set/test"][1]["rows"] == str(test_rows)
    assert inputs["training_set/test"][1]["mlflow.data.context"] == "test"
    info = mlflow.models.get_model_info(f"models:/{REGISTERED_MODEL_NAME}/{version}")
    assert info.flavors.keys() >= {"python_function"}
    assert info.signature.inputs.input_names() == model_feature_names()
    assert info.signature.outputs.input_names() == ["score", "band"]
    client = resources["mlflow"].client()
    described = client.get_model_version(REGISTERED_MODEL_NAME, version).description
    assert "trained as of" in described and run.data.tags["mlflow.note.content"] == described
    assert "mlflow.pyfunc.load_model" in client.get_registered_model(REGISTERED_MODEL_NAME).description
    assert version_tag(resources, version, "training_fingerprint") == run.data.tags["training_fingerprint"]


def test_calibrator_prefers_platt_unless_isotonic_is_clearly_better():
    from ose_assets.model.train import choose_calibrator

    rng = np.random.default_rng(0)
    margins = rng.normal(size=20_000)
    groups = np.arange(margins.size)
    logistic = (rng.random(margins.size) < 1 / (1 + np.exp(-(1.5 * margins - 3)))).astype(float)
    calibrator, brier = choose_calibrator(margins, logistic, groups, folds=5, isotonic_min_gain=0.01)
    assert calibrator["method"] == "platt", brier
    # A step-shaped truth no sigmoid can follow: isotonic's gain is large and it is chosen.
    step = (rng.random(margins.size) < np.where(margins > 1.0, 0.6, 0.02)).astype(float)
    calibrator, brier = choose_calibrator(margins, step, groups, folds=5, isotonic_min_gain=0.01)
    assert calibrator["method"] == "isotonic", brier
