"""Scoring assets end to end on a tmp data root (tmp MLflow champion), and the atomic serving publish."""

from __future__ import annotations

import datetime as dt
import threading

import dagster as dg
import duckdb
import mlflow
import polars as pl
import pytest

from ose_assets.model.served_model import CHAMPION_ALIAS, SERVED_MODEL_ARTIFACT, ServedModel
from ose_assets.resources import build_resources
from ose_assets.scoring import assets as scoring_assets
from ose_assets.scoring.history import append_history
from ose_assets.scoring.publish import SIREN_INDEXES, publish_serving_copy
from ose_assets.scoring.ranking import build_top_opportunities
from ose_assets.scoring.scores import score_companies
from ose_assets.settings import OSESettings
from ose_assets_tests.test_scoring import (
    AS_OF,
    make_features,
    rules_model,
    signal,
    write_warehouse,
    xgb_model,
)

SERVING_TABLES = {
    "company_scores",
    "score_reasons",
    "top_opportunities",
    "score_history",
    "company_features",
    "signal_evidence",
    "served_model",
    "score_responses",
    "name_tokens",
}


def register_champion(mlflow_resource, model: ServedModel) -> str:
    """Log the served model as a run artifact, register it and point the 'champion' alias at it."""
    experiment_id = mlflow_resource.configure()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text(model.to_bytes().decode(), SERVED_MODEL_ARTIFACT)
    client = mlflow_resource.client()
    name = mlflow_resource.registered_model_name
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}", run_id=run.info.run_id)
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
    return version.version


def scoring_run(con, model, as_of_shift: int = 0) -> None:
    """Score, rank and append history: the warehouse state a publish reads."""
    if as_of_shift:
        con.execute(f"update features.company_features set as_of_date = as_of_date + {as_of_shift}")
    score_companies(con, model, exact_top_n=10)
    build_top_opportunities(con)
    append_history(con)


def serving_snapshot(con) -> tuple:
    return con.execute(
        """select (select model_version from served_model), (select count(*) from company_scores),
            (select sum(score) from company_scores), (select min(model_version) from company_scores),
            (select max(model_version) from company_scores),
            (select count(distinct as_of_date) from score_history)"""
    ).fetchone()


@pytest.fixture
def warehouse(tmp_path):
    features = make_features(120, seed=2)
    con = write_warehouse(tmp_path / "ose.duckdb", features)
    yield con, features
    con.close()


def test_reader_holding_the_old_serving_file_keeps_a_consistent_view(tmp_path, warehouse):
    con, features = warehouse
    serving_path = tmp_path / "serving" / "ose_serving.duckdb"
    scoring_run(con, rules_model(version="1"))
    counts = publish_serving_copy(con, serving_path, rules_model().feature_names)
    assert set(counts) == SERVING_TABLES and counts["company_scores"] == 120 and counts["served_model"] == 1
    exact = con.execute("select count(*) from scoring.company_scores where explanation_method = 'exact'")
    assert counts["score_responses"] == exact.fetchone()[0] < 120  # the API's stored GET /score bodies
    reader = duckdb.connect(str(serving_path), read_only=True)
    before = serving_snapshot(reader)
    assert before[0] == "1" and before[1] == 120

    scoring_run(con, xgb_model(features, version="2"), as_of_shift=31)
    publish_serving_copy(con, serving_path, rules_model().feature_names)
    assert serving_snapshot(reader) == before  # the old file, whole, under the open connection
    reader.close()

    fresh = duckdb.connect(str(serving_path), read_only=True)
    after = serving_snapshot(fresh)
    assert after[0] == after[3] == after[4] == "2" and after[5] == 2
    model = ServedModel.from_bytes(fresh.execute("select model_bytes from served_model").fetchone()[0])
    assert model.kind == "xgboost"
    # The physical design the API's point lookups rely on: an index on siren per per-company table.
    indexes = fresh.execute("select table_name, is_unique from duckdb_indexes() order by 1").fetchall()
    assert indexes == sorted(SIREN_INDEXES.items())
    assert fresh.execute("select siren from company_features").fetchall() == sorted(
        fresh.execute("select siren from company_features").fetchall()
    )
    # company_scores in rank order, the ineligible last: a ranking page reads its first row groups only.
    ranked = fresh.execute("select rank, siren from company_scores").fetchall()
    assert ranked == sorted(ranked, key=lambda row: (row[0] is None, row[0] or 0, row[1]))
    # The pages' name index: every word of every ranked company's normalised name.
    words = fresh.execute(
        "select count(*) = count(distinct (token, siren)) and min(length(token)) > 0 from name_tokens"
    ).fetchone()[0]
    tokens = fresh.execute(
        "select count(distinct siren) from name_tokens where siren in "
        "(select siren from company_scores where is_eligible and rank is not null)"
    ).fetchone()[0]
    assert words and tokens == fresh.execute("select count(rank) from company_scores").fetchone()[0]
    fresh.close()
    assert sorted(p.name for p in serving_path.parent.iterdir()) == ["ose_serving.duckdb"]  # no temp left


