"""The training and model assets in one Dagster run on a temporary data root."""

from __future__ import annotations

import dagster as dg
import duckdb

from ose_assets.model import assets as model_assets
from ose_assets.model.served_model import load_champion
from ose_assets.training import assets as training_assets
from ose_assets.warehouse import AS_OF_TAG
from ose_assets_tests.training_fixtures import (
    AS_OF,
    data_root,
    make_normalized,
)


# ---- the Dagster assets ---------------------------------------------------------------------------
def test_materialize_training_set_and_model(tmp_path):
    settings, resources = data_root(tmp_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        make_normalized(con, companies=1000)
    result = dg.materialize(
        [
            training_assets.training_set,
            training_assets.training_set_time_split,
            model_assets.opportunity_model,
            model_assets.champion_above_auc_floor,
        ],
        resources=resources,
        tags={AS_OF_TAG: AS_OF.isoformat()},
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.asset_check_key.name for c in checks} == {"training_set_time_split", "champion_above_auc_floor"}
    assert all(c.passed for c in checks)
    training_metadata = result.asset_materializations_for_node("training__training_set")[0].metadata
    assert training_metadata["test_snapshots"].value.startswith("2025-01-31 .. 2025-03-31")
    model_events = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("opportunity_model")
    }
    metadata = model_events["model/opportunity_model"]
    assert metadata["model_kind"].value == "xgboost" and metadata["promoted"].value is True
    assert "data:image/png;base64," in metadata["plot_calibration_curve"].value
    assert "data:image/png;base64," in metadata["model_card"].value
    assert model_events["model/model_versions"]["dagster/row_count"].value == 1
    assert load_champion(resources["mlflow"]).version == metadata["model_version"].value
    assert metadata["decision"].value.startswith("retrained v1 (first model) and promoted")
    assert metadata["mlflow_model_version"].url.endswith("/#/models/ose-opportunity-model/versions/1")

    # A second full refresh on the same inputs keeps the champion; `ose run --retrain` (its run tag)
    # trains a new version anyway.
    def model_metadata(tags):
        result = dg.materialize(
            [training_assets.training_set, model_assets.opportunity_model],
            resources=resources,
            tags={AS_OF_TAG: AS_OF.isoformat(), **tags},
        )
        assert result.success
        (event,) = [
            m
            for m in result.asset_materializations_for_node("opportunity_model")
            if m.asset_key == model_assets.OPPORTUNITY_MODEL
        ]
        return event.metadata

    kept = model_metadata({})
    assert kept["decision"].value == "training inputs unchanged since v1, champion kept"
    assert (kept["model_version"].value, kept["retrained"].value) == ("1", False)
    assert kept["mlflow_run"].url == metadata["mlflow_run"].url
    assert "data:image/png;base64," in kept["plot_calibration_curve"].value
    forced = model_metadata({model_assets.RETRAIN_TAG: "true"})
    assert forced["model_version"].value == "2" and forced["retrained"].value is True
    assert forced["decision"].value.startswith("retrained v2 (retrain requested, inputs unchanged)")
