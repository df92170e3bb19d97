"""The registered model as an MLflow pyfunc: feature columns in, the published score and band out.

The pyfunc wraps the served-model JSON (ServedModel: booster, calibrator and category codes, or the
rules prior), stored as the pyfunc artifact `served_model`. Scoring loads that same artifact
(served_model.load_champion), so `mlflow.pyfunc.load_model("models:/ose-opportunity-model@champion")`
and `scoring.company_scores` cannot disagree: both go through ServedModel.published_scores().
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import polars as pl

from ose_assets.model.served_model import SERVED_MODEL_ARTIFACT, ServedModel

PYFUNC_NAME = "model"
SERVED_MODEL_KEY = "served_model"
# Where log_model copies the artifact inside the logged model directory.
PYFUNC_SERVED_MODEL_PATH = f"artifacts/{SERVED_MODEL_ARTIFACT}"
# MLflow column types of the feature catalog's dtypes (DuckDB INTEGER arrives as int32: safely a double).
SIGNATURE_TYPES = {"bool": "boolean", "category": "string"}


class OpportunityModel(mlflow.pyfunc.PythonModel):
    """predict(feature columns) -> DataFrame(score, band), exactly as scoring publishes them."""

    def load_context(self, context) -> None:
        self.served = ServedModel.from_bytes(Path(context.artifacts[SERVED_MODEL_KEY]).read_bytes())

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.served.published_scores(pl.from_pandas(model_input)).to_pandas()


def signature(served: ServedModel):
    """Inputs: the model's feature columns (category -> string, bool -> boolean, else double)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from ose_assets.features.catalog import FEATURE_CATALOG

    dtypes = {feature.name: feature.dtype for feature in FEATURE_CATALOG}
    inputs = [
        ColSpec(
            "string" if name in served.categories else SIGNATURE_TYPES.get(dtypes.get(name), "double"), name
        )
        for name in served.feature_names
    ]
    return ModelSignature(Schema(inputs), Schema([ColSpec("double", "score"), ColSpec("string", "band")]))


def log_pyfunc(served: ServedModel, example: pl.DataFrame):
    """Log the pyfunc in the active run (signature, input example: a few feature rows); its ModelInfo."""
    import xgboost as xgb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / SERVED_MODEL_ARTIFACT
        path.write_bytes(served.to_bytes())
        return mlflow.pyfunc.log_model(
            name=PYFUNC_NAME,
            python_model=OpportunityModel(),
            artifacts={SERVED_MODEL_KEY: str(path)},
            signature=signature(served),
            input_example=example.select(served.feature_names).to_pandas() if served.feature_names else None,
            # Explicit requirements: MLflow's inference would import-probe the environment (slow).
            pip_requirements=[
                "ose-assets",
                f"mlflow=={mlflow.__version__}",
                f"xgboost=={xgb.__version__}",
                f"polars=={pl.__version__}",
            ],
        )
