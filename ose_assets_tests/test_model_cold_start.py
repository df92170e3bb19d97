"""Cold start: the rules prior is served while labels are few, and a learned model replaces it."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np

from ose_assets.model.pipeline import load_training_frame, train_and_publish
from ose_assets.model.served_model import ServedModel, load_champion
from ose_assets_tests.training_fixtures import (
    AS_OF,
    TRAINED_AT,
    build_training,
    data_root,
    version_tag,
)


# ---- cold start -----------------------------------------------------------------------------------
def test_cold_start_serves_the_rules_prior_then_a_learned_model_replaces_it(tmp_path):
    settings, resources = data_root(tmp_path)
    con = duckdb.connect(str(settings.warehouse_path))
    build_training(con, companies=600, open_rate=0.02)  # a handful of wins
    outcome = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT)
    assert outcome.served.kind == "rules_prior" and outcome.promoted
    assert version_tag(resources, outcome.served.version, "model_kind") == "rules_prior"
    champion = load_champion(resources["mlflow"])
    assert champion.kind == "rules_prior"
    frame = load_training_frame(con)
    scores = champion.predict_score(frame)
    assert np.all((scores >= 0) & (scores <= 100)) and scores.std() > 0
    contributions, base = champion.contributions(frame.head(50), exact=True)
    assert np.allclose(contributions.sum(axis=1) + base, scores[:50], atol=1e-6)
    # The prior's weights follow the signal vocabulary's signs.
    assert (
        champion.prior["weights"]["decayed_signal_intensity"] > 0 > champion.prior["weights"]["has_red_flag"]
    )

    build_training(con, companies=1500)  # labels arrive
    learned = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(days=7))
    assert (
        learned.served.kind == "xgboost" and learned.promoted and "replaces the rules prior" in learned.reason
    )
    assert load_champion(resources["mlflow"]).kind == "xgboost"
    con.close()


def test_no_outcomes_at_all_never_crashes(tmp_path):
    settings, resources = data_root(tmp_path)
    con = duckdb.connect(str(settings.warehouse_path))
    build_training(con, companies=100, open_rate=0.0)
    outcome = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT)
    assert outcome.served.kind == "rules_prior" and outcome.metrics["roc_auc"] is None
    # Empty training set (no company, no snapshot): still a prior, still registered.
    con.execute("delete from training.training_set")
    empty = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(hours=1))
    assert empty.served.kind == "rules_prior" and empty.promoted
    assert ServedModel.from_bytes(empty.served.to_bytes()).predict_score(load_training_frame(con)).shape == (
        0,
    )
    con.close()
