"""The rules prior: the transparent score served before there are enough labels for a learned model.

logit = intercept + sum over features of weight * clip((value - mean) / std, -clip, clip), missing
values counting as the mean. Weights and clip live in model_config.yaml `rules_prior` (signs follow
the signal vocabulary: recent positive signals up, red flags and layoffs down; the main term is the
feature store's decayed_signal_intensity, itself weighted by the vocabulary's signal weights). Means
and standard deviations are taken over the training-set rows; the intercept is solved so that the
mean score equals the observed conversion rate, or rules_prior.base_rate when no conversion is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import brentq
from scipy.special import expit, logit

from ose_assets.model.served_model import ServedModel
from ose_assets.model.train import categories_of


def build_prior(
    frame: pl.DataFrame, feature_names: list[str], categorical: list[str], prior_config: dict[str, Any]
) -> ServedModel:
    """A rules_prior ServedModel over the numeric and boolean features of `frame` (categoricals weigh 0)."""
    weights = {
        name: float(w)
        for name, w in prior_config["weights"].items()
        if name in feature_names and name not in categorical
    }
    center: dict[str, float] = {}
    scale: dict[str, float] = {}
    for name in weights:
        values = (
            frame.get_column(name).cast(pl.Float64).drop_nulls()
            if frame.height
            else pl.Series([], dtype=pl.Float64)
        )
        center[name] = float(values.mean()) if values.len() else 0.0
        std = float(values.std()) if values.len() > 1 else 0.0
        scale[name] = std if std > 0 else 1.0
    positives = int(frame["label"].sum()) if "label" in frame.columns and frame.height else 0
    target = positives / frame.height if positives else float(prior_config["base_rate"])
    prior = {
        "intercept": 0.0,
        "weights": weights,
        "center": center,
        "scale": scale,
        "clip": float(prior_config["clip"]),
    }
    # Categories encode like the learned model's (they weigh 0, but the SHAP plot shows their values).
    categories = categories_of(frame, categorical) if frame.height else {name: [] for name in categorical}
    draft = ServedModel(kind="rules_prior", feature_names=feature_names, categories=categories, prior=prior)
    terms = draft.margins(frame) if frame.height else np.zeros(1)
    # Intercept such that the mean probability over the rows is the target rate (monotone in it).
    intercept = (
        brentq(lambda b: expit(b + terms).mean() - target, -30.0, 30.0) if frame.height else logit(target)
    )
    return ServedModel(
        kind="rules_prior",
        feature_names=feature_names,
        categories=categories,
        prior={**prior, "intercept": float(intercept)},
    )


def prior_markdown(served: ServedModel) -> str:
    """The prior's weights as a table (model card and Dagster metadata)."""
    prior = served.prior
    rows = ["| feature | weight (logit per std) | mean | std |", "|---|---|---|---|"]
    rows += [
        f"| {name} | {weight:+.2f} | {prior['center'][name]:.4g} | {prior['scale'][name]:.4g} |"
        for name, weight in prior["weights"].items()
    ]
    rows.append(f"\nIntercept {prior['intercept']:+.3f}, standardised values clipped to ±{prior['clip']:g}.")
    return "\n".join(rows)
