"""Fit the calibrated XGBoost model on the training set's time split.

Rows (training_rows.py): `train` fits the booster, streamed from DuckDB into a QuantileDMatrix with
negatives downsampled (training.negative_sample_share, reweighted); `early_stopping` (negatives
downsampled too) and `calibration` (the validation period split by a stable hash of the SIREN)
early-stop the booster and fit the calibrator on rows the other never sees; `test` is only evaluated.

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

import duckdb
import numpy as np
import polars as pl
from scipy.special import expit

from ose_assets.model.served_model import ServedModel, apply_calibrator
from ose_assets.model.training_rows import PARTS, TrainingRows, part_expression
from ose_assets.settings import OSESettings

VALIDATION_ROLE = "validation_role"  # 'early_stopping' | 'calibration' on validation rows


@dataclass(frozen=True)
class TrainedModel:
    served: ServedModel
    params: dict[str, Any]
    best_iteration: int
    calibration_brier: dict[str, float]
    rows: dict[str, int] = field(default_factory=dict)


def with_validation_roles(frame: pl.DataFrame, early_stopping_share: float) -> pl.DataFrame:
    """The frame with its validation role (training_rows.part_expression; null outside validation)."""
    role = f"case when split = 'validation' then {part_expression(early_stopping_share)} end"
    return duckdb.sql(f"select *, {role} as {VALIDATION_ROLE} from frame").pl()


def insufficient_labels(counts: dict[str, tuple[int, int]], min_won: int, min_lost: int) -> str | None:
    """Why no learned model can be trained (cold start), or None; `counts` from TrainingRows.counts.

    A learned model needs training.min_won converted and training.min_lost non-converted train rows,
    and both classes in each of the early-stopping, calibration and test parts (else early stopping,
    calibration or the test metrics are undefined).
    """
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
    """Category lists from the train rows of a frame (sorted, so codes are reproducible)."""
    train = frame.filter(pl.col("split") == "train")
    return {
        name: sorted(train.get_column(name).cast(pl.String).drop_nulls().unique().to_list())
        for name in categorical
    }


def scale_pos_weight(positives: int, negatives: int, xgb_config: dict[str, Any]) -> float:
    """Weight of a converted row: xgboost.scale_pos_weight is 'balanced' (negatives / positives),
    'sqrt' (its square root: rebalances without letting a few positives dominate the leaves) or a number.
    Counted before downsampling: the kept negatives' weights restore their full count."""
    setting = xgb_config.get("scale_pos_weight", "balanced")
    ratio = negatives / positives
    return (
        {"balanced": ratio, "sqrt": float(np.sqrt(ratio))}.get(setting, setting)
        if isinstance(setting, str)
        else float(setting)
    )


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
        "nthread": OSESettings().threads(),
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


# XGBoost's metrics where higher is better (the others, e.g. logloss, are minimised).
MAXIMIZED_METRICS = ("auc", "aucpr", "map", "ndcg", "pre")


def periodic_early_stopping(data, name: str, rounds: int, period: int, patience: int, metric: str):
    """An XGBoost callback: early stopping that evaluates `data` every `period` rounds and at the last of
    `rounds`.

    XGBoost's own early stopping evaluates after every round: at 1,000,000 companies that was 28 % of
    the model step's samples (90 % of it predicting the evaluation rows), about as much as growing the
    trees. Training stops once `patience` rounds pass without improvement; best_iteration (an evaluated
    round) is recorded on the booster for slicing.
    """
    import xgboost as xgb

    maximize = metric.split("@")[0] in MAXIMIZED_METRICS

    class PeriodicEarlyStopping(xgb.callback.TrainingCallback):
        def __init__(self) -> None:
            self.best: tuple[int, float] | None = None  # (round, score)
            super().__init__()

        def after_iteration(self, model, epoch: int, evals_log) -> bool:
            if (epoch + 1) % period and epoch + 1 < rounds:
                return False
            # "[epoch]\t<name>-<metric>:<value>": the last metric counts, as in XGBoost's early stopping.
            score = float(model.eval(data, name, epoch).rsplit(":", 1)[1])
            if self.best is None or (score > self.best[1] if maximize else score < self.best[1]):
                self.best = (epoch, score)
            return epoch - self.best[0] >= patience

        def after_training(self, model):
            model.set_attr(best_iteration=str(self.best[0]), best_score=str(self.best[1]))
            return model

    return PeriodicEarlyStopping()