def test_readers_opening_during_publishes_always_see_one_version(tmp_path, warehouse):
    con, features = warehouse
    serving_path = tmp_path / "serving" / "ose_serving.duckdb"
    names = rules_model().feature_names
    scoring_run(con, rules_model(version="1"))
    publish_serving_copy(con, serving_path, names)
    seen, errors, done = set(), [], threading.Event()

    def read_loop():
        while not done.is_set():
            try:
                reader = duckdb.connect(str(serving_path), read_only=True)
                version, rows, _, low, high, _ = serving_snapshot(reader)
                reader.close()
                assert version == low == high and rows == 120, (version, low, high, rows)
                seen.add(version)
            except Exception as error:  # noqa: BLE001  (collected and asserted below)
                errors.append(repr(error))

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for version in ("2", "3", "4"):
            scoring_run(con, rules_model(version=version), as_of_shift=1)
            publish_serving_copy(con, serving_path, names)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert seen <= {"1", "2", "3", "4"} and len(seen) >= 1


def materialize(settings: OSESettings, as_of: str | None = None) -> dg.ExecuteInProcessResult:
    assets = [
        scoring_assets.company_scores,
        scoring_assets.top_opportunities,
        scoring_assets.score_history,
        scoring_assets.serving_copy,
    ]
    checks = dg.load_asset_checks_from_modules([scoring_assets])
    run_config = {"ops": {"scoring__company_scores": {"config": {"as_of": as_of}}}} if as_of else None
    return dg.materialize(
        [*assets, *checks], resources=build_resources(settings), raise_on_error=False, run_config=run_config
    )


def test_materialize_scoring_assets_with_a_registered_champion(tmp_path):
    settings = OSESettings(data_dir=tmp_path)
    resources = build_resources(settings)
    features = make_features(60, seed=4).with_columns(
        has_collective_procedure=pl.int_range(pl.len()) == 3,
        hiring_signals_3m=pl.when(pl.int_range(pl.len()) == 5).then(4).otherwise(pl.col("hiring_signals_3m")),
    )
    siren = features["siren"][5]
    signals = [signal(siren, AS_OF - dt.timedelta(days=d), "hiring", f"ft-{d}") for d in (3, 10, 20, 40)]
    write_warehouse(settings.warehouse_path, features, signals).close()

    no_champion = materialize(settings)
    assert not no_champion.success
    failure = no_champion.get_step_failure_events()[0].step_failure_data.error
    assert "No champion model" in str(failure.message)

    version = register_champion(resources["mlflow"], xgb_model(features))
    first = materialize(settings)
    assert first.success
    checks = first.get_asset_check_evaluations()
    assert len(checks) == 5 and all(check.passed for check in checks), [
        (c.check_name, c.metadata) for c in checks if not c.passed
    ]
    top_metadata = first.asset_materializations_for_node("scoring__top_opportunities")[0].metadata
    assert "data:image/png;base64," in top_metadata["score_distribution"].value
    assert "| rank | siren |" in top_metadata["top_10"].value

    with duckdb.connect(str(settings.serving_path), read_only=True) as serving:
        assert {name for (name,) in serving.execute("show tables").fetchall()} == SERVING_TABLES
        assert serving.execute("select model_version from served_model").fetchone()[0] == str(version)
        scores = serving.execute("select * from company_scores").pl()
        assert scores.height == 60 and scores.filter(siren=features["siren"][3])["is_eligible"][0] is False
        evidence = serving.execute(
            f"select evidence from score_reasons where siren = '{siren}' and feature like 'hiring_signals%'"
        ).fetchall()
        assert any("ft-3" in text for (text,) in evidence)
        overall = serving.execute(
            "select count(*) from top_opportunities where segment = 'overall'"
        ).fetchone()[0]
        assert overall == 10

    again = materialize(settings, as_of=AS_OF.isoformat())  # the same as-of date: history replaced
    assert again.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute(
            "select count(*), count(distinct siren) from scoring.score_history"
        ).fetchone() == (60, 60)

    wrong_day = materialize(settings, as_of="2026-01-31")
    assert not wrong_day.success
    assert "features/company_features" in str(
        wrong_day.get_step_failure_events()[0].step_failure_data.error.message
    )
