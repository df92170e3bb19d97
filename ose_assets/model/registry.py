"""MLflow: log a training run, register its model version, and apply the champion / challenger rule.

Every training run registers a version of `ose-opportunity-model`: an MLflow pyfunc (model/pyfunc.py)
wrapping the served-model JSON, which is also what scoring loads. The `champion` alias moves to it
only when decide_promotion says so; either way the version carries the tags model_kind,
promotion_decision, promotion_reason and its training fingerprint (model/fingerprint.py), and a
description. A full refresh whose fingerprint a registered version already has registers nothing.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ose_assets.model.champions import record_champion
from ose_assets.model.fingerprint import FINGERPRINT_TAG, InputsFingerprint
from ose_assets.model.served_model import CHAMPION_ALIAS, ServedModel

FINGERPRINT_ARTIFACT = "training_fingerprint.json"
FEATURES_ARTIFACT = "feature_list.json"
MODEL_CARD_ARTIFACT = "model_card.md"
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class Evaluation:
    """A model's kind and its metrics on the current test rows (roc_auc / ece None when undefined)."""

    kind: str
    version: str | None
    roc_auc: float | None
    ece: float | None


def decide_promotion(
    challenger: Evaluation, champion: Evaluation | None, rules: dict[str, float]
) -> tuple[bool, str]:
    """Whether the challenger becomes champion, and why (with the numbers).

    - no champion yet: promote;
    - a learned model always replaces the rules prior; a new prior replaces an older prior (fresher
      means and rate); a prior never replaces a learned champion;
    - learned vs learned, both scored on the same test rows: promote when
      AUC_new >= AUC_champion - max_auc_drop and ECE_new <= ECE_champion + max_ece_increase.
    """
    if champion is None:
        return True, "no champion yet"
    if challenger.kind == "xgboost" and champion.kind == "rules_prior":
        return True, f"a learned model replaces the rules prior (champion v{champion.version})"
    if challenger.kind == "rules_prior":
        if champion.kind == "rules_prior":
            return True, f"refreshed rules prior replaces the rules prior v{champion.version}"
        return (
            False,
            f"not enough labels for a learned model: the learned champion v{champion.version} is kept",
        )
    if champion.roc_auc is None or champion.ece is None:
        return True, f"champion v{champion.version} cannot be evaluated on the current test rows"
    auc_floor = champion.roc_auc - rules["max_auc_drop"]
    ece_ceiling = champion.ece + rules["max_ece_increase"]
    numbers = (
        f"test ROC-AUC {challenger.roc_auc:.4f} vs champion v{champion.version} {champion.roc_auc:.4f} "
        f"(min {auc_floor:.4f}); ECE {challenger.ece:.4f} vs {champion.ece:.4f} (max {ece_ceiling:.4f})"
    )
    if challenger.roc_auc < auc_floor:
        return False, f"ROC-AUC too low: {numbers}"
    if challenger.ece > ece_ceiling:
        return False, f"calibration worse: {numbers}"
    return True, f"at least as good as the champion: {numbers}"


def evaluate_champion(
    mlflow_resource, test: pl.DataFrame, evaluate
) -> tuple[ServedModel | None, Evaluation | None]:
    """The current champion, re-scored on the new test rows by `evaluate(served, rows) -> metrics`.

    A champion that can not score the current rows (features renamed since) gets no metrics.
    """
    from ose_assets.model.served_model import load_champion

    champion = load_champion(mlflow_resource)
    if champion is None:
        return None, None
    if champion.kind == "rules_prior":
        return champion, Evaluation("rules_prior", champion.version, None, None)
    if set(champion.feature_names) - set(test.columns) or test.is_empty():
        return champion, Evaluation("xgboost", champion.version, None, None)
    metrics = evaluate(champion, test)
    return champion, Evaluation("xgboost", champion.version, metrics["roc_auc"], metrics["ece"])


def _clean(metrics: dict[str, float | None]) -> dict[str, float]:
    """Defined metrics under MLflow-safe names ('250+' -> '250plus')."""
    return {
        re.sub(r"[^\w\-. :/]", "_", name.replace("+", "plus")): float(value)
        for name, value in metrics.items()
        if value is not None
    }


REGISTERED_MODEL_DESCRIPTION = (
    "OSE opportunity model: the calibrated probability (score 0-100, one decimal, and its band) that a "
    "French company converts into a won opportunity within the training horizon. The `champion` alias "
    "is the served version. Load it with mlflow.pyfunc.load_model('models:/{name}@champion') and call "
    "predict() on the feature columns of features.company_features: it returns score and band exactly as "
    "scoring.company_scores publishes them. A full refresh registers a new version only when its training "
    "inputs (tag training_fingerprint) changed or `ose run --retrain` asks for one."
)
TRAINING_SET_SOURCE = "warehouse/ose.duckdb?table=training.training_set"  # relative to the data root


