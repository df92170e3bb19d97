"""MLflow: log a training run, register its model version, and apply the champion / challenger rule.

Every training run registers a version of `ose-opportunity-model` (XGBoost flavour plus its calibrator
for a learned model; the served-model JSON for both kinds, which is what scoring loads). The
`champion` alias moves to it only when decide_promotion says so; either way the version carries the
tags model_kind, promotion_decision and promotion_reason, and a short description.
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
from ose_assets.model.served_model import CHAMPION_ALIAS, SERVED_MODEL_ARTIFACT, ServedModel

CALIBRATOR_ARTIFACT = "calibrator.json"
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


def champion_tag(mlflow_resource, key: str) -> str | None:
    """A tag of the champion version (e.g. its registered test_roc_auc)."""
    from mlflow.exceptions import MlflowException

    try:
        version = mlflow_resource.client().get_model_version_by_alias(
            mlflow_resource.registered_model_name, CHAMPION_ALIAS
        )
    except MlflowException:
        return None
    return version.tags.get(key)


def _clean(metrics: dict[str, float | None]) -> dict[str, float]:
    """Defined metrics under MLflow-safe names ('250+' -> '250plus')."""
    return {
        re.sub(r"[^\w\-. :/]", "_", name.replace("+", "plus")): float(value)
        for name, value in metrics.items()
        if value is not None
    }


def log_and_register(
    mlflow_resource,
    *,
    served: ServedModel,
    params: dict[str, Any],
    metrics: dict[str, float | None],
    plots: dict[str, bytes],
    fingerprint: dict[str, Any],
    run_name: str,
    render_card,
    promote: bool,
    reason: str,
    version_tags: dict[str, str],
) -> tuple[ServedModel, str]:
    """One MLflow run: params, metrics, plots, feature list, fingerprint, the model (XGBoost flavour and
    calibrator, or nothing for the prior), the served model and the model card; register the version,
    tag it with the promotion decision and move the champion alias when promoted.

    `render_card(version) -> markdown` is called once the version number is known.
    Returns the served model stamped with its version and run id, and the card.
    """
    import mlflow

    experiment_id = mlflow_resource.configure()
    client = mlflow_resource.client()
    name = mlflow_resource.registered_model_name
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        run_id = run.info.run_id
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(_clean(metrics))
        mlflow.set_tags({"model_kind": served.kind})
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
        if served.kind == "xgboost":
            import xgboost as xgb

            booster = xgb.Booster()
            booster.load_model(bytearray(served.booster_raw))
            mlflow.log_text(json.dumps(served.calibrator), CALIBRATOR_ARTIFACT)
            # Explicit requirements: MLflow's inference would import-probe the environment (slow).
            info = mlflow.xgboost.log_model(
                booster, name="model", pip_requirements=[f"xgboost=={xgb.__version__}"]
            )
            version = mlflow.register_model(info.model_uri, name).version
        else:
            _ensure_registered_model(client, name)
            version = client.create_model_version(
                name, source=f"{run.info.artifact_uri}/{SERVED_MODEL_ARTIFACT}", run_id=run_id
            ).version
        stamped = served.with_registry(str(version), run_id)
        mlflow.log_text(stamped.to_bytes().decode(), SERVED_MODEL_ARTIFACT)
        card = render_card(str(version))
        mlflow.log_text(card, MODEL_CARD_ARTIFACT)
    tags = {
        **version_tags,
        "model_kind": served.kind,
        "promotion_decision": "promoted" if promote else "not_promoted",
        "promotion_reason": reason,
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))
    client.update_model_version(name, str(version), description=f"{served.kind}; {reason}")
    if promote:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
        record_champion(client, name, str(version), version_tags.get("training_as_of"))
    return stamped, card


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
