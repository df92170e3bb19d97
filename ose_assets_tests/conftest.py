"""Shared fixtures. The end-to-end run is session-scoped: one generated dataset, one full refresh."""

from __future__ import annotations

import dataclasses

import dagster as dg
import duckdb
import pytest

from ose_assets.settings import OSESettings, today_paris

E2E_COMPANIES = 3_000


@dataclasses.dataclass
class EndToEndRun:
    settings: OSESettings
    as_of: str
    result: dg.ExecuteInProcessResult
    mlflow: object


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory) -> EndToEndRun:
    """Generate a small demo dataset in a temporary data root and run the full refresh job on it."""
    from ose_assets.definitions import build_definitions
    from ose_assets.demo.generate import generate_demo_data
    from ose_assets.warehouse import AS_OF_TAG

    settings = OSESettings(data_dir=tmp_path_factory.mktemp("ose_e2e"))
    generate_demo_data(settings.data_dir, companies=E2E_COMPANIES, seed=11)
    definitions = build_definitions(settings)
    as_of = today_paris().isoformat()
    with dg.instance_for_test() as instance:
        result = definitions.resolve_job_def("ose_full_refresh").execute_in_process(
            instance=instance, tags={AS_OF_TAG: as_of}, raise_on_error=False
        )
    return EndToEndRun(settings, as_of, result, definitions.resources["mlflow"])


@pytest.fixture
def env(tmp_path):
    """(connection to a fresh warehouse file, inbox with one folder per source) for landing tests."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    inbox = tmp_path / "inbox"
    for source in ("companies", "signals", "bodacc", "articles", "outcomes"):
        (inbox / source).mkdir(parents=True)
    yield con, inbox
    con.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A synthetic serving copy (settings, its company_scores frame), one per test module."""
    from ose_assets.benchmarks.synthetic_serving import build_serving_copy
    from ose_assets_tests.api_server import SERVED_COMPANIES

    settings = OSESettings(data_dir=tmp_path_factory.mktemp("api_data"))
    scores = build_serving_copy(settings.serving_path, companies=SERVED_COMPANIES, model_version="1")
    return settings, scores


@pytest.fixture(scope="module")
def base_url(served):
    """A live uvicorn server over `served`; its base URL."""
    from ose_assets_tests.api_server import live_server

    with live_server(served[0]) as url:
        yield url
