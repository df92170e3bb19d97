"""One training run end to end: learned model or rules prior, test metrics, champion / challenger,
MLflow run and registered version, model card, and the model.model_versions row.

Cold start: with too few labels (train.insufficient_labels) no booster is trained; the rules prior
(prior.py) is registered instead, tagged model_kind=rules_prior, and served until a learned model
exists. An empty training set is a cold start too: the pipeline never fails for lack of labels.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ose_assets.features.catalog import categorical_feature_names, model_feature_names
from ose_assets.model import evaluate as ev
from ose_assets.model.fingerprint import inputs_fingerprint
from ose_assets.model.model_card import CardInputs, render_model_card
from ose_assets.model.prior import build_prior, prior_markdown
from ose_assets.model.registry import (
    MODEL_CARD_ARTIFACT,
    PLOTS_DIR,
    Evaluation,
    champion_version_tags,
    decide_promotion,
    evaluate_champion,
    log_and_register,
    unchanged_version,
)
from ose_assets.model.served_model import ServedModel, load_champion
from ose_assets.model.train import fit_streamed, insufficient_labels
from ose_assets.model.training_rows import TrainingRows
from ose_assets.settings import model_config
from ose_assets.training.snapshots import SPLITS, TRAINING_SET_TABLE
from ose_assets.warehouse import replace_table, table_exists

MODEL_VERSIONS_TABLE = "model.model_versions"
PLOT_FILES = {
    "SHAP summary": "shap_summary.png",
    "Calibration curve": "calibration_curve.png",
    "Gains and lift": "gains_lift.png",
}


@dataclass(frozen=True)
class TrainingOutcome:
    served: ServedModel
    # One sentence for the log, the model asset's metadata and the `ose run` summary: "training inputs
    # unchanged since v3, champion kept", "retrained v4 (new training data) and promoted: ..." or
    # "retrained v4 (new training data), refused: ...".
    decision: str
    retrained: bool
    metrics: dict[str, float | None]
    segments: pl.DataFrame
    promoted: bool
    reason: str
    champion_version: str
    champion_kind: str
    champion_test_roc_auc: float | None
    card_markdown: str  # with embedded images, for the Dagster UI
    plots: dict[str, bytes]
    split_dates: dict[str, str]
    split_counts: dict[str, tuple[int, int]]
    params: dict[str, Any]


def load_training_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """training.training_set in a reproducible row order."""
    return con.execute(f"select * from {TRAINING_SET_TABLE} order by snapshot_date, siren").pl()


def input_example(con: duckdb.DuckDBPyConnection, features: list[str]) -> pl.DataFrame:
    """A few rows of the model's features as the feature table stores them (booleans, integers, text),
    not as the booster reads them: the pyfunc's input example."""
    columns = ", ".join(f'"{name}"' for name in features)
    return con.execute(
        f"select {columns} from {TRAINING_SET_TABLE} order by snapshot_date desc, siren limit 5"
    ).pl()


def split_dates(frame: pl.DataFrame) -> dict[str, str]:
    out = {}
    for split in SPLITS:
        dates = frame.filter(pl.col("split") == split)["snapshot_date"].unique().sort()
        out[split] = f"{dates[0]} .. {dates[-1]} ({dates.len()} snapshots)" if dates.len() else "none"
    return out


