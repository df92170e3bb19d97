"""model assets: train, evaluate, register and promote the opportunity model (logic in pipeline.py)."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from ose_assets.model import evaluate as ev
from ose_assets.model.pipeline import MODEL_VERSIONS_TABLE, PLOT_FILES, latest_champion, train_and_publish
from ose_assets.monitoring.track_record import retraining_reason
from ose_assets.resources import MLflowResource
from ose_assets.settings import model_config
from ose_assets.warehouse import AsOfConfig, frame_to_markdown, resolve_as_of, table_metadata

OPPORTUNITY_MODEL = dg.AssetKey(["model", "opportunity_model"])
MODEL_VERSIONS = dg.AssetKey(["model", "model_versions"])
# Run tag of `ose run --retrain`: train a new version even when the training inputs are unchanged.
RETRAIN_TAG = "ose/retrain"


def track_record_degraded(con, as_of: dt.date) -> str | None:
    """Why the champion's track record asks for retraining (monitoring/track_record's check), unless a
    version was already trained as of this date (one forced retraining per date, whatever it decided)."""
    champion = latest_champion(con)
    reason = retraining_reason(con, champion and champion["version"])
    if reason is None:
        return None
    trained = con.execute(f"select max(as_of_date) from {MODEL_VERSIONS_TABLE}").fetchone()[0]
    return None if trained is not None and trained >= as_of else reason


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            OPPORTUNITY_MODEL,
            group_name="model",
            kinds={"xgboost", "mlflow"},
            deps=[dg.AssetKey(["training", "training_set"])],
            description="Calibrated XGBoost (or the rules prior at cold start), registered in MLflow as "
            "ose-opportunity-model (a pyfunc: feature columns in, score and band out); retrained only when "
            "the training inputs changed (or the run has the tag ose/retrain=true); the `champion` alias "
            "moves only when the promotion rule says so.",
        ),
        dg.AssetSpec(
            MODEL_VERSIONS,
            group_name="model",
            kinds={"duckdb"},
            deps=[dg.AssetKey(["training", "training_set"])],
            description="One row per registered model version: test metrics, promotion decision, champion.",
        ),
    ],
    can_subset=False,
)
def opportunity_model(
    context: dg.AssetExecutionContext, config: AsOfConfig, warehouse: DuckDBResource, mlflow: MLflowResource
):
    as_of = resolve_as_of(context, config.as_of)
    retrain = context.run.tags.get(RETRAIN_TAG, "").lower() == "true"
    trained_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # stored in UTC, like scored_at
    with warehouse.get_connection() as con:
        degraded = track_record_degraded(con, as_of)
        if degraded and not retrain:
            context.log.warning(f"track record: {degraded}; retraining although the inputs may be unchanged")
        outcome = train_and_publish(con, mlflow, as_of, trained_at, retrain=retrain or degraded is not None)
        versions_metadata = table_metadata(con, MODEL_VERSIONS_TABLE)
    context.log.info(f"model: {outcome.decision}")
    served = outcome.served
    metrics = {f"test_{k}": dg.MetadataValue.float(v) for k, v in outcome.metrics.items() if v is not None}
    plots = {
        f"plot_{file.removesuffix('.png')}": dg.MetadataValue.md(ev.png_markdown(title, outcome.plots[file]))
        for title, file in PLOT_FILES.items()
        if file in outcome.plots
    }
    yield dg.MaterializeResult(
        asset_key=OPPORTUNITY_MODEL,
        metadata={
            "decision": outcome.decision,
            "model_version": served.version,
            "retrained": outcome.retrained,
            "model_kind": served.kind,
            "run_id": served.run_id,
            **mlflow.ui_links(served.run_id, served.version),
            "promoted": outcome.promoted,
            "promotion_reason": outcome.reason,
            "champion_version": outcome.champion_version,
            "champion_kind": outcome.champion_kind,
            **{f"{split}_snapshots": dates for split, dates in outcome.split_dates.items()},
            **metrics,
            "segment_roc_auc": dg.MetadataValue.md(frame_to_markdown(outcome.segments)),
            **plots,
            **({"model_card": dg.MetadataValue.md(outcome.card_markdown)} if outcome.card_markdown else {}),
        },
    )
    yield dg.MaterializeResult(asset_key=MODEL_VERSIONS, metadata=versions_metadata)


@dg.asset_check(
    asset=OPPORTUNITY_MODEL,
    blocking=True,
    description="Scoring only uses a champion whose ROC-AUC on the latest test period reaches "
    "promotion.auc_floor. The rules prior passes by definition: it is the documented fallback when there "
    "are no labels to measure an AUC on.",
)
def champion_above_auc_floor(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    floor = float(model_config()["promotion"]["auc_floor"])
    with warehouse.get_connection() as con:
        champion = latest_champion(con)
    if champion is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "no training run recorded"})
    auc = champion["test_roc_auc"]
    passed = champion["kind"] == "rules_prior" or (auc is not None and auc >= floor)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "champion_version": champion["version"],
            "champion_kind": champion["kind"],
            "champion_test_roc_auc": dg.MetadataValue.float(auc) if auc is not None else "n/a",
            "auc_floor": floor,
        },
    )
