"""The demo world's hidden truth: the monthly conversion hazard outcomes were drawn from.

The pipeline never reads it; evaluation code uses `oracle_probability` as the best achievable score.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

PROPENSITY_FILE = "propensity.parquet"


def oracle_probability(truth_dir: Path, snapshots: pl.DataFrame, horizon_days: int = 90) -> pl.Series:
    """Probability of a won opportunity closing in (snapshot_date, snapshot_date + horizon_days].

    A company wins in month m with probability monthly_hazard(m), on a uniform day of that month, so
    the chance of a win in the window is 1 - prod(1 - h_m * overlap_days_m / days_in_month_m).
    Company-months absent from the truth file (company not active) have hazard 0. One value per
    snapshot row, in the input order.
    """
    horizon_months = horizon_days // 28 + 2
    spine = (
        snapshots.select(pl.col("siren").cast(pl.String), pl.col("snapshot_date").cast(pl.Date))
        .with_row_index("row")
        .with_columns(
            window_start=pl.col("snapshot_date") + pl.duration(days=1),
            window_end=pl.col("snapshot_date") + pl.duration(days=horizon_days),
            k=pl.int_ranges(0, horizon_months),
        )
        .explode("k")
        .with_columns(month=pl.col("snapshot_date").dt.month_start().dt.offset_by(pl.format("{}mo", "k")))
        .with_columns(
            overlap=(
                pl.min_horizontal("window_end", pl.col("month").dt.month_end())
                - pl.max_horizontal("window_start", "month")
            ).dt.total_days()
            + 1,
            month_days=pl.col("month").dt.month_end().dt.day(),
        )
        .filter(pl.col("overlap") > 0)
    )
    hazard = (
        pl.scan_parquet(Path(truth_dir) / PROPENSITY_FILE)
        .join(spine.lazy().select("siren", "month").unique(), on=["siren", "month"], how="semi")
        .collect()
    )
    no_win = (
        spine.join(hazard, on=["siren", "month"], how="left")
        .with_columns(
            log_no_win=(
                1 - pl.col("monthly_hazard").fill_null(0.0) * pl.col("overlap") / pl.col("month_days")
            ).log()
        )
        .group_by("row")
        .agg(pl.col("log_no_win").sum())
    )
    probability = (
        pl.DataFrame({"row": pl.int_range(0, snapshots.height, eager=True, dtype=pl.UInt32)})
        .join(no_win, on="row", how="left")
        .sort("row")
        .select(1 - pl.col("log_no_win").fill_null(0.0).exp())
        .to_series()
    )
    return probability.alias("oracle_probability")