def unchanged_version(mlflow_resource, fingerprint: str):
    """The registered version trained on exactly these inputs (the champion first), or None."""
    from mlflow.exceptions import MlflowException

    client, name = mlflow_resource.client(), mlflow_resource.registered_model_name
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None
    if champion.tags.get(FINGERPRINT_TAG) == fingerprint:
        return champion
    same = client.search_model_versions(f"name = '{name}' and tags.{FINGERPRINT_TAG} = '{fingerprint}'")
    return max(same, key=lambda version: int(version.version)) if same else None


def champion_version_tags(mlflow_resource) -> dict[str, str] | None:
    """Tags of the champion version, or None when there is no champion."""
    from mlflow.exceptions import MlflowException

    try:
        version = mlflow_resource.client().get_model_version_by_alias(
            mlflow_resource.registered_model_name, CHAMPION_ALIAS
        )
    except MlflowException:
        return None
    return dict(version.tags)


def log_training_inputs(inputs: InputsFingerprint) -> None:
    """The training set as one MLflow dataset per split (source, content digest, rows) in the active run."""
    import warnings

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # the relative URI matches two equivalent local source types
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(TRAINING_SET_SOURCE)
    for split, digest in inputs.splits.items():
        dataset = MetaDataset(source, name=f"training_set/{split}", digest=digest.digest)
        mlflow.log_input(
            dataset, context=split, tags={"rows": str(digest.rows), "converted": str(digest.positives)}
        )


def log_and_register(
    mlflow_resource,
    *,
    served: ServedModel,
    example: pl.DataFrame,
    inputs: InputsFingerprint,
    params: dict[str, Any],
    metrics: dict[str, float | None],
    plots: dict[str, bytes],
    fingerprint: dict[str, Any],
    as_of: str,
    change: str,
    render_card,
    promote: bool,
    reason: str,
    version_tags: dict[str, str],
) -> tuple[ServedModel, str]:
    """One MLflow run: params, metrics, plots, feature list, fingerprint, the training set as datasets,
    the model as a pyfunc (model/pyfunc.py: feature columns in, published score and band out) and the
    model card; register the version, tag and describe it, move the champion alias when promoted.

    The run is named "v<version> · as of <date> · <change>" (what changed since the champion).
    `render_card(version) -> markdown` is called once the version number is known.
    Returns the served model stamped with its version and run id, and the card.
    """
    import mlflow

    from ose_assets.model.pyfunc import log_pyfunc

    experiment_id = mlflow_resource.configure()
    client = mlflow_resource.client()
    name = mlflow_resource.registered_model_name
    description = version_description(served.kind, as_of, change, version_tags, promote, reason)
    _ensure_registered_model(client, name)
    client.update_registered_model(name, description=REGISTERED_MODEL_DESCRIPTION.format(name=name))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"as of {as_of} · {change}") as run:
        run_id = run.info.run_id
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(_clean(metrics))
        mlflow.set_tags({"model_kind": served.kind, **inputs.tags()})
        log_training_inputs(inputs)
        mlflow.log_text(json.dumps(fingerprint, indent=2, default=str), FINGERPRINT_ARTIFACT)
        mlflow.log_text(
            json.dumps(
                {"features": served.feature_names, "categorical": sorted(served.categories)}, indent=2
            ),
            FEATURES_ARTIFACT,
        )
        with tempfile.TemporaryDirectory() as tmp:
            for filename, png in plots.items():
                (Path(tmp) / filename).write_bytes(png)
            mlflow.log_artifacts(tmp, PLOTS_DIR)
        info = log_pyfunc(served, example)
        version = str(mlflow.register_model(info.model_uri, name).version)
        mlflow.set_tags(
            {"mlflow.runName": f"v{version} · as of {as_of} · {change}", "mlflow.note.content": description}
        )
        stamped = served.with_registry(version, run_id)
        card = render_card(version)
        mlflow.log_text(card, MODEL_CARD_ARTIFACT)
    tags = {
        **version_tags,
        **inputs.tags(),
        "model_kind": served.kind,
        "promotion_decision": "promoted" if promote else "not_promoted",
        "promotion_reason": reason,
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    client.update_model_version(name, version, description=description)
    if promote:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
        record_champion(client, name, str(version), version_tags.get("training_as_of"))
    return stamped, card


def version_description(
    kind: str, as_of: str, change: str, version_tags: dict[str, str], promote: bool, reason: str
) -> str:
    label = "Calibrated XGBoost" if kind == "xgboost" else "Rules prior (cold start: too few labels)"
    metrics = ", ".join(
        f"{metric} {float(version_tags[tag]):.4f}"
        for metric, tag in (("ROC-AUC", "test_roc_auc"), ("ECE", "test_ece"))
        if version_tags.get(tag) not in (None, "None")
    )
    return (
        f"{label} trained as of {as_of} ({change}). Test period: {metrics or 'no metrics'}. "
        f"{'Promoted to champion' if promote else 'Not promoted'}: {reason}."
    )


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
