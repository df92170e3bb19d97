"""training assets: the labelled monthly snapshots the model learns from (logic in snapshots.py)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ose_assets.features.catalog import lookback_months
from ose_assets.settings import model_config
from ose_assets.training.snapshots import (
    SPLITS,
    TRAINING_SET_TABLE,
    build_training_set,
    covers,
    history_start,
    plan_splits,
    snapshot_dates,
)
from ose_assets.warehouse import AsOfConfig, markdown_preview, resolve_as_of, table_metadata

NORMALIZED_DEPS = [
    dg.AssetKey(["normalized", name])
    for name in ("companies", "signals", "articles", "article_companies", "outcomes")
]


@dg.asset(
    key_prefix=["training"],
    group_name="training",
    name="training_set",
    kinds={"duckdb", "sql"},
    deps=NORMALIZED_DEPS,
    description="One row per (company, month-end snapshot): features as of the snapshot (features_query), "
    "label = won within the horizon after it, split = train / validation / test by time.",
)
def training_set(context: dg.AssetExecutionContext, config: AsOfConfig, warehouse: DuckDBResource):
    settings = model_config()["training"]
    as_of = resolve_as_of(context, config.as_of)
    horizon = int(settings["horizon_days"])
    history_months = int(settings["history_months"])
    lookback, min_history = lookback_months(), int(model_config()["features"]["min_history_months"])
    with warehouse.get_connection() as con:
        start = history_start(con)
        dates = snapshot_dates(as_of, history_months, horizon, start, min_history)
        complete = snapshot_dates(as_of, history_months, horizon)
        plan = plan_splits(dates, horizon, int(settings["test_months"]), int(settings["validation_months"]))
        counts = build_training_set(con, plan, horizon)
        metadata = table_metadata(con, TRAINING_SET_TABLE)
        metadata["snapshots"] = markdown_preview(
            con,
            f"""select snapshot_date, split, count(*) as rows, sum(label)::bigint as positives,
                   round(avg(label), 4) as conversion_rate
                from {TRAINING_SET_TABLE} group by all order by snapshot_date""",
            limit=1000,
        )
    split_dates = plan.describe()
    metadata.update(
        {
            "as_of": as_of.isoformat(),
            "horizon_days": horizon,
            "history_start": str(start),
            "lookback_months": lookback,
            # Left out: less than min_history_months of history before them.
            "snapshots_without_min_history": len(complete) - len(dates),
            # Kept with less history than the lookback: their 12-month and lookback features (counts,
            # recencies, decayed intensity, press) and the ranking gates see only the history since
            # history_start.
            "truncated_snapshots": ", ".join(str(d) for d in dates if not covers(d, lookback, start))
            or "none",
            **{f"{name}_snapshots": split_dates[name] for name in (*SPLITS, "purged")},
            **{f"{name}_rows": counts[name]["rows"] for name in SPLITS},
            **{f"{name}_positives": counts[name]["positives"] for name in SPLITS},
            "excluded_closed_rows": sum(c["excluded_closed"] for c in counts.values()),
            "excluded_in_opportunity_rows": sum(c["excluded_in_opportunity"] for c in counts.values()),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=training_set, description="No test row in training: periods are ordered in time.")
def training_set_time_split(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        bounds = dict(
            (split, (low, high))
            for split, low, high in con.execute(
                f"select split, min(snapshot_date), max(snapshot_date) "
                f"from {TRAINING_SET_TABLE} group by split"
            ).fetchall()
        )
    ordered = [bounds[s] for s in SPLITS if s in bounds]
    passed = all(earlier[1] < later[0] for earlier, later in zip(ordered, ordered[1:], strict=False))
    return dg.AssetCheckResult(passed=passed, metadata={s: f"{lo} .. {hi}" for s, (lo, hi) in bounds.items()})
