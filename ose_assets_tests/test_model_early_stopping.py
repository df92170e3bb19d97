"""Periodic early stopping (ose_assets.model.train.periodic_early_stopping) against XGBoost's own."""

import numpy as np
import pytest
import xgboost as xgb

from ose_assets.model.train import periodic_early_stopping

ROUNDS = 120


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6000, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=2.0, size=6000) > 1.5).astype(float)
    return xgb.DMatrix(x[:4000], label=y[:4000]), xgb.DMatrix(x[4000:], label=y[4000:])


def params(metric: str) -> dict:
    # A high learning rate overfits within ROUNDS, so early stopping has something to stop.
    return {"objective": "binary:logistic", "max_depth": 4, "eta": 0.5, "eval_metric": metric, "seed": 1}


def scores_per_round(train, valid, metric: str) -> list[float]:
    log: dict = {}
    xgb.train(params(metric), train, ROUNDS, evals=[(valid, "v")], evals_result=log, verbose_eval=False)
    return log["v"][metric]


@pytest.mark.parametrize("metric", ["auc", "logloss"])
def test_every_round_matches_xgboost_early_stopping(data, metric):
    train, valid = data
    own = xgb.train(params(metric), train, ROUNDS, evals=[(valid, "v")], early_stopping_rounds=10,
                    verbose_eval=False)  # fmt: skip
    periodic = xgb.train(
        params(metric), train, ROUNDS, callbacks=[periodic_early_stopping(valid, "v", ROUNDS, 1, 10, metric)]
    )
    assert own.num_boosted_rounds() < ROUNDS, "the data must make XGBoost stop early"
    assert periodic.best_iteration == own.best_iteration
    assert periodic.num_boosted_rounds() == own.num_boosted_rounds()
    assert float(periodic.attr("best_score")) == pytest.approx(own.best_score, abs=1e-6)


@pytest.mark.parametrize("metric", ["auc", "logloss"])
def test_every_k_rounds_keeps_the_best_evaluated_round(data, metric):
    train, valid = data
    period, patience = 5, 20
    booster = xgb.train(
        params(metric),
        train,
        ROUNDS,
        callbacks=[periodic_early_stopping(valid, "v", ROUNDS, period, patience, metric)],
    )
    per_round = scores_per_round(train, valid, metric)
    evaluated = [r for r in range(booster.num_boosted_rounds()) if (r + 1) % period == 0]
    best = (max if metric == "auc" else min)(evaluated, key=lambda r: per_round[r])
    assert booster.best_iteration == best
    assert float(booster.attr("best_score")) == pytest.approx(per_round[best], abs=1e-6)
    # Stopped at the first evaluation `patience` rounds past the best, not before.
    assert booster.num_boosted_rounds() == best + patience + 1 < ROUNDS


def test_the_last_round_is_evaluated_when_not_a_multiple_of_the_period(data):
    train, valid = data
    booster = xgb.train(
        params("auc"), train, 3, callbacks=[periodic_early_stopping(valid, "v", 3, 10, 100, "auc")]
    )
    assert booster.num_boosted_rounds() == 3 and booster.best_iteration == 2
