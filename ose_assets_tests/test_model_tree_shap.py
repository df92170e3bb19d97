"""Grouped TreeSHAP (ose_assets/model/tree_shap.py) gives XGBoost's own pred_contribs, row for row."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from ose_assets.model import served_model, tree_shap
from ose_assets.model.served_model import ServedModel
from ose_assets.model.tree_shap import GroupedTreeShap

CATEGORICAL = 3  # a categorical column of 30 codes: split by partition of its categories
FEW_CATEGORIES = 5  # a categorical column of 3 codes: one-hot splits (XGBoost's max_cat_to_onehot)


def _data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns with missing values and ties on split values, categorical columns of 30 and 3 codes."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=rows),
            rng.integers(0, 12, size=rows).astype(float),  # counts: many rows on a threshold
            rng.exponential(size=rows),
            rng.integers(0, 30, size=rows).astype(float),
            rng.uniform(size=rows),
            rng.integers(0, 3, size=rows).astype(float),
        ]
    )
    x[rng.uniform(size=x.shape) < 0.15] = np.nan
    logit = (
        np.nan_to_num(x[:, 0])
        + 0.3 * np.nan_to_num(x[:, 1])
        + np.isin(x[:, 3], [2, 5, 7, 11])
        + (x[:, 5] == 1)
        - 2
    )
    return x, (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(float)


def _dmatrix(x: np.ndarray, label: np.ndarray | None = None) -> xgb.DMatrix:
    types = ["c" if j in (CATEGORICAL, FEW_CATEGORIES) else "q" for j in range(x.shape[1])]
    return xgb.DMatrix(x, label=label, feature_types=types, enable_categorical=True)


@pytest.mark.parametrize("depth", [3, 6])
def test_grouped_tree_shap_equals_xgboost_pred_contribs(depth, monkeypatch):
    x, y = _data(6_000)
    booster = xgb.train(
        {"max_depth": depth, "eta": 0.2, "objective": "binary:logistic"},
        _dmatrix(x, y),
        num_boost_round=40,
    )
    # Unseen rows, with a category the model never saw.
    unseen, _ = _data(3_000, seed=1)
    unseen[:50, CATEGORICAL] = 41
    expected = booster.predict(_dmatrix(unseen), pred_contribs=True)

    grouped = GroupedTreeShap(booster, {CATEGORICAL, FEW_CATEGORIES})
    split = {feature for _, lookups in grouped.trees for feature, *_ in lookups}
    assert {CATEGORICAL, FEW_CATEGORIES} <= split
    actual = grouped.contributions(unseen, _dmatrix)
    assert actual.shape == expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)

    # Deep trees over many features: keys compacted and grouped by sorting instead of a dense table.
    monkeypatch.setattr(tree_shap, "DENSE_KEYS", 8)
    np.testing.assert_allclose(grouped.contributions(unseen, _dmatrix), expected, rtol=0, atol=1e-5)


def test_grouped_tree_shap_of_no_rows():
    x, y = _data(500)
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic"}, _dmatrix(x, y), num_boost_round=3)
    assert GroupedTreeShap(booster, {CATEGORICAL}).contributions(x[:0], _dmatrix).shape == (0, 7)


def test_served_model_contributions_are_the_same_grouped_or_row_by_row(monkeypatch):
    """ServedModel.contributions switches to grouped TreeSHAP from GROUPED_SHAP_MIN_ROWS rows: the
    published reasons must not depend on how many companies are explained at once."""
    x, y = _data(4_000)
    names = [f"f{j}" for j in range(x.shape[1])]
    categories = {names[CATEGORICAL]: [f"k{k}" for k in range(30)]}
    model = ServedModel(kind="xgboost", feature_names=names, categories=categories)
    booster = xgb.train(
        {"max_depth": 3, "eta": 0.2, "objective": "binary:logistic", "max_cat_to_onehot": 1},
        model.dmatrix(x, label=y),
        num_boost_round=30,
    )
    model = ServedModel(
        kind="xgboost", feature_names=names, categories=categories, booster_raw=bytes(booster.save_raw("ubj"))
    )
    features = pl.DataFrame({name: x[:, j] for j, name in enumerate(names)}).with_columns(
        pl.Series(names[CATEGORICAL], [None if np.isnan(v) else f"k{int(v)}" for v in x[:, CATEGORICAL]])
    )
    monkeypatch.setattr(served_model, "GROUPED_SHAP_MIN_ROWS", 10**9)
    row_by_row, base = model.contributions(features)
    monkeypatch.setattr(served_model, "GROUPED_SHAP_MIN_ROWS", 1)
    grouped, grouped_base = model.contributions(features)
    assert model._cached_grouped_shap is not None  # the grouped path ran
    # Points = TreeSHAP x (score - base) / (margin - bias): where the margin barely moves, the float32
    # rounding of the TreeSHAP values (1e-6, test above) is amplified, up to 0.1 % of a contribution.
    np.testing.assert_allclose(grouped, row_by_row, rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(grouped.sum(axis=1), row_by_row.sum(axis=1), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(grouped_base, base)
