"""The model card of a registered version: what it was trained on, how good it is, why it is (not) served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ose_assets.warehouse import frame_to_markdown

KNOWN_LIMITS = [
    "Scores estimate the probability of a won opportunity within the horizon among companies not already "
    "in an opportunity; they say nothing about deal size.",
    "Labels come from the CRM outcomes: companies never prospected count as non-converted, so the model "
    "learns the propensity to convert *and* to have been approached.",
    "Company attributes (headcount band, category, revenue) are the latest record: SIRENE keeps no history, "
    "so older snapshots see today's values for them.",
    "Segments with few conversions have unstable (or no) per-segment ROC-AUC.",
    "The calibration holds for the test period's conversion rate; a shift in sales activity moves it "
    "(monitoring tracks drift).",
]


@dataclass(frozen=True)
class CardInputs:
    kind: str
    as_of: str | None
    horizon_days: int
    split_dates: dict[str, str]
    split_counts: dict[str, tuple[int, int]]  # part -> (positives, negatives)
    feature_names: list[str]
    categorical: list[str]
    params: dict[str, Any]
    metrics: dict[str, float | None]
    segments: pl.DataFrame
    promoted: bool
    reason: str
    champion_before: str | None
    cold_start_reason: str | None
    model_details_md: str


def render_model_card(inputs: CardInputs, version: str, images: dict[str, str]) -> str:
    """Markdown; `images` maps a plot title to a markdown image (base64 for Dagster, a path for MLflow)."""
    kind = "calibrated XGBoost" if inputs.kind == "xgboost" else "rules prior (cold start)"
    # early_stopping and calibration are halves of the validation period.
    period = {
        part: inputs.split_dates.get(part, inputs.split_dates.get("validation", ""))
        for part in inputs.split_counts
    }
    counts = "\n".join(
        f"| {part} | {period[part]} | {pos + neg} | {pos} |"
        for part, (pos, neg) in inputs.split_counts.items()
    )
    metrics = "\n".join(
        f"| {name} | {'n/a' if value is None else f'{value:.4f}'} |" for name, value in inputs.metrics.items()
    )
    segments = inputs.segments.filter(pl.col("positives") > 0) if inputs.segments.height else inputs.segments
    lines = [
        f"# OSE opportunity model — version {version} ({kind})",
        "",
        "## Promotion decision",
        f"**{'Promoted to champion' if inputs.promoted else 'Not promoted'}**: {inputs.reason}. "
        f"Champion before this run: {inputs.champion_before or 'none'}.",
        "",
        "## Training window and label",
        f"- As-of date: {inputs.as_of}; monthly month-end snapshots, features as of each snapshot "
        "(`features_query`, the scoring code path).",
        f"- Label: 1 when the company has a won opportunity closed in (snapshot, snapshot + "
        f"{inputs.horizon_days} days]; companies closed or already in an opportunity at the snapshot are "
        "excluded; snapshots with an incomplete horizon are excluded.",
        "- Time split (never random); snapshots whose label window reaches the next period are purged:",
        *[f"  - {name}: {dates}" for name, dates in inputs.split_dates.items()],
        "",
        "| part | snapshots | rows | converted |",
        "|---|---|---|---|",
        counts,
        "",
        "## Model",
        inputs.model_details_md,
        "",
        *([f"Cold start: {inputs.cold_start_reason}.", ""] if inputs.cold_start_reason else []),
        f"## Features ({len(inputs.feature_names)})",
        ", ".join(
            f"`{n}`" + (" (categorical)" if n in inputs.categorical else "") for n in inputs.feature_names
        ),
        "",
        "## Test-period metrics",
        "| metric | value |",
        "|---|---|",
        metrics,
        "",
        "ECE: equal-frequency bins; top 10: the 10 highest scores of each test snapshot.",
        "",
        "### ROC-AUC per segment (segments with conversions)",
        frame_to_markdown(segments),
        "",
        "## Plots",
        *[f"### {title}\n{image}\n" for title, image in images.items()],
        "## Known limits",
        *[f"- {limit}" for limit in KNOWN_LIMITS],
        "",
    ]
    return "\n".join(lines)
