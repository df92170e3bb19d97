"""The raw + normalized assets materialized with Dagster on a temporary data root."""

from __future__ import annotations

import dagster as dg
import duckdb

from ose_assets.ingestion import assets as ingestion_assets
from ose_assets.resources import build_resources
from ose_assets.settings import OSESettings
from ose_assets_tests.test_ingestion import S1, S2, S3, UL_HEADER, jsonl, make_siren

CHECKS = dg.load_asset_checks_from_modules([ingestion_assets])


def materialize(settings: OSESettings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        dg.load_assets_from_modules([ingestion_assets]) + list(CHECKS),
        resources=build_resources(settings),
    )


def write_inbox(settings: OSESettings) -> None:
    """One small file per source (companies, signals, BODACC, articles, outcomes) in the inbox."""
    settings.ensure_dirs()
    inbox = settings.inbox_dir
    (inbox / "companies" / "StockUniteLegale_utf8.csv").write_text(
        UL_HEADER + "\n"
        f"{S1},O,2010-01-01,11,2025-01-01T10:00:00,PME,2010-01-01,A,ALPHA,5710,62.01Z,NAFRev2,00012,x\n"
        f"{S2},O,2010-01-01,12,2025-01-01T10:00:00,PME,2010-01-01,A,BETA,5499,4687Z,NAFRev2,00012,x\n",
        encoding="utf-8",
    )
    (inbox / "signals" / "signals.jsonl").write_text(
        jsonl(
            {
                "siren": S1,
                "date": "2025-01-05",
                "type": "levee_de_fonds",
                "amount": 2e6,
                "source": "press_release",
            },
            {"siren": S3, "date": "2025-01-06", "type": "hiring", "count": 4, "source": "france_travail"},
            {"siren": "123", "date": "2025-01-06", "type": "hiring"},
        ),
        encoding="utf-8",
    )
    (inbox / "bodacc" / "bodacc.jsonl").write_text(
        jsonl(
            {
                "id": "A1",
                "dateparution": "2025-02-01",
                "typeavis": "annonce",
                "familleavis": "dpc",
                "registre": [S2],
            }
        ),
        encoding="utf-8",
    )
    (inbox / "articles" / "articles.jsonl").write_text(
        jsonl(
            {
                "id": "x1",
                "url": "https://ex.fr/1",
                "published_at": "2025-02-01T09:00:00",
                "title": "Alpha recrute",
                "text": "Alpha ouvre 10 postes",
                "source": "presse",
            }
        ),
        encoding="utf-8",
    )
    (inbox / "outcomes" / "crm_outcomes.csv").write_text(
        f"opportunity_id,siren,opportunity_date,closed_date,status\no1,{S1},2025-01-01,2025-02-01,won\n"
        f"o2,{make_siren(99999999)},2025-01-01,,open\n",
        encoding="utf-8",
    )


def test_materialize_raw_and_normalized_twice_is_idempotent(tmp_path):
    settings = OSESettings(data_dir=tmp_path)
    write_inbox(settings)
    first = materialize(settings)
    assert first.success
    checks = {(e.asset_key.path[-1], e.check_name): e.passed for e in first.get_asset_check_evaluations()}
    assert checks[("manifest", "manifest_reconciles")]
    assert checks[("companies", "companies_unique_siren")] and checks[("companies", "no_null_keys")]
    assert not checks[("signals", "unknown_sirens")]  # S3 is not a known company: a warning
    assert not checks[("outcomes", "unknown_sirens")]
    assert not checks[("quarantine", "quarantine_rate")]  # 1 of 9 records quarantined > 5 %
    manifest_meta = next(
        m for m in first.get_asset_materialization_events() if m.asset_key.path == ["raw", "manifest"]
    ).materialization.metadata
    assert manifest_meta["records_read"].value == 9 and manifest_meta["records_quarantined"].value == 1
    assert "bad_siren_length" in manifest_meta["quarantine_by_reason"].value

    def counts():
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            return {
                t: con.execute(f"select count(*) from normalized.{t}").fetchone()[0]
                for t in ("companies", "signals", "articles", "article_companies", "outcomes", "quarantine")
            }

    before = counts()
    assert before == {
        "companies": 2,
        "signals": 3,
        "articles": 1,
        "article_companies": 1,
        "outcomes": 2,
        "quarantine": 1,
    }
    assert materialize(settings).success
    assert counts() == before
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from raw.manifest").fetchone()[0] == 5
        row = con.execute(
            "select signal_type, signal_family, polarity, magnitude from normalized.signals "
            "where siren = ? and source = 'press_release'",
            [S1],
        ).fetchone()
    assert row == ("fundraising", "funding", 1, 2e6)
