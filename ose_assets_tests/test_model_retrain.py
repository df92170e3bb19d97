"""Retrain only on new evidence, and a copied data directory that never touches the original."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import mlflow
import pytest

from ose_assets.features.catalog import model_feature_names
from ose_assets.model.pipeline import MODEL_VERSIONS_TABLE, train_and_publish
from ose_assets.model.served_model import load_champion
from ose_assets.resources import REGISTERED_MODEL_NAME
from ose_assets_tests.training_fixtures import AS_OF, TRAINED_AT, build_training, champion_version, data_root


def _runs(resources) -> int:
    experiment_id = resources["mlflow"].configure()
    return len(mlflow.search_runs([experiment_id], output_format="list"))


def _versions(resources) -> list[int]:
    client = resources["mlflow"].client()
    return sorted(int(v.version) for v in client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Version 1 trained on a small synthetic warehouse (the tests below run in file order)."""
    settings, resources = data_root(tmp_path_factory.mktemp("retrain") / "D")
    with duckdb.connect(str(settings.warehouse_path)) as con:
        build_training(con, companies=800)
        first = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT)
    return settings, resources, first


def test_champion_pyfunc_predicts_the_published_score(trained):
    settings, resources, outcome = trained
    with duckdb.connect(str(settings.warehouse_path)) as con:
        rows = con.execute("select * from training.training_set where split = 'test' order by siren").pl()
    resources["mlflow"].configure()
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}@champion")
    predicted = model.predict(rows.select(model_feature_names()).to_pandas())
    published = load_champion(resources["mlflow"]).published_scores(rows)
    assert outcome.served.version == champion_version(resources)
    assert predicted["score"].tolist() == published["score"].to_list()
    assert predicted["band"].tolist() == published["band"].to_list()
    assert predicted["score"].between(0, 100).all()


def test_copied_data_directory_never_touches_the_original(trained, tmp_path):
    settings, _, first = trained
    original, copy = tmp_path / "D", tmp_path / "D2"
    shutil.copytree(settings.data_dir, original, symlinks=True)  # a data root of its own, run once
    shutil.copytree(original, copy, symlinks=True)  # cp -a D D2
    shutil.rmtree(original)  # nothing may be read from (or written into) D any more

    copied_settings, copied = data_root(copy)
    champion = load_champion(copied["mlflow"])
    assert champion.version == first.served.version
    with duckdb.connect(str(copied_settings.warehouse_path)) as con:
        frame = con.execute("select * from training.training_set where split = 'test'").pl()
        assert champion.published_scores(frame).equals(first.served.published_scores(frame))
        second = train_and_publish(
            con, copied["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(days=1), retrain=True
        )
    assert second.served.version == "2"
    assert not original.exists()
    client = copied["mlflow"].client()
    run = client.get_run(second.served.run_id)
    assert run.info.artifact_uri.startswith(copied_settings.mlflow_artifact_uri)
    for version in client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'"):
        assert f"{original}/" not in (version.source or "") + str(
            client.get_run(version.run_id).info.artifact_uri
        )


def test_unchanged_inputs_keep_the_champion_and_retrain_forces_a_version(trained):
    settings, resources, first = trained
    with duckdb.connect(str(settings.warehouse_path)) as con:
        assert first.retrained and first.decision.startswith("retrained v1 (first model) and promoted")

        # Same training set, features and config: no MLflow run, no version, no model_versions row.
        kept = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(days=1))
        assert kept.decision == "training inputs unchanged since v1, champion kept"
        assert not kept.retrained and kept.served.version == "1" and kept.champion_version == "1"
        assert kept.metrics["roc_auc"] == first.metrics["roc_auc"]
        assert set(kept.plots) == set(first.plots) and "data:image/png;base64," in kept.card_markdown
        assert (_runs(resources), _versions(resources)) == (1, [1])
        assert con.execute(f"select count(*) from {MODEL_VERSIONS_TABLE}").fetchone()[0] == 1

        # `ose run --retrain`: a new version, named as such.
        forced = train_and_publish(
            con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(days=2), retrain=True
        )
        assert forced.retrained and forced.served.version == "2"
        assert forced.decision.startswith("retrained v2 (retrain requested, inputs unchanged)")
        assert (_runs(resources), _versions(resources)) == (2, [1, 2])

        # New evidence (other outcomes): trained again without asking.
        build_training(con, companies=800, seed=3)
        fresh = train_and_publish(con, resources["mlflow"], AS_OF, TRAINED_AT + dt.timedelta(days=3))
        assert fresh.retrained and fresh.served.version == "3"
        assert "(new training data)" in fresh.decision
        assert _versions(resources) == [1, 2, 3]
