"""Fit the calibrated XGBoost model on the training set's time split.

Rows: `train` fits the booster; `validation` is split by a stable hash of the SIREN into an
early-stopping half and a calibration half (training.early_stopping_share), so early stopping and
calibration never see the same rows (nor the same company); `test` is only evaluated.

Class imbalance: scale_pos_weight = negatives / positives on train, so the trees see both classes;
that inflates the raw probabilities, which the calibrator (fitted on untouched calibration rows)
maps back to observed frequencies. Calibration method: Platt, unless isotonic lowers the out-of-fold
Brier score (training.calibration_folds folds of the calibration half) by more than
training.isotonic_min_brier_gain: isotonic's step plateaus give dozens of companies the same score
and throw away the model's ordering at the top, which is exactly where the ranking is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit

from ose_assets.model.served_model import ServedModel, apply_calibrator

VALIDATION_ROLE = "validation_role"  # 'early_stopping' | 'calibration' on validation rows


@dataclass(frozen=True)
class TrainedModel:
    served: ServedModel
    params: dict[str, Any]
    best_iteration: int
    calibration_brier: dict[str, float]
    rows: dict[str, int] = field(default_factory=dict)


def with_validation_roles(frame: pl.DataFrame, early_stopping_share: float) -> pl.DataFrame:
    """Tag validation rows by a multiplicative hash of the SIREN (stable across runs and versions)."""
    bucket = (
        pl.col("siren").cast(pl.Int64, strict=False).fill_null(0) * 2654435761 % 4294967296
    ) / 4294967296.0
    return frame.with_columns(
        pl.when(pl.col("split") != "validation")
        .then(None)
        .when(bucket < early_stopping_share)
        .then(pl.lit("early_stopping"))
        .otherwise(pl.lit("calibration"))
        .alias(VALIDATION_ROLE)
    )


def part(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """Rows of one part: 'train', 'test', 'early_stopping' or 'calibration'."""
    if name in ("early_stopping", "calibration"):
        return frame.filter(pl.col(VALIDATION_ROLE) == name)
    return frame.filter(pl.col("split") == name)


def label_counts(frame: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """(positives, negatives) of every part."""
    return {
        name: (int(rows["label"].sum() or 0), rows.height - int(rows["label"].sum() or 0))
        for name in ("train", "early_stopping", "calibration", "test")
        for rows in [part(frame, name)]
    }


def insufficient_labels(frame: pl.DataFrame, min_won: int, min_lost: int) -> str | None:
    """Why no learned model can be trained (cold start), or None.

    A learned model needs training.min_won converted and training.min_lost non-converted train rows,
    and both classes in each of the early-stopping, calibration and test parts (else early stopping,
    calibration or the test metrics are undefined).
    """
    counts = label_counts(frame)
    won, lost = counts["train"]
    if won < min_won or lost < min_lost:
        return (
            f"{won} converted / {lost} non-converted train rows "
            f"(a learned model needs {min_won} / {min_lost})"
        )
    for name in ("early_stopping", "calibration", "test"):
        if min(counts[name]) == 0:
            return f"the {name} rows lack one class ({counts[name][0]} converted / {counts[name][1]} not)"
    return None


def categories_of(frame: pl.DataFrame, categorical: list[str]) -> dict[str, list[str]]:
    """Category lists from the train rows (sorted, so codes are reproducible); later values are missing."""
    train = part(frame, "train")
    return {
        name: sorted(train.get_column(name).cast(pl.String).drop_nulls().unique().to_list())
        for name in categorical
    }


def scale_pos_weight(y_train: np.ndarray, xgb_config: dict[str, Any]) -> float:
    """Weight of a converted row: xgboost.scale_pos_weight is 'balanced' (negatives / positives),
    'sqrt' (its square root: rebalances without letting a few positives dominate the leaves) or a number."""
    setting = xgb_config.get("scale_pos_weight", "balanced")
    positives = float(y_train.sum())
    ratio = (len(y_train) - positives) / positives
    return {"balanced": ratio, "sqrt": float(np.sqrt(ratio))}.get(setting, setting) if isinstance(
        setting, str
    ) else float(setting)


def booster_params(xgb_config: dict[str, Any], seed: int, scale_pos_weight: float) -> dict[str, Any]:
    params = {
        "objective": "binary:logistic",
        "tree_method": xgb_config["tree_method"],
        "max_depth": int(xgb_config["max_depth"]),
        "eta": float(xgb_config["learning_rate"]),
        "min_child_weight": float(xgb_config["min_child_weight"]),
        "subsample": float(xgb_config["subsample"]),
        "colsample_bytree": float(xgb_config["colsample_bytree"]),
        "lambda": float(xgb_config["reg_lambda"]),
        "eval_metric": xgb_config["eval_metric"],
        "scale_pos_weight": float(scale_pos_weight),
        "seed": int(seed),
        "nthread": int(xgb_config["nthread"]),
    }
    return params


def _fit_calibrator(method: str, margins: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        fitted = LogisticRegression(C=1e6).fit(margins.reshape(-1, 1), y)
        return {"method": "platt", "a": float(fitted.coef_[0, 0]), "b": float(fitted.intercept_[0])}
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(expit(margins), y)
    return {"method": "isotonic", "x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()}


def choose_calibrator(
    margins: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, isotonic_min_gain: float = 0.0
) -> tuple[dict[str, Any], dict[str, float]]:
    """Platt or isotonic by out-of-fold Brier score (folds grouped by company), refitted on all rows.

    Isotonic wins only when its Brier score is lower than Platt's by more than `isotonic_min_gain`
    (relative), since its plateaus tie companies the model tells apart.
    """
    from sklearn.model_selection import GroupKFold

    splitter = GroupKFold(n_splits=max(2, min(folds, len(np.unique(groups)))))
    brier = {}
    for method in ("isotonic", "platt"):
        out_of_fold = np.empty_like(margins)
        for fit_rows, held_rows in splitter.split(margins, y, groups):
            if y[fit_rows].min() == y[fit_rows].max():  # one class: the constant rate is all we know
                out_of_fold[held_rows] = y[fit_rows].mean()
                continue
            out_of_fold[held_rows] = apply_calibrator(
                _fit_calibrator(method, margins[fit_rows], y[fit_rows]), margins[held_rows]
            )
        brier[method] = float(np.mean((out_of_fold - y) ** 2))
    best = "isotonic" if brier["isotonic"] < brier["platt"] * (1.0 - isotonic_min_gain) else "platt"
    return _fit_calibrator(best, margins, y), brier


def fit_model(
    frame: pl.DataFrame,
    feature_names: list[str],
    categorical: list[str],
    xgb_config: dict[str, Any],
    training_config: dict[str, Any],
) -> TrainedModel:
    """Booster on train, early-stopped on the early-stopping half, calibrated on the calibration half.

    `frame` must carry validation roles (with_validation_roles) and pass insufficient_labels.
    """
    import xgboost as xgb

    encoder = ServedModel(
        kind="xgboost", feature_names=feature_names, categories=categories_of(frame, categorical)
    )
    train, early, calibration = (part(frame, n) for n in ("train", "early_stopping", "calibration"))
    y_train = train["label"].to_numpy().astype(float)
    params = booster_params(xgb_config, training_config["seed"], scale_pos_weight(y_train, xgb_config))
    dtrain = encoder.dmatrix(encoder.matrix(train), y_train)
    dearly = encoder.dmatrix(encoder.matrix(early), early["label"].to_numpy().astype(float))
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=int(xgb_config["n_estimators"]),
        evals=[(dearly, "early_stopping")],
        early_stopping_rounds=int(xgb_config["early_stopping_rounds"]),
        verbose_eval=False,
    )
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]  # keep the early-stopped trees only
    booster_raw = bytes(booster.save_raw("ubj"))
    uncalibrated = ServedModel(
        kind="xgboost", feature_names=feature_names, categories=encoder.categories, booster_raw=booster_raw
    )
    margins = uncalibrated.margins(calibration)
    calibrator, brier = choose_calibrator(
        margins,
        calibration["label"].to_numpy().astype(float),
        calibration["siren"].to_numpy(),
        int(training_config["calibration_folds"]),
        float(training_config["isotonic_min_brier_gain"]),
    )
    params.update(
        {
            "num_boost_round": int(xgb_config["n_estimators"]),
            "early_stopping_rounds": int(xgb_config["early_stopping_rounds"]),
        }
    )
    return TrainedModel(
        served=ServedModel(
            kind="xgboost",
            feature_names=feature_names,
            categories=encoder.categories,
            booster_raw=booster_raw,
            calibrator=calibrator,
        ),
        params=params,
        best_iteration=best_iteration,
        calibration_brier=brier,
        rows={n: part(frame, n).height for n in ("train", "early_stopping", "calibration", "test")},
    )
