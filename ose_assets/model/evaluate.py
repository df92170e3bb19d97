"""Test-period metrics and plots of a served model (learned or rules prior), the same for both.

Conventions (also in the model card):
- probabilities are the published scores / 100;
- expected calibration error (ECE): mean |observed rate - mean probability| over `ece_bins`
  equal-frequency bins, weighted by rows. Equal-frequency, because conversion rates are a few percent
  and equal-width bins would put nearly every row in the first bin;
- top decile: the 10 % highest probabilities of the pooled test rows; lift = its conversion rate /
  the overall rate;
- top 10: the 10 highest scores of each test snapshot (what a sales team calls first), precision
  averaged over the snapshots;
- per-segment ROC-AUC only where the segment has both classes, else null.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files and base64 images, never windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from ose_assets.model.served_model import ServedModel  # noqa: E402

SEGMENTS = ("naf_section", "region_code", "size_band")
TOP_N = 10


def size_band() -> pl.Expr:
    """Size band from the SIRENE headcount band rank (0 = no employee, 4 = 10-19, 6 = 50-99, 9 = 250-499)."""
    rank = pl.col("headcount_band_rank")
    return (
        pl.when(rank.is_null())
        .then(pl.lit("unknown"))
        .when(rank == 0)
        .then(pl.lit("0"))
        .when(rank <= 3)
        .then(pl.lit("1-9"))
        .when(rank <= 5)
        .then(pl.lit("10-49"))
        .when(rank <= 8)
        .then(pl.lit("50-249"))
        .otherwise(pl.lit("250+"))
        .alias("size_band")
    )


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    gaps = [
        len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
        for chunk in np.array_split(order, min(bins, len(y)))
        if len(chunk)
    ]
    return float(sum(gaps) / len(y))


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def classification_metrics(scored: pl.DataFrame, ece_bins: int) -> dict[str, float | None]:
    """Metrics of a frame with label, probability and snapshot_date."""
    from sklearn.metrics import average_precision_score

    y = scored["label"].to_numpy().astype(float)
    p = scored["probability"].to_numpy().astype(float)
    both = 0 < y.sum() < len(y)
    base_rate = float(y.mean()) if len(y) else None
    decile = np.argsort(-p, kind="stable")[: max(1, int(np.ceil(0.1 * len(y))))] if len(y) else []
    top_decile_precision = float(y[decile].mean()) if len(y) else None
    top = (
        scored.sort(["snapshot_date", "probability"], descending=[False, True])
        .group_by("snapshot_date", maintain_order=True)
        .head(TOP_N)
        .group_by("snapshot_date")
        .agg(pl.col("label").mean())
    )
    return {
        "rows": float(len(y)),
        "positives": float(y.sum()),
        "base_rate": base_rate,
        "roc_auc": _auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else None,
        "ece": expected_calibration_error(y, p, ece_bins) if len(y) else None,
        "mean_probability": float(p.mean()) if len(y) else None,
        "top_decile_precision": top_decile_precision,
        "top_decile_lift": top_decile_precision / base_rate if base_rate else None,
        "top10_precision": float(top["label"].mean()) if top.height else None,
        "top10_lift": float(top["label"].mean()) / base_rate if top.height and base_rate else None,
    }


def segment_metrics(scored: pl.DataFrame) -> pl.DataFrame:
    """ROC-AUC per NAF section, region and size band: segment_type, segment, rows, positives, roc_auc."""
    frames = []
    for segment_type in SEGMENTS:
        grouped = (
            scored.group_by(pl.col(segment_type).cast(pl.String).fill_null("unknown").alias("segment"))
            .agg(
                pl.len().alias("rows"),
                pl.col("label").sum().alias("positives"),
                pl.col("label"),
                pl.col("probability"),
            )
            .sort("segment")
        )
        aucs = [
            _auc(np.asarray(labels, dtype=float), np.asarray(probs, dtype=float))
            for labels, probs in zip(
                grouped["label"].to_list(), grouped["probability"].to_list(), strict=True
            )
        ]
        frames.append(
            grouped.select(
                pl.lit(segment_type).alias("segment_type"),
                "segment",
                pl.col("rows").cast(pl.Int64),
                pl.col("positives").cast(pl.Int64),
            ).with_columns(pl.Series("roc_auc", aucs, dtype=pl.Float64).round(4))
        )
    return pl.concat(frames) if frames else pl.DataFrame()


def score_frame(served: ServedModel, frame: pl.DataFrame) -> pl.DataFrame:
    """Test rows with the model's probability and the segment columns."""
    return frame.select(
        "siren", "snapshot_date", "label", "naf_section", "region_code", size_band()
    ).with_columns(pl.Series("probability", served.predict_score(frame) / 100.0))


# ---- plots ----------------------------------------------------------------------------------------
def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def calibration_plot(scored: pl.DataFrame, bins: int) -> bytes:
    y = scored["label"].to_numpy().astype(float)
    p = scored["probability"].to_numpy().astype(float)
    chunks = [c for c in np.array_split(np.argsort(p, kind="stable"), min(bins, max(len(p), 1))) if len(c)]
    mean_p = [p[c].mean() for c in chunks]
    observed = [y[c].mean() for c in chunks]
    figure, axis = plt.subplots(figsize=(5, 4.5))
    top = max([*mean_p, *observed, 0.01]) * 1.1
    axis.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    axis.plot(mean_p, observed, marker="o", label="model (equal-frequency bins)")
    axis.set(
        xlabel="mean predicted probability",
        ylabel="observed conversion rate",
        title="Calibration on the test period",
        xlim=(0, top),
        ylim=(0, top),
    )
    axis.legend(loc="upper left")
    return _png(figure)


def gains_plot(scored: pl.DataFrame) -> bytes:
    y = scored["label"].to_numpy().astype(float)
    p = scored["probability"].to_numpy().astype(float)
    order = np.argsort(-p, kind="stable")
    share = np.arange(1, len(y) + 1) / max(len(y), 1)
    gains = np.cumsum(y[order]) / max(y.sum(), 1)
    deciles = [c for c in np.array_split(order, 10) if len(c)]
    lift = [y[c].mean() / y.mean() if y.mean() else 0.0 for c in deciles]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    left.plot(np.r_[0, share], np.r_[0, gains], label="model")
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    left.set(
        xlabel="share of companies called (by score)",
        ylabel="share of conversions found",
        title="Cumulative gains (test period)",
    )
    left.legend(loc="lower right")
    right.bar(np.arange(1, len(lift) + 1), lift)
    right.axhline(1.0, linestyle="--", color="grey")
    right.set(xlabel="score decile (1 = highest)", ylabel="lift", title="Lift per decile")
    return _png(figure)


def shap_plot(served: ServedModel, sample: pl.DataFrame) -> bytes:
    """SHAP beeswarm of score-point contributions (TreeSHAP for XGBoost, additive terms for the prior)."""
    import shap

    values, base = served.contributions(sample, exact=True)
    explanation = shap.Explanation(
        values=values, base_values=base, data=served.matrix(sample), feature_names=served.feature_names
    )
    shap.plots.beeswarm(explanation, max_display=15, show=False)
    figure = plt.gcf()
    figure.suptitle("Contributions to the score (points), sample of test rows")
    return _png(figure)


def png_markdown(title: str, png: bytes) -> str:
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def metrics_markdown(metrics: dict[str, Any]) -> str:
    rows = ["| metric | value |", "|---|---|"]
    rows += [f"| {name} | {'' if value is None else f'{value:.4f}'} |" for name, value in metrics.items()]
    return "\n".join(rows)
