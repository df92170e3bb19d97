"""UI metadata of the scoring assets: the top-10 table and the score-distribution plot (markdown)."""

from __future__ import annotations

import base64
import io

import numpy as np
import polars as pl

from ose_assets.settings import model_config
from ose_assets.warehouse import frame_to_markdown


def top_table_markdown(top: pl.DataFrame) -> str:
    """The overall top 10 with its reasons, as a markdown table."""
    overall = top.filter(pl.col("segment") == "overall").sort("segment_rank")
    return frame_to_markdown(
        overall.select(
            pl.col("segment_rank").alias("rank"),
            "siren",
            "name",
            "score",
            "band",
            pl.col("top_reasons_fr").alias("raisons"),
        )
    )


def score_distribution_markdown(scores: np.ndarray) -> str:
    """Histogram of the scores with the band cut-offs, as a markdown image (base64 PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5), dpi=90)
    axis.hist(scores, bins=50, range=(0, 100), color="#3b6ea5")
    for band, bound in model_config()["bands"].items():
        if bound > 0:
            axis.axvline(bound, color="#c0392b", linestyle="--", linewidth=1)
            axis.text(bound, axis.get_ylim()[1] * 0.95, f" {band} ≥ {bound:g}", color="#c0392b", fontsize=8)
    axis.set_xlabel("score (0–100)")
    axis.set_ylabel("companies")
    axis.set_yscale("log")
    axis.set_title(f"Score distribution ({scores.size:,} companies)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return f"![score distribution](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"