def training_fingerprint(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, counts: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """What the run learned from: snapshot dates, rows per split, the inbox files behind them."""
    files = (
        con.execute("select file_path, source, file_hash from raw.manifest order by file_path")
        .pl()
        .to_dicts()
        if table_exists(con, "raw.manifest")
        else []
    )
    content_hash = con.execute(f"select bit_xor(hash(t)) from {TRAINING_SET_TABLE} t").fetchone()[0]
    return {
        "snapshot_dates": {
            split: [str(d) for d in frame.filter(pl.col("split") == split)["snapshot_date"].unique().sort()]
            for split in SPLITS
        },
        "rows": {name: {"converted": pos, "not_converted": neg} for name, (pos, neg) in counts.items()},
        "training_set_hash": None if content_hash is None else f"{content_hash:016x}",
        "input_files": files,
    }


def _details_markdown(
    served: ServedModel, params: dict[str, Any], calibration_brier: dict[str, float]
) -> str:
    if served.kind == "rules_prior":
        return (
            "Rules prior (no learned model): logit weights over standardised features.\n\n"
            + prior_markdown(served)
        )
    lines = ["| parameter | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in params.items()]]
    lines.append(
        f"\nCalibration: **{served.calibrator['method']}** (out-of-fold Brier: "
        + ", ".join(f"{m} {b:.5f}" for m, b in calibration_brier.items())
        + "), fitted on the calibration half of the validation period."
    )
    return "\n".join(lines)


def _plots(
    served: ServedModel, test: pl.DataFrame, scored: pl.DataFrame, settings: dict[str, Any]
) -> dict[str, bytes]:
    if test.is_empty():
        return {}
    sample = test.sample(n=min(test.height, int(settings["shap_sample_rows"])), seed=int(settings["seed"]))
    return {
        PLOT_FILES["SHAP summary"]: ev.shap_plot(served, sample),
        PLOT_FILES["Calibration curve"]: ev.calibration_plot(scored, int(settings["ece_bins"])),
        PLOT_FILES["Gains and lift"]: ev.gains_plot(scored),
    }


def kept_outcome(mlflow_resource, since) -> TrainingOutcome:
    """No training: the champion stays, with the metrics, plots and card of its registered run."""
    champion = load_champion(mlflow_resource)
    tags = champion_version_tags(mlflow_resource) or {}
    decision = f"training inputs unchanged since v{since.version}, " + (
        "champion kept" if str(since.version) == champion.version else f"champion v{champion.version} kept"
    )
    client = mlflow_resource.client()
    with tempfile.TemporaryDirectory() as tmp:
        stored = {
            info.path
            for folder in (None, PLOTS_DIR)
            for info in client.list_artifacts(champion.run_id, folder)
        }

        def read(path: str) -> bytes | None:
            return (
                Path(client.download_artifacts(champion.run_id, path, tmp)).read_bytes()
                if path in stored
                else None
            )

        plots = {file: png for file in PLOT_FILES.values() if (png := read(f"{PLOTS_DIR}/{file}"))}
        card = (read(MODEL_CARD_ARTIFACT) or b"").decode()
    for title, file in PLOT_FILES.items():
        if file in plots:
            card = card.replace(f"![{title}]({PLOTS_DIR}/{file})", ev.png_markdown(title, plots[file]))
    auc = tags.get("test_roc_auc")
    metrics = {
        name: float(tags[f"test_{name}"])
        for name in ("roc_auc", "ece")
        if tags.get(f"test_{name}") not in (None, "None")
    }
    return TrainingOutcome(
        served=champion,
        decision=decision,
        retrained=False,
        metrics=metrics,
        segments=pl.DataFrame(),
        promoted=False,
        reason=decision,
        champion_version=champion.version,
        champion_kind=champion.kind,
        champion_test_roc_auc=float(auc) if auc not in (None, "None") else None,
        card_markdown=card,
        plots=plots,
        split_dates={},
        split_counts={},
        params={},
    )


def train_and_publish(
    con: duckdb.DuckDBPyConnection,
    mlflow_resource,
    as_of: dt.date,
    trained_at: dt.datetime,
    retrain: bool = False,
) -> TrainingOutcome:
    """Train, evaluate, register and apply the promotion rule, unless a registered version was trained
    on exactly these inputs (fingerprint.py) and `retrain` is False: then the champion is kept."""
    config = model_config()
    settings = config["training"]
    features, categorical = model_feature_names(), categorical_feature_names()
    inputs = inputs_fingerprint(con, features, categorical, config)
    since = None if retrain else unchanged_version(mlflow_resource, inputs.value)
    if since is not None:
        return kept_outcome(mlflow_resource, since)
    change = inputs.changes(champion_version_tags(mlflow_resource))
    if retrain and change == "inputs unchanged":
        change = "retrain requested, inputs unchanged"
    # Never the whole training set in memory: counts in DuckDB, train rows streamed (training_rows.py).
    training = TrainingRows.from_config(con, settings)
    counts = training.counts()
    frame = training.snapshot_dates()  # (split, snapshot_date): what split_dates and the fingerprint read
    cold_start = insufficient_labels(counts, int(settings["min_won"]), int(settings["min_lost"]))
    if cold_start is None:
        trained = fit_streamed(training, features, categorical, config["xgboost"], settings)
        served = trained.served
        params = {
            **trained.params,
            "best_iteration": trained.best_iteration,
            "calibration": served.calibrator["method"],
        }
        details = _details_markdown(served, params, trained.calibration_brier)
    else:
        served = build_prior(training.load_all(), features, categorical, config["rules_prior"])
        params = {"kind": "rules_prior", "cold_start_reason": cold_start}
        details = _details_markdown(served, params, {})
    params |= {
        "horizon_days": settings["horizon_days"],
        "as_of": as_of.isoformat(),
        **{f"{k}_snapshots": v for k, v in split_dates(frame).items()},
    }

    test = training.load("test", ["siren", "snapshot_date", "label", *features], categorical)
    bins = int(settings["ece_bins"])

    def evaluate(model: ServedModel, rows: pl.DataFrame) -> dict[str, float | None]:
        return ev.classification_metrics(ev.score_frame(model, rows), bins)

    scored = ev.score_frame(served, test)
    metrics = ev.classification_metrics(scored, bins)
    segments = ev.segment_metrics(scored) if test.height else pl.DataFrame()
    champion, champion_eval = evaluate_champion(mlflow_resource, test, evaluate)
    promoted, reason = decide_promotion(
        Evaluation(served.kind, None, metrics["roc_auc"], metrics["ece"]), champion_eval, config["promotion"]
    )
    plots = _plots(served, test, scored, settings)
    card_inputs = CardInputs(
        kind=served.kind,
        as_of=as_of.isoformat(),
        horizon_days=int(settings["horizon_days"]),
        split_dates=split_dates(frame),
        split_counts=counts,
        feature_names=features,
        categorical=categorical,
        params=params,
        metrics=metrics,
        segments=segments,
        promoted=promoted,
        reason=reason,
        champion_before=None if champion is None else f"v{champion.version} ({champion.kind})",
        cold_start_reason=cold_start,
        model_details_md=details,
    )
    run_metrics = {f"test_{k}": v for k, v in metrics.items()}
    run_metrics |= (
        {
            f"test_roc_auc__{row['segment_type']}__{row['segment']}": row["roc_auc"]
            for row in segments.iter_rows(named=True)
        }
        if segments.height
        else {}
    )
    if champion_eval is not None and champion_eval.roc_auc is not None:
        run_metrics |= {
            "champion_test_roc_auc": champion_eval.roc_auc,
            "champion_test_ece": champion_eval.ece,
        }
    stamped, _ = log_and_register(
        mlflow_resource,
        served=served,
        example=input_example(con, features),
        inputs=inputs,
        params=params,
        metrics=run_metrics,
        plots=plots,
        fingerprint=training_fingerprint(con, frame, counts),
        as_of=as_of.isoformat(),
        change=change,
        render_card=lambda version: render_model_card(
            card_inputs, version, {t: f"![{t}]({PLOTS_DIR}/{f})" for t, f in PLOT_FILES.items() if f in plots}
        ),
        promote=promoted,
        reason=reason,
        version_tags={
            "test_roc_auc": str(metrics["roc_auc"]),
            "test_ece": str(metrics["ece"]),
            "training_as_of": as_of.isoformat(),
        },
    )
    card = render_model_card(
        card_inputs,
        stamped.version,
        {t: ev.png_markdown(t, plots[f]) for t, f in PLOT_FILES.items() if f in plots},
    )
    if promoted:
        champion_version, champion_kind, champion_auc = stamped.version, stamped.kind, metrics["roc_auc"]
    else:
        champion_version, champion_kind = champion.version, champion.kind
        champion_auc = champion_eval.roc_auc
        if champion_auc is None and champion_kind == "xgboost":
            registered = (champion_version_tags(mlflow_resource) or {}).get("test_roc_auc")
            champion_auc = float(registered) if registered not in (None, "None") else None
    write_model_versions(
        con,
        {
            "version": int(stamped.version),
            "run_id": stamped.run_id,
            "kind": stamped.kind,
            "trained_at": trained_at,
            "as_of_date": as_of,
            **{f"{s}_snapshots": d for s, d in split_dates(frame).items()},
            "train_rows": sum(counts["train"]),
            "test_rows": sum(counts["test"]),
            "test_positives": counts["test"][0],
            **{
                f"test_{k}": metrics[k]
                for k in ("roc_auc", "pr_auc", "brier", "ece", "top_decile_lift", "top10_precision")
            },
            "calibration_method": (stamped.calibrator or {}).get("method"),
            "promoted": promoted,
            "promotion_reason": reason,
            "champion_version": int(champion_version),
            "champion_kind": champion_kind,
            "champion_test_roc_auc": champion_auc,
        },
    )
    decision = f"retrained v{stamped.version} ({change})" + (
        f" and promoted: {reason}" if promoted else f", refused: {reason}"
    )
    return TrainingOutcome(
        served=stamped,
        decision=decision,
        retrained=True,
        metrics=metrics,
        segments=segments,
        promoted=promoted,
        reason=reason,
        champion_version=str(champion_version),
        champion_kind=champion_kind,
        champion_test_roc_auc=champion_auc,
        card_markdown=card,
        plots=plots,
        split_dates=split_dates(frame),
        split_counts=counts,
        params=params,
    )


MODEL_VERSIONS_SCHEMA = {
    "version": pl.Int64,
    "run_id": pl.String,
    "kind": pl.String,
    "trained_at": pl.Datetime("us"),
    "as_of_date": pl.Date,
    "train_snapshots": pl.String,
    "validation_snapshots": pl.String,
    "test_snapshots": pl.String,
    "train_rows": pl.Int64,
    "test_rows": pl.Int64,
    "test_positives": pl.Int64,
    "test_roc_auc": pl.Float64,
    "test_pr_auc": pl.Float64,
    "test_brier": pl.Float64,
    "test_ece": pl.Float64,
    "test_top_decile_lift": pl.Float64,
    "test_top10_precision": pl.Float64,
    "calibration_method": pl.String,
    "promoted": pl.Boolean,
    "promotion_reason": pl.String,
    "champion_version": pl.Int64,
    "champion_kind": pl.String,
    "champion_test_roc_auc": pl.Float64,
}


def write_model_versions(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Append this run's version and refresh is_champion on every row (one atomic replace)."""
    new = pl.DataFrame([row], schema=MODEL_VERSIONS_SCHEMA)
    if table_exists(con, MODEL_VERSIONS_TABLE):
        previous = con.execute(f"select * exclude (is_champion) from {MODEL_VERSIONS_TABLE}").pl()
        new = pl.concat([previous.cast(MODEL_VERSIONS_SCHEMA, strict=False), new], how="diagonal_relaxed")
    new = new.with_columns((pl.col("version") == row["champion_version"]).alias("is_champion"))
    # Registered explicitly: warehouse.replace_table_from_frame's replacement scan looks for the frame
    # in the wrong Python frame (DuckDB resolves names in the caller of execute).
    con.register("model_versions_frame", new.to_arrow())
    try:
        replace_table(con, MODEL_VERSIONS_TABLE, "select * from model_versions_frame order by version")
    finally:
        con.unregister("model_versions_frame")


def latest_champion(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The champion after the latest training run: version, kind, test ROC-AUC on that run's test rows."""
    if not table_exists(con, MODEL_VERSIONS_TABLE):
        return None
    rows = con.execute(
        f"select champion_version, champion_kind, champion_test_roc_auc from {MODEL_VERSIONS_TABLE} "
        "order by trained_at desc, version desc limit 1"
    ).fetchall()
    return dict(zip(("version", "kind", "test_roc_auc"), rows[0], strict=True)) if rows else None
