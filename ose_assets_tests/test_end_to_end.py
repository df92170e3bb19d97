"""The whole graph on a small generated dataset in a temporary data root."""

import datetime as dt

import duckdb
import pytest

from ose_assets.resources import REGISTERED_MODEL_NAME

pytestmark = pytest.mark.slow

TABLES = [
    "raw.manifest",
    "normalized.companies",
    "normalized.signals",
    "normalized.articles",
    "normalized.outcomes",
    "features.company_features",
    "training.training_set",
    "scoring.company_scores",
    "scoring.top_opportunities",
    "scoring.score_history",
]


def test_full_refresh_succeeds_with_every_check(e2e_run):
    result = e2e_run.result
    assert result.success
    failed_checks = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity.value == "ERROR"
    ]
    assert not failed_checks, [(e.asset_check_key.to_user_string(), e.metadata) for e in failed_checks]


def test_every_table_has_rows(e2e_run):
    with duckdb.connect(str(e2e_run.settings.warehouse_path), read_only=True) as con:
        for table in TABLES:
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
        # normalized.quarantine exists (rows only when the inbox has bad records, which the demo data has).
        assert con.execute("select count(*) from normalized.quarantine").fetchone()[0] > 0


def test_scores_and_top_ten(e2e_run):
    with duckdb.connect(str(e2e_run.settings.warehouse_path), read_only=True) as con:
        low, high, as_of = con.execute(
            "select min(score), max(score), any_value(as_of_date) from scoring.company_scores"
        ).fetchone()
        top = con.execute(
            "select score from scoring.top_opportunities where segment = 'overall' order by segment_rank"
        ).fetchall()
    assert 0 <= low <= high <= 100
    assert as_of == dt.date.fromisoformat(e2e_run.as_of)
    scores = [row[0] for row in top]
    assert len(scores) == 10
    assert scores == sorted(scores, reverse=True)


def test_model_registered_and_serving_copy_published(e2e_run):
    client = e2e_run.mlflow.client()
    versions = client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'")
    assert versions
    champion = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, "champion")
    with duckdb.connect(str(e2e_run.settings.serving_path), read_only=True) as con:
        served_version = con.execute("select model_version from served_model").fetchone()[0]
        assert con.execute("select count(*) from company_scores").fetchone()[0] > 0
    assert str(served_version) == str(champion.version)
