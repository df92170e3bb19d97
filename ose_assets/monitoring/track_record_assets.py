"""monitoring.track_record and its performance check: how every published ranking turned out.

Thin asset over ose_assets.monitoring.track_record. It runs before the serving copy is published (so the
API and the pages show it) and in replays (so a backfill builds the record at once).
"""

import datetime as dt
import io

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from ose_assets.model.evaluate import png_markdown
from ose_assets.monitoring import track_record as tr
from ose_assets.resources import MLflowResource
from ose_assets.settings import model_config
from ose_assets.warehouse import AS_OF_TAG, AsOfConfig, frame_to_markdown, table_exists, table_metadata

TRACK_RECORD_KEY = dg.AssetKey(["monitoring", "track_record"])
GROUPS_KEY = dg.AssetKey(["monitoring", "track_record_groups"])
SUMMARY_COLUMNS = [
    "as_of_date", "model_version", "window_status", "sample_type", "companies", "expected_wins",
    "realised_wins", "top10_wins", "top100_wins", "realised_roc_auc", "test_roc_auc", "realised_ece",
    "test_ece",
]  # fmt: skip
REALISED_METRICS = ("realised_roc_auc", "realised_brier", "realised_ece", "realised_top_decile_lift")


def known_until(context: dg.AssetExecutionContext, config: AsOfConfig, con) -> dt.date:
    """Outcomes are known up to the newest published as-of date (a replay of an old date does not move it
    back), or the run's as-of when it is later."""
    value = config.as_of or context.run.tags.get(AS_OF_TAG)
    run_as_of = dt.date.fromisoformat(value) if value else dt.date.today()
    latest = con.execute(f"select max(as_of_date) from {tr.HISTORY_TABLE}").fetchone()[0]
    return max(run_as_of, latest) if latest else run_as_of


