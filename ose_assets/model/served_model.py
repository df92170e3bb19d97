"""The model as scoring and the API use it: calibrated 0-100 scores and per-feature contributions.

One class for both kinds of champion: a calibrated XGBoost booster, or the transparent rules prior
used before there are enough labels. It serialises to one JSON document, so the exact bytes that
scored a run travel with the serving copy and the API explains companies with the same model.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from ose_assets.model.tree_shap import GroupedTreeShap
from ose_assets.settings import OSESettings

SERVED_MODEL_ARTIFACT = "served_model.json"
CHAMPION_ALIAS = "champion"
# From this many rows, exact contributions are XGBoost's TreeSHAP per group of rows each tree cannot tell
# apart (model/tree_shap.py): about 16x less CPU at 200,000 rows; below it, pred_contribs row by row.
GROUPED_SHAP_MIN_ROWS = 20_000


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def apply_calibrator(calibrator: dict[str, Any] | None, margins: np.ndarray) -> np.ndarray:
    """Calibrated probability from raw margins (no calibrator: the sigmoid)."""
    if calibrator is None:
        return _sigmoid(margins)
    if calibrator["method"] == "platt":
        return _sigmoid(calibrator["a"] * margins + calibrator["b"])
    return np.interp(_sigmoid(margins), calibrator["x"], calibrator["y"])


@dataclass(frozen=True)
class ServedModel:
    kind: Literal["xgboost", "rules_prior"]
    feature_names: list[str]
    # Category lists of categorical features: a value is encoded as its index, unknown as missing.
    categories: dict[str, list[str]] = field(default_factory=dict)
    # xgboost: the booster's UBJSON bytes and the calibrator on the raw probability
    # ({"method": "isotonic", "x": [...], "y": [...]} or {"method": "platt", "a": .., "b": ..}).
    booster_raw: bytes | None = None
    calibrator: dict[str, Any] | None = None
    # rules_prior: logit = intercept + sum(weight * clip((value - center) / scale, -clip, clip)),
    # missing values at center (ose_assets/model/prior.py; "clip" optional).
    prior: dict[str, Any] | None = None
    version: str = "unregistered"
    run_id: str | None = None

    # ---- encoding -----------------------------------------------------------------------------
    def matrix(self, features: pl.DataFrame, dtype: type = np.float64) -> np.ndarray:
        """Model input matrix in feature_names order: categoricals as codes, nulls as NaN.

        dtype np.float32 halves the copy where only XGBoost reads it (it stores float32 anyway)."""
        if not self.feature_names:
            return np.empty((features.height, 0), dtype=dtype)
        float_type = pl.Float32 if dtype == np.float32 else pl.Float64
        columns = [
            pl.col(name)
            .cast(pl.String)
            .replace_strict(
                self.categories[name],
                list(range(len(self.categories[name]))),
                default=None,
                return_dtype=float_type,
            )
            if name in self.categories
            else pl.col(name).cast(float_type)
            for name in self.feature_names
        ]
        return features.select(columns).to_numpy().astype(dtype, copy=False)

    # ---- scores -------------------------------------------------------------------------------
    def _margins(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "xgboost":
            return self._booster().predict(self.dmatrix(x), output_margin=True)
        return self.prior["intercept"] + self._prior_terms(x).sum(axis=1)

    def feature_types(self) -> list[str]:
        """XGBoost feature types: categorical features as such (native categorical splits)."""
        return ["c" if name in self.categories else "q" for name in self.feature_names]

    def dmatrix(self, x: np.ndarray, label: np.ndarray | None = None):
        """XGBoost input with categorical features declared as such."""
        import xgboost as xgb

        return xgb.DMatrix(
            x,
            label=label,
            feature_names=self.feature_names,
            feature_types=self.feature_types(),
            enable_categorical=True,
        )

    def _calibrate(self, margins: np.ndarray) -> np.ndarray:
        """Calibrated probability from the raw margin."""
        if self.kind == "rules_prior":
            return _sigmoid(margins)
        return apply_calibrator(self.calibrator, margins)

    def margins(self, features: pl.DataFrame) -> np.ndarray:
        """Raw (uncalibrated) margins: what the calibrator is fitted on."""
        return self._margins(self.matrix(features))

    def predict_score(self, features: pl.DataFrame) -> np.ndarray:
        """Calibrated probability of conversion within the horizon, x 100."""
        return 100.0 * self._calibrate(self._margins(self.matrix(features)))

    def published_scores(self, features: pl.DataFrame) -> pl.DataFrame:
        """The published score (calibrated probability x 100, one decimal) and its band: what scoring
        writes to company_scores and what the registered pyfunc's predict returns."""
        from ose_assets.scoring.ranking import band_expr

        score = pl.Series("score", np.round(self.predict_score(features).astype(np.float64), 1))
        return pl.DataFrame([score]).with_columns(band=band_expr())

    def contributions(
        self, features: pl.DataFrame, exact: bool = True, x: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions in score points, and the base score of each row.

        XGBoost: TreeSHAP values (exact) or Saabas approximate contributions, in margin units, scaled
        so that each row sums to its score minus the base score (the score of the bias alone).
        Rules prior: its additive logit terms, scaled the same way.
        x: self.matrix(features) when the caller already has it (explain() reads the values from it too).
        """
        x = self.matrix(features) if x is None else x
        if self.kind == "xgboost":
            if exact and x.shape[0] >= GROUPED_SHAP_MIN_ROWS:
                raw = self._grouped_shap().contributions(x, self.dmatrix)
            else:
                raw = self._booster().predict(self.dmatrix(x), pred_contribs=True, approx_contribs=not exact)
            phi, bias = raw[:, :-1], raw[:, -1]
        else:
            phi = self._prior_terms(x)
            bias = np.full(x.shape[0], float(self.prior["intercept"]))
        margin = bias + phi.sum(axis=1)
        score = 100.0 * self._calibrate(margin)
        base = 100.0 * self._calibrate(bias)
        delta_margin = margin - bias
        # Where the margin barely moves, use the local slope of the calibrated curve instead of a ratio.
        eps = 1e-6
        slope = 100.0 * (self._calibrate(margin + eps) - self._calibrate(margin - eps)) / (2 * eps)
        safe = np.abs(delta_margin) > 1e-9
        scale = np.where(safe, (score - base) / np.where(safe, delta_margin, 1.0), slope)
        return phi * scale[:, None], base

    def _prior_terms(self, x: np.ndarray) -> np.ndarray:
        weights = np.array([self.prior["weights"].get(n, 0.0) for n in self.feature_names], dtype=float)
        center = np.array([self.prior["center"].get(n, 0.0) for n in self.feature_names], dtype=float)
        scale = np.array([self.prior["scale"].get(n, 1.0) or 1.0 for n in self.feature_names], dtype=float)
        z = np.nan_to_num((x - center) / scale, nan=0.0)
        # Optional clip of the standardised value, so one extreme count cannot saturate the score.
        clip = self.prior.get("clip")
        if clip:
            z = np.clip(z, -clip, clip)
        return z * weights

    def _booster(self):
        booster = getattr(self, "_cached_booster", None)
        if booster is None:
            import xgboost as xgb

            booster = xgb.Booster()
            booster.load_model(bytearray(self.booster_raw))
            booster.set_param({"nthread": OSESettings().threads()})
            object.__setattr__(self, "_cached_booster", booster)
        return booster

    def _grouped_shap(self) -> GroupedTreeShap:
        grouped = getattr(self, "_cached_grouped_shap", None)
        if grouped is None:
            categorical = {j for j, name in enumerate(self.feature_names) if name in self.categories}
            grouped = GroupedTreeShap(self._booster(), categorical)
            object.__setattr__(self, "_cached_grouped_shap", grouped)
        return grouped

    # ---- serialisation ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        document = {
            "kind": self.kind,
            "feature_names": self.feature_names,
            "categories": self.categories,
            "booster_raw": base64.b64encode(self.booster_raw).decode() if self.booster_raw else None,
            "calibrator": self.calibrator,
            "prior": self.prior,
            "version": self.version,
            "run_id": self.run_id,
        }
        return json.dumps(document).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ServedModel:
        document = json.loads(data)
        raw = document.pop("booster_raw")
        return cls(**document, booster_raw=base64.b64decode(raw) if raw else None)

    def with_registry(self, version: str, run_id: str) -> ServedModel:
        return replace(self, version=str(version), run_id=run_id)


def load_champion(mlflow_resource) -> ServedModel | None:
    """The model version behind the registry's `champion` alias, or None when none is registered yet."""
    from mlflow.exceptions import MlflowException

    client = mlflow_resource.client()
    try:
        version = client.get_model_version_by_alias(mlflow_resource.registered_model_name, CHAMPION_ALIAS)
    except MlflowException:
        return None
    return load_model_version(mlflow_resource, version.version)


def load_model_version(mlflow_resource, version: str) -> ServedModel:
    """A registered version of the model, as it scored: the artifact its pyfunc wraps (model/pyfunc.py),
    or, for a version registered before the pyfunc existed, its run's served_model.json."""
    import mlflow
    from mlflow.exceptions import MlflowException

    registered = mlflow_resource.client().get_model_version(
        mlflow_resource.registered_model_name, str(version)
    )
    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{mlflow_resource.registered_model_name}/{registered.version}/"
            f"artifacts/{SERVED_MODEL_ARTIFACT}",
            tracking_uri=mlflow_resource.tracking_uri,
        )
    except (MlflowException, OSError):
        path = mlflow.artifacts.download_artifacts(
            run_id=registered.run_id,
            artifact_path=SERVED_MODEL_ARTIFACT,
            tracking_uri=mlflow_resource.tracking_uri,
        )
    with open(path, "rb") as handle:
        return ServedModel.from_bytes(handle.read()).with_registry(registered.version, registered.run_id)
