"""monitoring: drift of the champion's inputs and scores, and the lineage of every scoring run.

Both assets run after each scoring run. They never fail the nightly run for lack of a champion or a
training set: they record what they could compute and say why in their metadata.
"""

import datetime as dt
import time

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource

from ose_assets.model.evaluate import png_markdown
from ose_assets.model.served_model import ServedModel, load_champion
from ose_assets.monitoring import drift as psi
from ose_assets.monitoring.lineage import (
    DRIFT_TABLE,
    RUNS_TABLE,
    SCORES_TABLE,
    lineage_chain,
    registered_run_id,
    runs_row,
    scoring_run,
)
from ose_assets.monitoring.reference import Reference, load_reference, read_fingerprint
from ose_assets.monitoring.track_record_assets import realised_performance, track_record  # noqa: F401
from ose_assets.resources import MLflowResource
from ose_assets.settings import model_config
from ose_assets.warehouse import (
    AS_OF_TAG,
    AsOfConfig,
    frame_to_markdown,
    replace_table,
    table_exists,
    table_metadata,
)

DRIFT_KEY = dg.AssetKey(["monitoring", "drift"])
UPSTREAM = [
    dg.AssetKey(["scoring", "company_scores"]),
    dg.AssetKey(["features", "company_features"]),
    dg.AssetKey(["training", "training_set"]),
    dg.AssetKey(["raw", "manifest"]),
]
FEATURES_TABLE = "features.company_features"
TRAINING_TABLE = "training.training_set"
SIGNALS_TABLE = "normalized.signals"
DRIFT_SCHEMA = {
    "as_of_date": pl.Date,
    "computed_at": pl.Datetime("us"),
    "model_version": pl.String,
    "metric": pl.String,
    "feature": pl.String,
    "value": pl.Float64,
    "status": pl.String,
    "reference_value": pl.Float64,
    "period_start": pl.Date,
}


def monitoring_as_of(
    context: dg.AssetExecutionContext, config: AsOfConfig, con: duckdb.DuckDBPyConnection
) -> dt.date | None:
    """The as-of date of the run (config, then run tag), else the latest scored as-of date."""
    value = config.as_of or context.run.tags.get(AS_OF_TAG)
    if value:
        return dt.date.fromisoformat(value)
    if not table_exists(con, SCORES_TABLE):
        return None
    return con.execute(f"select max(as_of_date) from {SCORES_TABLE}").fetchone()[0]


def write_history(
    con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, same_key: str, params
) -> int:
    """Replace the rows of `table` matching `same_key` (a re-run of the same as-of) with `rows`."""
    con.register("new_rows", rows.to_arrow())
    try:
        kept = (
            f"select * from {table} where not ({same_key}) union all by name "
            if table_exists(con, table)
            else ""
        )
        return replace_table(con, table, f"{kept}select * from new_rows", params if kept else None)
    finally:
        con.unregister("new_rows")


