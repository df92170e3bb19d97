"""Normalized tables are rebuilt only when their inputs changed (ose_assets.ingestion.rebuild)."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pytest

from ose_assets.ingestion import articles, companies, outcomes, rebuild, signals
from ose_assets.ingestion import assets as ingestion_assets
from ose_assets.resources import build_resources
from ose_assets.settings import REPO_ROOT, OSESettings, model_config
from ose_assets_tests.test_ingestion import S2, jsonl
from ose_assets_tests.test_ingestion_assets import CHECKS, materialize, write_inbox

TABLES = {
    "companies": companies.TABLE,
    "signals": signals.TABLE,
    "articles": articles.ARTICLES_TABLE,
    "article_companies": articles.LINKS_TABLE,
    "outcomes": outcomes.TABLE,
}


def _normalized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Metadata (and data version) of each normalized table materialized by the run, by table name."""
    return {
        event.asset_key.path[-1]: {
            **event.materialization.metadata,
            "data_version": event.materialization.tags.get("dagster/data_version"),
        }
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[0] == "normalized" and event.asset_key.path[-1] in TABLES
    }


def _rebuilt(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {table: meta["rebuilt"].value for table, meta in _normalized(result).items()}


def _differences(path, other_path) -> dict[str, int]:
    """Rows of each normalized table in one warehouse and not the other (both ways, duplicates counted)."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute(f"attach '{other_path}' as other (read_only)")
        return {
            table: con.execute(
                f"""select (select count(*) from (from {table} except all from other.{table}))
                    + (select count(*) from (from other.{table} except all from {table}))"""
            ).fetchone()[0]
            for table in TABLES.values()
        }


def _fingerprint_rows(settings: OSESettings) -> dict[str, str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return dict(
            con.execute(f"select table_name, inputs_fingerprint from {rebuild.FINGERPRINT_TABLE}").fetchall()
        )


@pytest.fixture
def reference_dir(tmp_path, monkeypatch):
    """A copy of data/reference the pipeline reads (OSE_REFERENCE_DIR), free to edit."""
    target = tmp_path / "reference"
    shutil.copytree(REPO_ROOT / "data" / "reference", target)
    monkeypatch.setenv("OSE_REFERENCE_DIR", str(target))
    return target


def test_unchanged_inputs_reuse_every_normalized_table(tmp_path):
    settings = OSESettings(data_dir=tmp_path / "root")
    write_inbox(settings)
    first = materialize(settings)
    assert first.success and _rebuilt(first) == dict.fromkeys(TABLES, True)
    shutil.copy(settings.warehouse_path, tmp_path / "first.duckdb")

    second = materialize(settings)
    assert second.success and _rebuilt(second) == dict.fromkeys(TABLES, False)
    assert _differences(settings.warehouse_path, tmp_path / "first.duckdb") == dict.fromkeys(
        TABLES.values(), 0
    )
    before, after = _normalized(first), _normalized(second)
    for table in TABLES:
        # Same metadata keys and values (row counts, build counts, schema, preview, fingerprint, built_at).
        assert {k: v for k, v in after[table].items() if k != "rebuilt"} == {
            k: v for k, v in before[table].items() if k not in ("rebuilt", "rebuild_reason")
        }, table
        assert before[table]["rebuild_reason"].value == "first build"
        assert after[table]["data_version"] == after[table]["inputs_fingerprint"].value
    assert after["signals"]["signals"].value == 3 and after["article_companies"]["links"].value == 1
    # The checks read the tables, reused or not.
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in first.get_asset_check_evaluations()
    }
    assert {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in second.get_asset_check_evaluations()
    } == checks
    assert checks[("normalized/companies", "companies_unique_siren")]


def test_a_new_signals_file_rebuilds_signals_only_and_as_from_scratch(tmp_path):
    settings = OSESettings(data_dir=tmp_path / "root")
    write_inbox(settings)
    assert materialize(settings).success
    (settings.inbox_dir / "signals" / "more.jsonl").write_text(
        jsonl({"siren": S2, "date": "2025-02-03", "type": "hiring", "count": 2, "source": "france_travail"}),
        encoding="utf-8",
    )
    second = materialize(settings)
    assert second.success
    assert _rebuilt(second) == {**dict.fromkeys(TABLES, False), "signals": True}
    meta = _normalized(second)["signals"]
    assert meta["rebuild_reason"].value == "table:raw.signal_records"
    assert meta["signals"].value == meta["dagster/row_count"].value == 4

    # The same tables as every build run from scratch on the same raw tables.
    scratch = tmp_path / "scratch.duckdb"
    shutil.copy(settings.warehouse_path, scratch)
    with duckdb.connect(str(scratch)) as con:
        con.execute(f"drop table {rebuild.FINGERPRINT_TABLE}")
        for table in TABLES.values():
            con.execute(f"drop table {table}")
        companies.build_companies(con, settings.reference_dir)
        signals.build_signals(con)
        articles.build_articles(con)
        outcomes.build_outcomes(con)
    assert _differences(settings.warehouse_path, scratch) == dict.fromkeys(TABLES.values(), 0)


def test_a_failed_rebuild_leaves_no_fingerprint_and_the_next_run_rebuilds(tmp_path, reference_dir):
    settings = OSESettings(data_dir=tmp_path / "root")
    write_inbox(settings)
    assert materialize(settings).success
    assert set(_fingerprint_rows(settings)) == set(TABLES.values())

    departements = reference_dir / "cog_departements.csv"
    departements.rename(reference_dir / "moved.csv")  # the companies build now fails reading it
    failed = dg.materialize(
        dg.load_assets_from_modules([ingestion_assets]) + list(CHECKS),
        resources=build_resources(settings),
        raise_on_error=False,
    )
    assert not failed.success
    assert "normalized__companies" in {e.step_key for e in failed.get_step_failure_events()}
    assert set(_fingerprint_rows(settings)) == set(TABLES.values()) - {companies.TABLE}

    (reference_dir / "moved.csv").rename(departements)
    third = materialize(settings)
    assert third.success
    assert _rebuilt(third) == {**dict.fromkeys(TABLES, False), "companies": True}
    assert _normalized(third)["companies"]["rebuild_reason"].value == "first build"


def test_config_and_reference_changes_rebuild_what_reads_them(tmp_path, reference_dir, monkeypatch):
    settings = OSESettings(data_dir=tmp_path / "root")
    write_inbox(settings)
    assert materialize(settings).success

    # A reference file: companies rebuilt; article links read only SIRENs and names, unchanged.
    bands = reference_dir / "tranches_effectifs.csv"
    bands.write_text(bands.read_text(encoding="utf-8").replace("salarié", "salarie"), encoding="utf-8")
    result = materialize(settings)
    assert _rebuilt(result) == {**dict.fromkeys(TABLES, False), "companies": True}
    assert _normalized(result)["companies"]["rebuild_reason"].value == "file:tranches_effectifs.csv"

    # The ingestion section (article matching): articles only.
    monkeypatch.setitem(model_config()["ingestion"], "fuzzy_min_score", 99)
    result = materialize(settings)
    assert _rebuilt(result) == {
        **dict.fromkeys(TABLES, False),
        "articles": True,
        "article_companies": True,
    }
    assert _normalized(result)["articles"]["rebuild_reason"].value == "config:ingestion"

    # The signal vocabulary: signals and articles (their polarity). The build queries took the
    # vocabulary in at import, so only the decision is checked here.
    monkeypatch.setitem(model_config()["signal_types"]["hiring"], "polarity", 0)
    result = materialize(settings)
    assert _rebuilt(result) == {**dict.fromkeys(TABLES, True), "companies": False, "outcomes": False}
    assert _normalized(result)["signals"]["rebuild_reason"].value == "config:signal_types"


def test_build_or_reuse_without_dagster(tmp_path):
    """The module on its own: a run that raises records nothing; a missing output table rebuilds."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))

    def boom() -> dict:
        raise RuntimeError("midway")

    with pytest.raises(RuntimeError):
        rebuild.build_or_reuse(con, rebuild.OUTCOMES, boom)
    assert con.execute(f"select count(*) from {rebuild.FINGERPRINT_TABLE}").fetchone()[0] == 0

    def run() -> dict:
        return {"outcomes": outcomes.build_outcomes(con)}

    first = rebuild.build_or_reuse(con, rebuild.OUTCOMES, run)
    again = rebuild.build_or_reuse(con, rebuild.OUTCOMES, run)
    assert first.rebuilt and not again.rebuilt
    assert (again.fingerprint, again.built_at, again.counts) == (
        first.fingerprint,
        first.built_at,
        {"outcomes": 0},
    )
    con.execute(f"drop table {outcomes.TABLE}")
    missing = rebuild.build_or_reuse(con, rebuild.OUTCOMES, run)
    assert missing.rebuilt and missing.reason == "output table changed or missing"
    assert missing.fingerprint == first.fingerprint
    # The code of a build: its module and the ingestion modules it imports.
    names = {m.__name__.rsplit(".", 1)[-1] for m in rebuild.code_modules(signals)}
    assert {"signals", "bodacc", "vocabulary", "labels", "spec", "sql"} <= names
    con.close()
