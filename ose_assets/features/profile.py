"""Profile of features.company_features for the Dagster UI: null rate, mean and percentiles per feature."""

from __future__ import annotations

import duckdb
import polars as pl

from ose_assets.features.catalog import FEATURE_CATALOG
from ose_assets.features.compute import FEATURES_TABLE

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Percentiles come from a fixed-seed sample: digesting every row of every feature cost as much as
# building the table, for a display rounded anyway.
QUANTILE_SAMPLE_ROWS = 50_000


def _is_numeric(dtype: str) -> bool:
    return dtype in ("int", "float", "bool")


def _value(name: str, dtype: str) -> str:
    return f"{name}::int::double" if dtype == "bool" else f"{name}::double"


def _feature_struct(name: str, dtype: str) -> str:
    null_rate = f"round(1 - count({name}) / count(*), 4)"
    if _is_numeric(dtype):
        mean, distinct = f"round(avg({_value(name, dtype)}), 4)", "null::bigint"
    else:
        mean, distinct = "null::double", f"approx_count_distinct({name})::bigint"
    return (
        f"{{'feature': '{name}', 'dtype': '{dtype}', 'null_rate': {null_rate}, 'mean': {mean}, "
        f"'distinct_values': {distinct}}}"
    )


def _percentiles_struct(name: str, dtype: str) -> str:
    percentiles = (
        f"approx_quantile({_value(name, dtype)}, {list(QUANTILES)})"
        if _is_numeric(dtype)
        else "null::double[]"
    )
    return f"{{'feature': '{name}', 'percentiles': {percentiles}}}"


def feature_profile(con: duckdb.DuckDBPyConnection, table: str = FEATURES_TABLE) -> pl.DataFrame:
    """One row per catalog feature: null rate, mean (share true for booleans), approximate p5..p95,
    approximate distinct count for categories and dates. One pass over the table for the counts and
    means, one over a sample of QUANTILE_SAMPLE_ROWS rows for the percentiles."""

    def profile(structs, source: str) -> pl.DataFrame:
        return con.execute(
            f"select unnest(profile, recursive := true) from (select [{', '.join(structs)}] as profile "
            f"from {source})"
        ).pl()

    stats = profile((_feature_struct(f.name, f.dtype) for f in FEATURE_CATALOG), table)
    sample = f"(select * from {table} using sample reservoir({QUANTILE_SAMPLE_ROWS} rows) repeatable (42))"
    percentiles = profile((_percentiles_struct(f.name, f.dtype) for f in FEATURE_CATALOG), sample)
    frame = stats.join(percentiles, on="feature", how="left", maintain_order="left")
    return (
        frame.select("feature", "dtype", "null_rate", "mean", "percentiles", "distinct_values")
        .with_columns(
            pl.col("percentiles").list.get(i, null_on_oob=True).alias(f"p{round(q * 100):02d}")
            for i, q in enumerate(QUANTILES)
        )
        .drop("percentiles")
    )


def share_with_signal_12m(con: duckdb.DuckDBPyConnection, table: str = FEATURES_TABLE) -> float | None:
    return con.execute(f"select avg((signals_12m > 0)::int) from {table}").fetchone()[0]