# ---- drift ------------------------------------------------------------------------------------------
def drift_rows(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    champion: ServedModel | None,
    reference: Reference | None,
    settings: dict,
) -> pl.DataFrame:
    """Every drift metric of an as-of date (without the as_of_date/computed_at/model_version columns)."""
    current = pl.DataFrame()
    if table_exists(con, FEATURES_TABLE):
        # Only the columns compared: today's features may be a million rows of many columns.
        wanted = {*(champion.feature_names if champion else ()), psi.NO_SIGNAL_SOURCE_COLUMN}
        present = [
            name for (name, *_) in con.execute(f"describe {FEATURES_TABLE}").fetchall() if name in wanted
        ]
        if present:
            select = ", ".join(f'"{name}"' for name in present)
            current = con.execute(f"select {select} from {FEATURES_TABLE} where as_of_date = ?", [as_of]).pl()
    counts_signals = psi.NO_SIGNAL_SOURCE_COLUMN in current.columns
    parts = []
    psi_part = None
    if reference is not None and champion is not None and not current.is_empty():
        psi_part = psi_rows(con, as_of, champion, reference, current, settings)
        parts.append(psi_part)
    if counts_signals:
        indicator = None if psi_part is None else psi_part.filter(pl.col("feature") == psi.NO_SIGNAL_FEATURE)
        reference_counts = reference is not None and psi.NO_SIGNAL_SOURCE_COLUMN in reference.frame.columns
        parts.append(
            pl.DataFrame(
                {
                    "metric": [psi.NO_SIGNAL_SHARE_METRIC],
                    "feature": [psi.NO_SIGNAL_FEATURE],
                    "value": [psi.no_signal_share(current)],
                    "status": [
                        indicator["status"][0] if indicator is not None and indicator.height else None
                    ],
                    "reference_value": [psi.no_signal_share(reference.frame) if reference_counts else None],
                },
                schema_overrides={"status": pl.String, "reference_value": pl.Float64},
            )
        )
    if table_exists(con, SIGNALS_TABLE):
        weeks = settings["volume_weeks"]
        # Reference period: the champion's train snapshots and the weeks before the first
        # (the as-of window when there is no reference).
        end = max(reference.snapshot_dates) if reference else as_of
        start = (min(reference.snapshot_dates) if reference else as_of) - dt.timedelta(days=7 * weeks - 1)
        parts.append(
            psi.signal_volume(con, as_of, weeks, start, end).with_columns(
                metric=pl.lit(psi.SIGNAL_VOLUME_METRIC), status=pl.lit(None, pl.String)
            )
        )
    columns = [c for c in DRIFT_SCHEMA if c not in ("as_of_date", "computed_at", "model_version")]
    empty = pl.DataFrame(schema={c: DRIFT_SCHEMA[c] for c in columns})
    return pl.concat([empty, *parts], how="diagonal_relaxed").select(columns)


def psi_rows(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    champion: ServedModel,
    reference: Reference,
    current: pl.DataFrame,
    settings: dict,
) -> pl.DataFrame:
    """PSI of the champion's features present today, of the no-signal indicator and of the score."""
    columns = [c for c in champion.feature_names if c in current.columns]
    reference_frame, current_frame = reference.frame, current.select(columns)
    if (
        psi.NO_SIGNAL_SOURCE_COLUMN in current.columns
        and psi.NO_SIGNAL_SOURCE_COLUMN in reference.frame.columns
    ):
        reference_frame = reference_frame.with_columns(psi.no_signal_indicator(reference.frame))
        current_frame = current_frame.with_columns(psi.no_signal_indicator(current))
        columns.append(psi.NO_SIGNAL_FEATURE)
    bins, epsilon = settings["bins"], settings["epsilon"]
    by_column = psi.psi_by_column(
        reference_frame, current_frame, columns, set(champion.categories), bins, epsilon
    )
    scores = con.execute(f"select score from {SCORES_TABLE} where as_of_date = ?", [as_of]).pl()
    score = psi.numeric_psi(reference.frame["score"], scores["score"], bins, epsilon)
    return pl.concat(
        [by_column, pl.DataFrame({"feature": [psi.SCORE_FEATURE], "value": [score]})]
    ).with_columns(
        metric=pl.lit(psi.PSI_METRIC),
        status=psi.status_expr(pl.col("value"), settings["psi_warn"], settings["psi_fail"]),
    )


DRIFT_METRICS = ("drift_max_psi", "drift_alerts", "drift_warnings")


def log_drift_to_mlflow(client, run_id: str, as_of: dt.date, rows: pl.DataFrame) -> str:
    """On the champion's run: one table artifact per scoring run (every drift row) and the headline
    metrics drift_max_psi / drift_alerts / drift_warnings, whose step is the run's ordinal (1 for the
    first scoring run with this champion, 2 for the next...)."""
    from mlflow.entities import Metric

    step = len(client.get_metric_history(run_id, DRIFT_METRICS[0])) + 1
    timestamp = int(time.time() * 1000)
    psi_values = rows.filter(pl.col("metric") == psi.PSI_METRIC, pl.col("value").is_not_nan())
    headline = (
        psi_values["value"].max() if psi_values.height else None,
        psi_values.filter(pl.col("status") == "alert").height,
        psi_values.filter(pl.col("status") == "warn").height,
    )
    client.log_batch(
        run_id,
        metrics=[
            Metric(key=key, value=float(value), timestamp=timestamp, step=step)
            for key, value in zip(DRIFT_METRICS, headline, strict=True)
            if value is not None
        ],
    )
    artifact = f"drift/scoring_run_{step:04d}_as_of_{as_of.isoformat()}.json"
    table = rows.with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String)).to_pandas()
    client.log_table(run_id, data=table, artifact_file=artifact)
    return artifact