def bands_plot(groups: pl.DataFrame) -> bytes:
    """Expected (line) and realised (dots) wins per band, per as-of date."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = groups.filter(pl.col("grouping") == "band").sort("as_of_date")
    figure, axis = plt.subplots(figsize=(7, 3.5))
    for (band,), part in bands.group_by("group_value", maintain_order=True):
        line = axis.plot(
            part["as_of_date"].to_list(), part["expected_wins"].to_list(), label=f"{band} expected"
        )
        axis.scatter(part["as_of_date"].to_list(), part["realised_wins"].to_list(), color=line[0].get_color(),
                     label=f"{band} realised")  # fmt: skip
    axis.set(
        xlabel="as-of date", ylabel="wins within the horizon", title="Expected vs realised wins per band"
    )
    axis.legend(fontsize=7, ncol=2)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def log_realised_metrics(mlflow: MLflowResource, record: pl.DataFrame) -> int:
    """Realised metrics of each closed, out-of-sample window on its model version's MLflow run, step = the
    window's ordinal for that version (1 = its first judged as-of date), timestamp = the as-of date.
    A step already logged is not logged again (re-runs are idempotent). Returns the metrics logged."""
    from mlflow.entities import Metric

    client = mlflow.client()
    judged = record.filter(pl.col("window_status") == "closed", pl.col("sample_type") == "out_of_sample")
    logged = 0
    for (version,), windows in judged.group_by("model_version", maintain_order=True):
        try:
            run_id = client.get_model_version(mlflow.registered_model_name, str(version)).run_id
        except Exception:  # noqa: BLE001 - a version missing from this registry has no run to log to
            continue
        done = {m.step for m in client.get_metric_history(run_id, "realised_roc_auc")}
        metrics = []
        for step, row in enumerate(windows.sort("as_of_date").iter_rows(named=True), start=1):
            if step in done:
                continue
            stamp = int(dt.datetime.combine(row["as_of_date"], dt.time()).timestamp() * 1000)
            metrics += [
                Metric(key=name, value=float(row[name]), timestamp=stamp, step=step)
                for name in (*REALISED_METRICS, "realised_wins", "expected_wins")
                if row[name] is not None
            ]
        if metrics:
            client.log_batch(run_id, metrics=metrics)
            logged += len(metrics)
    return logged


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            TRACK_RECORD_KEY,
            group_name="monitoring",
            kinds={"duckdb", "mlflow"},
            deps=[
                dg.AssetKey(["scoring", "score_history"]),
                dg.AssetKey(["normalized", "outcomes"]),
                dg.AssetKey(["model", "model_versions"]),
            ],
            description=(
                "How every published ranking turned out: per as-of date and model version, realised wins "
                "against expected, realised ROC-AUC, Brier, ECE and lift next to the model's test figures; "
                "closed and in-progress windows, in-sample rankings kept apart."
            ),
        ),
        dg.AssetSpec(
            GROUPS_KEY,
            group_name="monitoring",
            kinds={"duckdb"},
            deps=[dg.AssetKey(["scoring", "score_history"]), dg.AssetKey(["normalized", "outcomes"])],
            description="The track record per band, score decile and published top list.",
        ),
    ],
    can_subset=False,
)
def track_record(
    context: dg.AssetExecutionContext, config: AsOfConfig, warehouse: DuckDBResource, mlflow: MLflowResource
):
    with warehouse.get_connection() as con:
        if not table_exists(con, tr.HISTORY_TABLE):
            for key in (TRACK_RECORD_KEY, GROUPS_KEY):
                yield dg.MaterializeResult(
                    asset_key=key, metadata={"status": "skipped", "reason": "no score_history yet"}
                )
            return
        until = known_until(context, config, con)
        record, groups = tr.build_track_record(con, until)
        tr.write_track_record(con, record, groups)
        metadata = table_metadata(con, tr.TRACK_RECORD_TABLE)
        groups_metadata = table_metadata(con, tr.GROUPS_TABLE)
    logged = log_realised_metrics(mlflow, record)
    closed = record.filter(pl.col("window_status") == "closed")
    latest = closed.sort("as_of_date").tail(1)
    context.log.info(
        f"track record up to {until}: {closed.height} closed and {record.height - closed.height} in-progress "
        f"windows; {logged} realised metrics logged to MLflow"
    )
    yield dg.MaterializeResult(asset_key=GROUPS_KEY, metadata=groups_metadata)
    yield dg.MaterializeResult(
        asset_key=TRACK_RECORD_KEY,
        metadata={
            **metadata,
            "known_until": until.isoformat(),
            "closed_windows": closed.height,
            "in_progress_windows": record.height - closed.height,
            "in_sample_windows": record.filter(pl.col("sample_type") == "in_sample").height,
            "latest_closed": tr.sentence(latest.row(0, named=True)) if latest.height else "none yet",
            "windows": dg.MetadataValue.md(
                frame_to_markdown(record.sort("as_of_date", descending=True).head(24).select(SUMMARY_COLUMNS))
            ),
            "bands_plot": dg.MetadataValue.md(
                png_markdown("Expected vs realised wins per band", bands_plot(groups))
                if groups.height
                else "_no windows_"
            ),
            "mlflow_metrics_logged": logged,
        },
    )


@dg.asset_check(
    asset=TRACK_RECORD_KEY,
    name="realised_performance",
    blocking=False,
    description=(
        "For each model version's latest closed, out-of-sample window: realised ROC-AUC no more than "
        "track_record.auc_margin below its test ROC-AUC, and realised wins within the calibration interval "
        "around the expected wins (WARN otherwise; the weekly retraining then retrains)."
    ),
)
def realised_performance(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        if not table_exists(con, tr.TRACK_RECORD_TABLE):
            return dg.AssetCheckResult(passed=True, description="No track record yet")
        record = con.execute(f"select * from {tr.TRACK_RECORD_TABLE}").pl()
    judged = (
        record.filter(pl.col("window_status") == "closed", pl.col("sample_type") == "out_of_sample")
        .sort("as_of_date")
        .group_by("model_version", maintain_order=True)
        .tail(1)
    )
    problems = tr.performance_failures(judged, float(model_config()["track_record"]["auc_margin"]))
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems)
        or (
            f"{judged.height} closed out-of-sample window(s) judged, all within limits"
            if judged.height
            else "No closed out-of-sample window yet"
        ),
        metadata={"judged": dg.MetadataValue.md(frame_to_markdown(judged.select(SUMMARY_COLUMNS)))},
    )
