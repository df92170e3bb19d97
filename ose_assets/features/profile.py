"""Profile of features.company_features for the Dagster UI: null rate, mean and percentiles per feature."""

from __future__ import annotations

import duckdb
import polars as pl

from ose_assets.features.catalog import FEATURE_CATALOG
from ose_assets.features.compute import FEATURES_TABLE

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _feature_sql(name: str, dtype: str, table: str) -> str:
    nulls = f"round(1 - count({name}) / count(*), 4) as null_rate"
    if dtype in ("int", "float", "bool"):
        value = f"{name}::double" if dtype != "bool" else f"{name}::int::double"
        quantiles = f"approx_quantile({value}, {list(QUANTILES)})"
        stats = f"round(avg({value}), 4) as mean, {quantiles} as percentiles, null::bigint as distinct_values"
    else:
        stats = "null::double as mean, null::double[] as percentiles, "
        stats += f"approx_count_distinct({name})::bigint as distinct_values"
    return f"select '{name}' as feature, '{dtype}' as dtype, {nulls}, {stats} from {table}"


def feature_profile(con: duckdb.DuckDBPyConnection, table: str = FEATURES_TABLE) -> pl.DataFrame:
    """One row per catalog feature: null rate, mean (share true for booleans), approximate p5..p95,
    approximate distinct count for categories and dates."""
    query = " union all ".join(_feature_sql(f.name, f.dtype, table) for f in FEATURE_CATALOG)
    frame = con.execute(query).pl()
    order = {f.name: i for i, f in enumerate(FEATURE_CATALOG)}
    frame = frame.sort(pl.col("feature").replace_strict(order, return_dtype=pl.Int64))
    return frame.with_columns(
        pl.col("percentiles").list.get(i, null_on_oob=True).alias(f"p{round(q * 100):02d}")
        for i, q in enumerate(QUANTILES)
    ).drop("percentiles")


def share_with_signal_12m(con: duckdb.DuckDBPyConnection, table: str = FEATURES_TABLE) -> float | None:
    return con.execute(f"select avg((signals_12m > 0)::int) from {table}").fetchone()[0]