def _train_iterator(rows: TrainingRows, encoder: ServedModel):
    """An XGBoost data iterator over TrainingRows.train_batches, re-read from DuckDB on every pass."""
    import xgboost as xgb

    class TrainBatches(xgb.DataIter):
        def __init__(self) -> None:
            self._batches = None
            super().__init__(release_data=True)

        def next(self, input_data) -> bool:
            if self._batches is None:
                self._batches = rows.train_batches(encoder.feature_names, list(encoder.categories))
            batch = next(self._batches, None)
            if batch is None:
                return False
            input_data(
                data=encoder.matrix(batch, np.float32),
                label=batch["label"].to_numpy(),
                weight=batch["weight"].to_numpy(),
                feature_names=encoder.feature_names,
                feature_types=encoder.feature_types(),
            )
            return True

        def reset(self) -> None:
            self._batches = None

    return TrainBatches()


def fit_model(
    frame: pl.DataFrame,
    feature_names: list[str],
    categorical: list[str],
    xgb_config: dict[str, Any],
    training_config: dict[str, Any],
) -> TrainedModel:
    """fit_streamed over an in-memory training-set frame (viewed by an in-memory DuckDB)."""
    con = duckdb.connect()
    con.register("training_frame", frame.to_arrow())
    try:
        rows = TrainingRows.from_config(con, training_config, "training_frame")
        return fit_streamed(rows, feature_names, categorical, xgb_config, training_config)
    finally:
        con.close()


def fit_streamed(
    rows: TrainingRows,
    feature_names: list[str],
    categorical: list[str],
    xgb_config: dict[str, Any],
    training_config: dict[str, Any],
) -> TrainedModel:
    """Booster on the (downsampled) train rows, early-stopped on the early-stopping part, calibrated on
    the calibration part. The rows must pass insufficient_labels."""
    import xgboost as xgb

    encoder = ServedModel(
        kind="xgboost", feature_names=feature_names, categories=rows.categories(categorical)
    )
    counts = rows.counts()
    params = booster_params(
        xgb_config, training_config["seed"], scale_pos_weight(*counts["train"], xgb_config)
    )
    dtrain = xgb.QuantileDMatrix(
        _train_iterator(rows, encoder), enable_categorical=True, nthread=params["nthread"]
    )
    early = rows.load("early_stopping", ["label", *feature_names], categorical)
    kept_positives = int(early["label"].sum())
    if kept_positives in (0, early.height):  # ROC-AUC would be NaN and stop the booster at random
        raise ValueError(
            f"the downsampled early-stopping rows lack one class ({kept_positives} converted of "
            f"{early.height}, negative share {rows.negative_share:.4f}): raise training.max_train_rows "
            "or training.negative_sample_share"
        )
    dearly = xgb.QuantileDMatrix(
        encoder.matrix(early, np.float32),
        label=early["label"].to_numpy(),
        ref=dtrain,
        feature_names=feature_names,
        feature_types=encoder.feature_types(),
        enable_categorical=True,
        nthread=params["nthread"],
    )
    early_kept = early.height
    del early
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=int(xgb_config["n_estimators"]),
        callbacks=[
            periodic_early_stopping(
                dearly,
                "early_stopping",
                int(xgb_config["n_estimators"]),
                int(xgb_config["early_stopping_period"]),
                int(xgb_config["early_stopping_rounds"]),
                params["eval_metric"],
            )
        ],
    )
    del dtrain, dearly
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]  # keep the early-stopped trees only
    booster_raw = bytes(booster.save_raw("ubj"))
    uncalibrated = ServedModel(
        kind="xgboost", feature_names=feature_names, categories=encoder.categories, booster_raw=booster_raw
    )
    calibration = rows.load("calibration", ["siren", "label", *feature_names], categorical)
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
            "negative_sample_share": rows.negative_share,
        }
    )
    kept = rows.kept_train_counts()
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
        rows={
            **{n: sum(counts[n]) for n in PARTS},
            "train_kept": sum(kept),
            "early_stopping_kept": early_kept,
        },
    )
