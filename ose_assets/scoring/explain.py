"""Explanations: the top factors up and down of each company, with sentences and evidence.

explain() is the one code path for the scoring asset (in chunks) and for the API (exact, on demand).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from ose_assets.features.catalog import FEATURE_CATALOG, Feature
from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.evidence import attach_evidence
from ose_assets.scoring.reasons import render_reasons

TOP_REASONS = 3
# A factor moving the score by less than this (it would display as 0.00 points) is not a reason.
MIN_CONTRIBUTION_POINTS = 0.005

REASON_SCHEMA = {
    "siren": pl.String,
    "direction": pl.String,
    "reason_rank": pl.Int8,
    "feature": pl.String,
    "feature_value": pl.String,
    "contribution_points": pl.Float64,
    "reason_fr": pl.String,
    "reason_en": pl.String,
    "evidence": pl.String,
    "is_exact": pl.Boolean,
}


# Features that state the same fact about a company (one event counted over several windows, a flag and
# its count, a band and its midpoint) make one reason, not three: their contributions are added up and
# the member that moves the score most speaks for them.
SAME_FACT = {
    "headcount_midpoint": "headcount_band_rank",
    "red_flag_count": "has_red_flag",
    "collective_procedure_count": "has_collective_procedure",
    "naf_division": "naf_section",
}
WINDOW_SUFFIX = re.compile(r"_(3m|6m|12m)$")


def reason_groups(feature_names: list[str]) -> np.ndarray:
    """Group index of each feature column: features stating the same fact share one."""
    keys = [WINDOW_SUFFIX.sub("", SAME_FACT.get(name, name)) for name in feature_names]
    _, groups = np.unique(np.array(keys, dtype=object), return_inverse=True)
    return groups


def merge_same_facts(contributions: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: each group's summed contribution, and the column of its member with the largest |value|."""
    n_groups = int(groups.max()) + 1 if groups.size else 0
    merged = np.zeros((contributions.shape[0], n_groups))
    lead = np.zeros((contributions.shape[0], n_groups), dtype=np.int64)
    for group in range(n_groups):  # a few dozen groups, each over the whole matrix at once
        members = np.flatnonzero(groups == group)
        block = contributions[:, members]
        merged[:, group] = block.sum(axis=1)
        lead[:, group] = members[np.argmax(np.abs(block), axis=1)]
    return merged, lead


def top_factors(contributions: np.ndarray, top_k: int = TOP_REASONS):
    """Vectorised top-k selection over an (n companies x k features) contribution matrix.

    Returns flat arrays (row, column, is_up, rank, points) of the kept factors: the top_k largest
    positive contributions ('up', rank 1 = largest) and the top_k most negative ('down').
    """
    n, m = contributions.shape
    k = min(top_k, m)
    up = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    down = np.argsort(contributions, axis=1, kind="stable")[:, :k]
    columns = np.concatenate([up, down], axis=1)
    points = np.take_along_axis(contributions, columns, axis=1)
    is_up = np.tile(np.arange(2 * k) < k, (n, 1))
    rank = np.tile(np.concatenate([np.arange(1, k + 1), np.arange(1, k + 1)]), (n, 1))
    keep = np.where(is_up, points >= MIN_CONTRIBUTION_POINTS, points <= -MIN_CONTRIBUTION_POINTS)
    rows = np.repeat(np.arange(n), 2 * k).reshape(n, 2 * k)
    return rows[keep], columns[keep], is_up[keep], rank[keep], points[keep]


def _display_value(model: ServedModel) -> pl.Expr:
    """The value as a reader sees it: the category label, an integer, or a number with 2 decimals."""
    labels = {name: dict(enumerate(categories)) for name, categories in model.categories.items()}
    number = (
        pl.when(pl.col("value") == pl.col("value").round(0))
        .then(pl.col("value").cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col("value").round(2).cast(pl.String))
    )
    expr = pl.when(pl.col("value").is_null()).then(pl.lit(None, pl.String))
    for name, mapping in labels.items():
        label = pl.col("value").cast(pl.Int64).replace_strict(mapping, default=None, return_dtype=pl.String)
        expr = expr.when(pl.col("feature") == name).then(label)
    return expr.otherwise(number)


def explain(
    model: ServedModel,
    features: pl.DataFrame,
    evidence: pl.DataFrame,
    exact: bool = True,
    top_k: int = TOP_REASONS,
    catalog: list[Feature] = FEATURE_CATALOG,
) -> pl.DataFrame:
    """Reasons of every row of `features` (siren, as_of_date, the model's features), with the columns
    of scoring.score_reasons. `evidence`: rows of scoring.signal_evidence for these companies (more are
    fine). exact=False uses XGBoost's approximate (Saabas) contributions, ~100x faster.
    """
    if features.is_empty():
        return pl.DataFrame(schema=REASON_SCHEMA)
    x = model.matrix(features)
    contributions, _ = model.contributions(features, exact=exact, x=x)
    merged, lead = merge_same_facts(contributions, reason_groups(model.feature_names))
    rows, group_columns, is_up, rank, points = top_factors(merged, top_k)
    columns = lead[rows, group_columns]
    values = x[rows, columns]
    # Strings gathered by Polars: NumPy string arrays took a second per 200,000 companies to convert.
    reasons = pl.DataFrame(
        {
            "reason_id": np.arange(rows.size),
            "siren": features.get_column("siren").gather(rows),
            "as_of_date": features.get_column("as_of_date").gather(rows),
            "direction": pl.Series(["down", "up"]).gather(is_up.astype(np.uint8)),
            "reason_rank": rank.astype(np.int8),
            "feature": pl.Series(model.feature_names, dtype=pl.String).gather(columns),
            "value": values,
            "contribution_points": np.round(points.astype(np.float64), 2),
        }
    ).with_columns(pl.col("value").fill_nan(None))
    reasons = reasons.with_columns(feature_value=_display_value(model))
    reasons = render_reasons(attach_evidence(reasons, evidence, catalog))
    return (
        reasons.sort("reason_id")
        .with_columns(is_exact=pl.lit(exact))
        .select([pl.col(name).cast(dtype) for name, dtype in REASON_SCHEMA.items()])
    )
