"""Population stability index (PSI) between the champion's training reference and today's population.

PSI = sum over bins of (q - p) * ln(q / p), p and q the reference and current shares of a bin, each
floored at `drift.epsilon` so an empty bin gives a large but finite term. Numeric features are cut at
the reference's quantiles (`drift.bins`); categorical and boolean features count by category. Missing
values are a bin of their own: a feature going null (a feed that stopped) is drift too.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl

PSI_METRIC = "psi"
NO_SIGNAL_SHARE_METRIC = "no_signal_12m_share"
SIGNAL_VOLUME_METRIC = "signals_per_week"
SCORE_FEATURE = "score"
# Companies with no signal in the 12 months up to the as-of date: the catalog's `signals_12m` is 0.
NO_SIGNAL_FEATURE = "no_signal_12m"
NO_SIGNAL_SOURCE_COLUMN = "signals_12m"
MISSING_CATEGORY = "__missing__"
STATUSES = ("ok", "warn", "alert")


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float) -> float:
    """PSI of two aligned count vectors (same bins in the same order)."""
    reference_counts = np.asarray(reference_counts, dtype=float)
    current_counts = np.asarray(current_counts, dtype=float)
    if reference_counts.sum() == 0 or current_counts.sum() == 0:
        return float("nan")
    p = np.maximum(reference_counts / reference_counts.sum(), epsilon)
    q = np.maximum(current_counts / current_counts.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points at the reference's quantiles, deduplicated (count features pile up on 0)."""
    finite = reference[~np.isnan(reference)]
    if finite.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def binned_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (x < e0, e0 <= x < e1, ..., x >= e_last), then the missing values' count."""
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="right")
    return np.append(np.bincount(index, minlength=edges.size + 1), missing.sum())


def numeric_psi(reference, current, bins: int, epsilon: float) -> float:
    """PSI of a numeric column over the reference's quantile bins (nulls as their own bin)."""
    reference = _as_float(reference)
    current = _as_float(current)
    edges = quantile_edges(reference, bins)
    return psi_from_counts(binned_counts(reference, edges), binned_counts(current, edges), epsilon)


def categorical_psi(reference: pl.Series, current: pl.Series, epsilon: float) -> float:
    """PSI over the categories seen on either side (nulls as their own category)."""

    def counts(series: pl.Series, side: str) -> pl.DataFrame:
        values = series.cast(pl.String).fill_null(MISSING_CATEGORY).rename("category")
        return values.value_counts(name=side)

    joined = (
        counts(reference, "reference")
        .join(counts(current, "current"), on="category", how="full", coalesce=True)
        .fill_null(0)
    )
    return psi_from_counts(joined["reference"].to_numpy(), joined["current"].to_numpy(), epsilon)


def _as_float(values) -> np.ndarray:
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).fill_nan(None).to_numpy().astype(float)
    return np.asarray(values, dtype=float)


def is_categorical(series: pl.Series, categorical: set[str]) -> bool:
    # Booleans stay numeric (0/1 bins): the training set and today's features may store them as BOOLEAN or
    # as integers, and their string forms differ.
    return series.name in categorical or series.dtype in (pl.String, pl.Categorical, pl.Enum)


def psi_by_column(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: list[str],
    categorical: set[str],
    bins: int,
    epsilon: float,
) -> pl.DataFrame:
    """One row per column: feature, value (its PSI). Loops over columns, never over rows."""
    values = [
        categorical_psi(reference[c], current[c], epsilon)
        if is_categorical(reference[c], categorical)
        else numeric_psi(reference[c], current[c], bins, epsilon)
        for c in columns
    ]
    return pl.DataFrame(
        {"feature": columns, "value": values}, schema={"feature": pl.String, "value": pl.Float64}
    )


def status_expr(value: pl.Expr, psi_warn: float, psi_fail: float) -> pl.Expr:
    """'alert' above psi_fail, 'warn' above psi_warn, else 'ok'."""
    return (
        pl.when(value > psi_fail)
        .then(pl.lit("alert"))
        .when(value > psi_warn)
        .then(pl.lit("warn"))
        .otherwise(pl.lit("ok"))
    )


def no_signal_share(frame: pl.DataFrame) -> float:
    return float(frame.select((pl.col(NO_SIGNAL_SOURCE_COLUMN).fill_null(0) == 0).mean()).item())


def no_signal_indicator(frame: pl.DataFrame) -> pl.Series:
    return (frame[NO_SIGNAL_SOURCE_COLUMN].fill_null(0) == 0).rename(NO_SIGNAL_FEATURE)


def signal_volume(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    weeks: int,
    reference_start: dt.date,
    reference_end: dt.date,
) -> pl.DataFrame:
    """Signals per source per ISO week (Monday) over the last `weeks` weeks up to the as-of date.

    Every (source, week) pair appears, 0 included, so a feed that stopped shows. reference_value is the
    source's mean weekly volume over the reference period (the champion's training snapshots).
    The as-of date's own week is partial.
    """
    return con.execute(
        """
        with bounds as (
            select date_trunc('week', ?::date)::date - (? - 1) * 7 as first_week, ?::date as as_of,
                   ?::date as reference_start, ?::date as reference_end
        ),
        weeks as (
            select unnest(generate_series(first_week, date_trunc('week', as_of)::date, interval 7 day))::date
                   as week_start
            from bounds
        ),
        recent as (
            select source, date_trunc('week', event_date)::date as week_start, count(*) as signals
            from normalized.signals, bounds
            where event_date >= first_week and event_date <= as_of
            group by source, week_start
        ),
        reference as (
            select source, count(*) / any_value(greatest(1, (reference_end - reference_start + 1) / 7.0))
                   as weekly_mean
            from normalized.signals, bounds
            where event_date between reference_start and reference_end
            group by source
        ),
        sources as (select source from recent union select source from reference)
        select s.source as feature, w.week_start as period_start,
               coalesce(r.signals, 0)::double as value, ref.weekly_mean::double as reference_value
        from sources s
        cross join weeks w
        left join recent r on r.source = s.source and r.week_start = w.week_start
        left join reference ref on ref.source = s.source
        order by feature, period_start
        """,
        [as_of, weeks, as_of, reference_start, reference_end],
    ).pl()


def psi_plot(psi_table: pl.DataFrame, psi_warn: float, psi_fail: float) -> bytes:
    """Horizontal bars of PSI per feature with the warn and fail thresholds, as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    ordered = psi_table.sort("value", nulls_last=False)
    colours = {"ok": "tab:green", "warn": "tab:orange", "alert": "tab:red"}
    figure, axis = plt.subplots(figsize=(6, 0.25 * ordered.height + 1.2))
    axis.barh(
        ordered["feature"].to_list(),
        ordered["value"].fill_null(0).to_list(),
        color=[colours.get(s, "grey") for s in ordered["status"].to_list()],
    )
    axis.axvline(psi_warn, linestyle="--", color="tab:orange", label=f"warn {psi_warn}")
    axis.axvline(psi_fail, linestyle="--", color="tab:red", label=f"fail {psi_fail}")
    axis.set(xlabel="PSI against the champion's training reference", title="Drift per feature")
    axis.legend(loc="lower right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
