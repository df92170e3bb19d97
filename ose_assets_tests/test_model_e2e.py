"""The registered model over the real graph: the session's full refresh (conftest e2e_run)."""

import duckdb
import mlflow
import pytest

from ose_assets.resources import REGISTERED_MODEL_NAME

pytestmark = pytest.mark.slow


def test_champion_pyfunc_reproduces_the_published_scores(e2e_run):
    """mlflow.pyfunc.load_model(champion).predict(feature columns) == scoring.company_scores (score, band)."""
    e2e_run.mlflow.configure()
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}@champion")
    names = model.metadata.get_input_schema().input_names()
    columns = ", ".join(f'f."{name}"' for name in names)
    with duckdb.connect(str(e2e_run.settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            f"""select {columns}, s.score as published_score, s.band as published_band
                from features.company_features f join scoring.company_scores s using (siren)
                order by siren"""
        ).df()
    assert len(rows) > 1000
    predicted = model.predict(rows[names])
    assert predicted["score"].tolist() == rows["published_score"].tolist()
    assert predicted["band"].tolist() == rows["published_band"].tolist()


def test_model_asset_links_its_mlflow_run_and_version(e2e_run):
    (event,) = [
        m
        for m in e2e_run.result.asset_materializations_for_node("opportunity_model")
        if m.asset_key.to_user_string() == "model/opportunity_model"
    ]
    metadata = event.metadata
    version = metadata["model_version"].value
    assert metadata["decision"].value == f"retrained v{version} (first model) and promoted: no champion yet"
    assert metadata["mlflow_run"].url.endswith(f"/runs/{metadata['run_id'].value}")
    assert metadata["mlflow_model_version"].url == (
        f"http://127.0.0.1:5000/#/models/{REGISTERED_MODEL_NAME}/versions/{version}"
    )
    assert "data:image/png;base64," in metadata["plot_calibration_curve"].value
    assert "data:image/png;base64," in metadata["plot_gains_lift"].value
