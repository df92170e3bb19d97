"""Quality on generated demo data: ingestion, training set and model, compared with the generator's oracle.

The issue's bar (20,000 companies: test ROC-AUC within 0.03 of the oracle, ECE <= 0.03) is measured
outside the test suite (see the training report): about 0.01 there. This small dataset has fewer
positives; its gap measured 0.020-0.025 over seeds 1, 2 and 5, hence a bound of 0.05.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from ose_assets.model import evaluate as ev
from ose_assets.model.served_model import load_champion
from ose_assets.resources import build_resources
from ose_assets.settings import OSESettings, model_config
from ose_assets.warehouse import AS_OF_TAG

pytestmark = pytest.mark.slow

DEMO_COMPANIES = 4000
DEMO_AS_OF = dt.date(2026, 6, 30)
MAX_AUC_GAP = 0.05
MAX_ECE = 0.03


def test_demo_model_close_to_oracle_and_calibrated(tmp_path):
    from ose_assets.demo.generate import generate_demo_data
    from ose_assets.demo.truth import oracle_probability
    from ose_assets.ingestion import assets as ingestion
    from ose_assets.model import assets as model_assets
    from ose_assets.training import assets as training_assets

    settings = OSESettings(data_dir=tmp_path)
    generate_demo_data(tmp_path, companies=DEMO_COMPANIES, seed=5, end_date=DEMO_AS_OF)
    resources = build_resources(settings)
    result = dg.materialize(
        [
            *dg.load_assets_from_modules([ingestion]),
            training_assets.training_set,
            model_assets.opportunity_model,
            model_assets.champion_above_auc_floor,
        ],
        resources=resources,
        tags={AS_OF_TAG: DEMO_AS_OF.isoformat()},
    )
    assert result.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        test = con.execute(
            "select * from training.training_set where split = 'test' order by snapshot_date, siren"
        ).pl()
    champion = load_champion(resources["mlflow"])
    assert champion.kind == "xgboost"
    bins = int(model_config()["training"]["ece_bins"])
    scored = ev.score_frame(champion, test)
    model = ev.classification_metrics(scored, bins)
    oracle_p = oracle_probability(settings.truth_dir, test.select("siren", "snapshot_date"))
    oracle = ev.classification_metrics(scored.with_columns(pl.Series("probability", oracle_p)), bins)
    assert oracle["roc_auc"] - model["roc_auc"] <= MAX_AUC_GAP, (model, oracle)
    assert model["ece"] <= MAX_ECE, model
    assert model["top_decile_lift"] > 1.5, model