def _skipped(reason: str, **metadata) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"status": "skipped", "reason": reason, **metadata})


@dg.asset(
    key_prefix=["monitoring"],
    name="drift",
    group_name="monitoring",
    kinds={"duckdb", "mlflow"},
    deps=UPSTREAM,
    description=(
        "PSI of every model feature and of the score between the champion's training reference and the "
        "as-of population, the share of companies with no signal in 12 months and the signal volume per "
        "source per week; history kept per as-of date, also logged on the champion's MLflow run."
    ),
)
def drift(
    context: dg.AssetExecutionContext, config: AsOfConfig, warehouse: DuckDBResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    settings = model_config()["drift"]
    computed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    with warehouse.get_connection() as con:
        as_of = monitoring_as_of(context, config, con)
        if as_of is None or scoring_run(con, as_of) is None:
            return _skipped(f"no scores in {SCORES_TABLE} for as-of {as_of or '(none scored yet)'}")
        champion = load_champion(mlflow)
        client = mlflow.client()
        reference, notes = None, []
        if champion is None:
            notes.append("no champion registered: PSI not computed")
        elif not table_exists(con, TRAINING_TABLE):
            notes.append(f"{TRAINING_TABLE} missing: PSI not computed")
        else:
            reference = load_reference(
                con,
                champion,
                read_fingerprint(client, champion.run_id),
                settings["reference_sample_rows"],
                model_config()["training"]["seed"],
                extra_columns=(psi.NO_SIGNAL_SOURCE_COLUMN,),
            )
            notes.append(
                reference.note if reference else f"no train rows in {TRAINING_TABLE}: PSI not computed"
            )
        rows = (
            drift_rows(con, as_of, champion, reference, settings)
            .with_columns(
                as_of_date=pl.lit(as_of, pl.Date),
                computed_at=pl.lit(computed_at, pl.Datetime("us")),
                model_version=pl.lit(champion.version if champion else None, pl.String),
            )
            .select(list(DRIFT_SCHEMA))
        )
        write_history(con, DRIFT_TABLE, rows, "as_of_date = ?", [as_of])
        metadata = table_metadata(con, DRIFT_TABLE)

    psi_table = rows.filter(pl.col("metric") == psi.PSI_METRIC).sort(
        "value", descending=True, nulls_last=True
    )
    artifact = None
    if champion is not None and champion.run_id and not rows.is_empty():
        artifact = log_drift_to_mlflow(client, champion.run_id, as_of, rows)
    status = "computed" if reference is not None else "partial"
    context.log.info(f"drift as of {as_of}: {status}; {'; '.join(notes)}")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "status": status,
            "reason": "; ".join(notes),
            "as_of_date": as_of.isoformat(),
            "computed_at": computed_at.isoformat(),
            "model_version": champion.version if champion else None,
            "champion_run_id": champion.run_id if champion else None,
            "reference_source": reference.source if reference else None,
            "reference_snapshot_dates": (
                f"{min(reference.snapshot_dates)} .. {max(reference.snapshot_dates)} "
                f"({len(reference.snapshot_dates)} snapshots)"
                if reference
                else None
            ),
            "reference_train_rows": reference.train_rows if reference else None,
            "reference_sample_rows": reference.frame.height if reference else None,
            "max_psi": psi_table["value"].max() if psi_table.height else None,
            "psi": dg.MetadataValue.md(frame_to_markdown(psi_table.select("feature", "value", "status"))),
            "psi_plot": dg.MetadataValue.md(
                png_markdown(
                    "PSI per feature", psi.psi_plot(psi_table, settings["psi_warn"], settings["psi_fail"])
                )
                if psi_table.height
                else "_no PSI computed_"
            ),
            "mlflow_artifact": artifact,
        }
    )


@dg.asset_check(
    asset=DRIFT_KEY,
    name="psi_within_thresholds",
    blocking=False,
    description=(
        "Every model feature's and the score's PSI against the champion's training reference is at most "
        "drift.psi_warn (WARN above it) and drift.psi_fail (ERROR above it)."
    ),
)
def psi_within_thresholds(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBResource
) -> dg.AssetCheckResult:
    settings = model_config()["drift"]
    event = context.instance.get_latest_materialization_event(DRIFT_KEY)
    metadata = event.asset_materialization.metadata if event else {}
    as_of = metadata.get("as_of_date")
    if as_of is None or metadata["status"].value == "skipped":
        reason = metadata["reason"].value if "reason" in metadata else "drift never materialized"
        return dg.AssetCheckResult(passed=True, description=f"Drift not computed: {reason}")
    with warehouse.get_connection() as con:
        rows = con.execute(
            f"""select feature, round(value, 4) as value, status from {DRIFT_TABLE}
                where as_of_date = ? and metric = ? order by value desc""",
            [as_of.value, psi.PSI_METRIC],
        ).pl()
    if rows.is_empty():
        return dg.AssetCheckResult(
            passed=True, description=f"No PSI as of {as_of.value}: {metadata['reason'].value}"
        )
    alert = rows.filter(pl.col("status") == "alert")
    warn = rows.filter(pl.col("status") == "warn")
    named = [
        f"PSI > {threshold} ({label}): "
        + ", ".join(f"{f} {v}" for f, v in part.select("feature", "value").rows())
        for part, threshold, label in (
            (alert, settings["psi_fail"], "alert"),
            (warn, settings["psi_warn"], "warn"),
        )
        if not part.is_empty()
    ]
    return dg.AssetCheckResult(
        passed=alert.is_empty() and warn.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR if not alert.is_empty() else dg.AssetCheckSeverity.WARN,
        description=("; ".join(named) if named else "No drift")
        + f" (as of {as_of.value}, {rows.height} PSI values)",
        metadata={
            "as_of_date": as_of.value,
            "max_psi": float(rows["value"].max()),
            "alert_features": dg.MetadataValue.json(alert["feature"].to_list()),
            "warn_features": dg.MetadataValue.json(warn["feature"].to_list()),
            "psi": dg.MetadataValue.md(frame_to_markdown(rows)),
        },
    )


# ---- lineage ----------------------------------------------------------------------------------------
def run_duration_seconds(context: dg.AssetExecutionContext) -> float | None:
    """Seconds since the Dagster run started (the scoring run so far, monitoring being its last step)."""
    stats = context.instance.get_run_stats(context.run.run_id)
    return None if stats.start_time is None else round(time.time() - stats.start_time, 1)


@dg.asset(
    key_prefix=["monitoring"],
    name="runs",
    group_name="monitoring",
    kinds={"duckdb", "mlflow"},
    # Only runs that published: a run whose publish failed (or was refused) records nothing here.
    deps=[*UPSTREAM, DRIFT_KEY, dg.AssetKey(["scoring", "serving_copy"])],
    description=(
        "One row per published scoring run: as-of date, model version and its MLflow run, the input files "
        "(raw.manifest hashes), row counts, drift status, duration and Dagster run id."
    ),
)
def runs(
    context: dg.AssetExecutionContext, config: AsOfConfig, warehouse: DuckDBResource, mlflow: MLflowResource
) -> dg.MaterializeResult:
    with warehouse.get_connection() as con:
        as_of = monitoring_as_of(context, config, con)
        run = scoring_run(con, as_of) if as_of else None
        if run is None:
            return _skipped(f"no scores in {SCORES_TABLE} for as-of {as_of or '(none scored yet)'}")
        client = mlflow.client()
        model_run_id = registered_run_id(client, run["model_version"], mlflow.registered_model_name)
        row = runs_row(
            con,
            run,
            model_run_id,
            run_duration_seconds(context),
            context.run.run_id,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
        write_history(
            con, RUNS_TABLE, row, "as_of_date = ? and scored_at = ?", [run["as_of_date"], run["scored_at"]]
        )
        chain = lineage_chain(con, client, as_of, mlflow.registered_model_name)
        metadata = table_metadata(con, RUNS_TABLE)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "status": "recorded",
            "as_of_date": as_of.isoformat(),
            "model_version": run["model_version"],
            "model_run_id": model_run_id,
            "lineage": dg.MetadataValue.md(chain),
        }
    )
