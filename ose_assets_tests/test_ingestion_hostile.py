"""Hostile inbox files (issue 15): each is rejected as a file or its record quarantined with a reason,
the other files still land, earlier data stays intact and every landed file reconciles. Landing
functions are called directly on a real DuckDB file; one Dagster run at the end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
import time

import dagster as dg
import duckdb
import pytest

from ose_assets.ingestion import articles, companies, landing, signals
from ose_assets.ingestion import assets as ingestion_assets
from ose_assets.ingestion.labels import label_key, label_key_sql
from ose_assets.ingestion.memory import max_line_bytes
from ose_assets.ingestion.preflight import Limits
from ose_assets.ingestion.reference import naf_frame
from ose_assets.resources import build_resources
from ose_assets.settings import OSESettings
from ose_assets_tests.test_ingestion import (
    BODACC_BASE,
    S1,
    S2,
    S3,
    S4,
    TODAY,
    UL_HEADER,
    _companies_for_matching,
    jsonl,
    land,
    reasons,
    signal,
    write,
)

SOURCES = ("companies", "signals", "bodacc", "articles", "outcomes")
GOOD = jsonl(signal(S1), signal(S2, type_="hiring"))


def manifest(con) -> list[tuple]:
    return con.execute(
        "select inbox_path, status, reason_code, records_read from raw.manifest "
        "order by ingested_at, inbox_path"
    ).fetchall()


def signal_rows(con) -> int:
    return con.execute("select count(*) from raw.signal_records").fetchone()[0]


# (file name, content, reason code): each lands in inbox/signals between two good files.
UNREADABLE = [
    ("empty.jsonl", b"", "empty_file"),
    ("blank.jsonl", b"  \n\n\t \n", "empty_file"),
    ("bom_only.csv", b"\xef\xbb\xbf", "empty_file"),
    ("bom_only.jsonl", b"\xef\xbb\xbf\n", "empty_file"),
    ("nul_header.csv", b"siren,da\x00te,type\n" + f"{S3},2025-01-01,hiring\n".encode(), "binary_content"),
    ("garbage.csv", bytes(range(256)) * 40, "binary_content"),
    ("garbage.jsonl", bytes(range(255, -1, -1)) * 40, "binary_content"),
    ("utf16.csv", "siren,date,type\n".encode("utf-16"), "binary_content"),
    ("broken.json", b'{"results": [{"siren": "1"', "unparsable_file"),
    ("zero.parquet", b"", "empty_file"),
    ("truncated.parquet", b"PAR1" + b"\x15\x00" * 50, "bad_parquet"),
    ("not_parquet.parquet", b"siren,date\n1,2\n", "bad_parquet"),
    ("wrong_header.csv", b"foo;bar\n1;2\n3;4\n", "no_known_columns"),
]


@pytest.mark.parametrize(("name", "content", "reason"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_unreadable_file_is_rejected_and_the_other_files_land(env, name, content, reason):
    con, inbox = env
    write(inbox, "signals", "a_earlier.jsonl", GOOD)
    land(con, inbox)
    write(inbox, "signals", name, content)
    write(inbox, "signals", "z_later.jsonl", jsonl(signal(S3)))
    results = {r.file_path.rsplit("/", 1)[1]: r for r in land(con, inbox)}
    assert (results[name].status, results[name].reason_code) == ("rejected", reason)
    assert results[name].reason_detail
    assert results["z_later.jsonl"].records_loaded == 1
    assert signal_rows(con) == 3  # earlier data intact, later file landed, nothing from the bad one
    assert (
        con.execute(
            "select count(*) from raw.quarantine_records where source_file like ?", [f"%/{name}"]
        ).fetchone()[0]
        == 0
    )
    assert landing.rejected_files(con, inbox)["inbox_path"].to_list() == [f"signals/{name}"]
    # The rejected file is not read again, and adds no manifest row, on the next run.
    rows = manifest(con)
    assert land(con, inbox) == [] and manifest(con) == rows


@pytest.mark.parametrize("source", SOURCES)
def test_zero_byte_parquet_is_rejected_in_every_source(env, source):
    con, inbox = env
    write(inbox, "signals", "good.jsonl", GOOD)
    write(inbox, source, "empty.parquet", b"")
    results = {r.source + "/" + r.file_path.rsplit("/", 1)[1]: r for r in land(con, inbox)}
    assert (results[f"{source}/empty.parquet"].status, results[f"{source}/empty.parquet"].reason_code) == (
        "rejected",
        "empty_file",
    )
    assert signal_rows(con) == 2


def test_corrected_file_lands_after_its_rejection(env):
    con, inbox = env
    path = write(inbox, "signals", "feed.jsonl", b"")
    [rejected] = land(con, inbox)
    assert rejected.status == "rejected"
    path.write_text(GOOD, encoding="utf-8")
    [corrected] = land(con, inbox)
    assert (corrected.status, corrected.records_loaded) == ("loaded", 2)
    assert landing.rejected_files(con, inbox).is_empty()


def test_mixed_file_keeps_its_good_records(env):
    con, inbox = env
    write(inbox, "signals", "mixed.jsonl", GOOD + "{broken\n" + jsonl(signal(S3)))
    [result] = land(con, inbox)
    assert (result.status, result.records_loaded, result.records_quarantined) == ("loaded", 3, 1)
    assert reasons(con) == [(3, "broken_json")]


def test_symlinks_are_rejected_and_never_followed(env):
    con, inbox = env
    (inbox / "signals" / "passwd.csv").symlink_to("/etc/passwd")
    (inbox / "signals" / "etc").symlink_to("/etc", target_is_directory=True)
    write(inbox, "signals", "good.jsonl", GOOD)
    results = {r.file_path.rsplit("/", 1)[1]: r for r in land(con, inbox)}
    assert (results["passwd.csv"].status, results["passwd.csv"].reason_code) == ("rejected", "symlink")
    assert (results["etc"].status, results["etc"].reason_code) == ("rejected", "symlink")
    assert results["passwd.csv"].file_hash is None  # never opened
    assert con.execute("select count(*) from raw.quarantine_records").fetchone()[0] == 0
    assert signal_rows(con) == 2


def test_symlinked_source_folder_escaping_the_inbox_is_rejected(env, tmp_path):
    con, inbox = env
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "feed.jsonl").write_text(GOOD, encoding="utf-8")
    (inbox / "bodacc").rmdir()
    (inbox / "bodacc").symlink_to(outside, target_is_directory=True)
    [result] = land(con, inbox)
    assert (result.status, result.reason_code) == ("rejected", "outside_inbox")
    assert result.file_hash is None


def test_fifo_is_rejected_without_blocking(env):
    con, inbox = env
    os.mkfifo(inbox / "signals" / "pipe.jsonl")
    write(inbox, "signals", "z_good.jsonl", GOOD)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(results=land(con, inbox)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "landing blocked on a FIFO"
    statuses = {r.file_path.rsplit("/", 1)[1]: (r.status, r.reason_code) for r in outcome["results"]}
    assert statuses == {"pipe.jsonl": ("rejected", "not_a_regular_file"), "z_good.jsonl": ("loaded", None)}


def test_file_over_the_size_limit_is_rejected_unread_then_lands_under_a_higher_limit(env):
    con, inbox = env
    path = write(inbox, "signals", "big.jsonl", GOOD)
    small = dataclasses.replace(Limits.from_settings(), max_file_bytes=10)
    [result] = landing.land_inbox(con, inbox, TODAY, small)
    assert (result.status, result.reason_code, result.file_hash) == ("rejected", "file_too_large", None)
    assert "OSE_MAX_FILE_SIZE" in result.reason_detail
    os.utime(path, (time.time() + 5, time.time() + 5))  # the operator raised the limit and touched the file
    [result] = landing.land_inbox(con, inbox, TODAY, Limits.from_settings())
    assert (result.status, result.records_loaded) == ("loaded", 2)


def test_over_long_field_quarantines_its_record_with_field_too_long(env):
    con, inbox = env
    limits = Limits.from_settings(OSESettings())
    assert (limits.max_file_bytes, limits.max_field_chars, limits.max_url_chars) == (16 * 1024**3, 4096, 2048)
    huge_url = "https://ex.fr/" + "a" * 200_000
    write(
        inbox,
        "signals",
        "long.jsonl",
        jsonl(
            signal(S1, url=huge_url),
            signal(S2, source="x" * 5000),
            signal(S3, url="https://ex.fr/" + "b" * 2000),
        ),
    )
    write(
        inbox,
        "articles",
        "long.jsonl",
        jsonl({"id": "1", "url": "https://ex.fr/1", "published_at": "2025-06-01", "text": "mot " * 50_000}),
    )
    results = land(con, inbox)
    assert [(r.source, r.records_loaded, r.records_quarantined) for r in results] == [
        ("signals", 1, 2),
        ("articles", 1, 0),
    ]
    rows = con.execute(
        "select record_number, reason_code, reason_detail, length(raw_record) from raw.quarantine_records "
        "order by record_number"
    ).fetchall()
    assert [row[:3] for row in rows] == [
        (1, "field_too_long", f"url: {len(huge_url)} characters > 2048"),
        (2, "field_too_long", "source: 5000 characters > 4096"),
    ]
    assert rows[0][3] < 70_000  # the quarantined copy of a huge record is cut


def test_unmappable_rows_are_quarantined_not_counted_as_duplicates(env):
    con, inbox = env
    write(inbox, "signals", "passwd_copy.csv", open("/etc/passwd", encoding="utf-8").read())
    write(inbox, "signals", "foreign.jsonl", jsonl({"user": "root"}, {"user": "daemon"}, {"user": "root"}))
    results = {r.file_path.rsplit("/", 1)[1]: r for r in land(con, inbox)}
    assert results["passwd_copy.csv"].reason_code == "no_known_columns"
    foreign = results["foreign.jsonl"]
    assert (foreign.records_quarantined, foreign.duplicates_dropped) == (2, 1)  # only the repeated line
    assert {r for _, r in reasons(con)} == {"missing_siren"}


def test_dates_before_1900_are_implausible(env):
    con, inbox = env
    write(inbox, "signals", "s.jsonl", jsonl(signal(S1, date="1850-03-01"), signal(S2, date="1900-01-01")))
    write(
        inbox,
        "outcomes",
        "o.csv",
        f"opportunity_id,siren,opportunity_date,status\n1,{S1},1899-12-31,open\n2,{S2},2024-01-01,open\n",
    )
    write(
        inbox,
        "bodacc",
        "b.jsonl",
        jsonl(
            {**BODACC_BASE, "id": "B1", "dateparution": "0201-04-10", "familleavis": "dpc", "registre": [S1]}
        ),
    )
    write(
        inbox,
        "companies",
        "StockUniteLegale.csv",
        UL_HEADER
        + f"\n{S3},O,1850-01-01,11,2025-01-01,PME,1850-01-01,A,VIEILLE MAISON,5710,62.01Z,NAFRev2,1,x\n",
    )
    land(con, inbox)
    assert con.execute(
        "select source, reason_code, reason_detail from raw.quarantine_records order by source"
    ).fetchall() == [
        ("bodacc", "implausible_date", "dateparution: 0201-04-10"),
        ("outcomes", "implausible_date", "opportunity_date: 1899-12-31"),
        ("signals", "implausible_date", "date: 1850-03-01"),
    ]
    # A company's own dates are not bounded (some real companies are older than 1900).
    assert con.execute("select count(*) from raw.sirene_unite_legale").fetchone()[0] == 1


def test_two_article_files_reusing_ids_never_duplicate_a_key(env, tmp_path):
    con, inbox = env
    _companies_for_matching(con, inbox, tmp_path)

    def article(i, source, title, sirens=None):
        return {
            "id": f"a{i}",
            "url": f"https://{source}.fr/{i}",
            "published_at": "2025-06-01",
            "title": title,
            "source": source,
            **({"sirens": sirens} if sirens else {}),
        }

    write(
        inbox,
        "articles",
        "monde.jsonl",
        jsonl(
            article(1, "lemonde", "Boulangerie Epicea recrute", sirens=[S1]),
            article(2, "lemonde", "Martin Conseil remporte un contrat", sirens=[S2]),
        ),
    )
    write(
        inbox,
        "articles",
        "echos.jsonl",
        jsonl(
            article(1, "lesechos", "Transports Durandeau Logistique lève 5 millions", sirens=[S4]),
            article(2, "lesechos", "Boulangerie Epicea ouvre une usine"),
        ),
    )
    # The same (source, id) delivered again, now without SIRENs: it replaces the first delivery.
    write(inbox, "articles", "monde_v2.jsonl", jsonl(article(1, "lemonde", "Boulangerie Epicea recrute 20")))
    land(con, inbox)
    companies.build_companies(con, OSESettings(data_dir=tmp_path).reference_dir)
    articles.build_articles(con)
    assert con.execute(
        "select article_id, title from normalized.articles order by article_id"
    ).fetchall() == [
        ("lemonde:a1", "Boulangerie Epicea recrute 20"),
        ("lemonde:a2", "Martin Conseil remporte un contrat"),
        ("lesechos:a1", "Transports Durandeau Logistique lève 5 millions"),
        ("lesechos:a2", "Boulangerie Epicea ouvre une usine"),
    ]
    links = con.execute(
        "select article_id, siren, match_method from normalized.article_companies order by all"
    ).fetchall()
    assert links == [
        ("lemonde:a1", S1, "exact_name"),
        ("lemonde:a2", S2, "siren"),
        ("lesechos:a1", S4, "siren"),
        ("lesechos:a2", S1, "exact_name"),
    ]
    assert len({(a, s) for a, s, _ in links}) == len(links)


def test_two_signal_files_reusing_ids_never_duplicate_a_key(env):
    con, inbox = env
    write(
        inbox,
        "signals",
        "crm_1.jsonl",
        jsonl(
            {"id": "1", "siren": S1, "date": "2025-05-01", "type": "hiring", "source": "crm"},
            {"id": "2", "siren": S2, "date": "2025-05-02", "type": "hiring", "source": "crm"},
        ),
    )
    write(
        inbox,
        "signals",
        "crm_2.jsonl",
        jsonl(
            {"id": "1", "siren": S3, "date": "2025-05-03", "type": "fundraising", "source": "crm"},
            {"id": "2", "siren": S2, "date": "2025-05-02", "type": "hiring", "source": "crm", "count": 3},
        ),
    )
    land(con, inbox)
    signals.build_signals(con)
    rows = con.execute(
        "select siren, signal_type, magnitude from normalized.signals order by siren"
    ).fetchall()
    assert rows == [(S1, "hiring", None), (S2, "hiring", 3.0), (S3, "fundraising", None)]
    assert con.execute("select count(*) = count(distinct signal_id) from normalized.signals").fetchone()[0]


def test_landing_under_a_1gb_duckdb_memory_limit(tmp_path):
    settings = OSESettings(data_dir=tmp_path / "data", duckdb_memory_limit="1GB")
    settings.ensure_dirs()
    inbox = settings.inbox_dir
    write(inbox, "signals", "feed.jsonl", GOOD)
    write(inbox, "signals", "feed.csv", f"siren;date;type\n{S3};2025-05-01;hiring\n")
    write(
        inbox,
        "bodacc",
        "b.json",
        json.dumps([{**BODACC_BASE, "id": "B1", "familleavis": "dpc", "registre": [S1]}]),
    )
    con = duckdb.connect(str(settings.warehouse_path), config=settings.duckdb_config())
    try:
        assert max_line_bytes(con) == 999_922_073 // 64  # 953.6 MiB / 64: 16x buffers fit in 1 GB
        temp_dir = con.execute("select current_setting('temp_directory')").fetchone()[0]
        assert temp_dir.startswith(str(settings.data_dir))  # spills stay under the data root
        results = land(con, inbox)
        assert sorted((r.status, r.records_loaded) for r in results) == [
            ("loaded", 1),
            ("loaded", 1),
            ("loaded", 2),
        ]
    finally:
        con.close()


def test_restoring_a_tar_backup_reads_no_unchanged_file_again(tmp_path, monkeypatch):
    settings = OSESettings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    inbox = settings.inbox_dir
    for i, source in enumerate(("signals", "articles")):
        path = write(
            inbox,
            source,
            f"f{i}.jsonl",
            GOOD
            if source == "signals"
            else jsonl({"id": "1", "url": "https://ex.fr/1", "published_at": "2025-06-01", "title": "x"}),
        )
        os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))  # sub-second mtime
    write(inbox, "signals", "empty.jsonl", b"")
    con = duckdb.connect(str(settings.warehouse_path))
    land(con, inbox)
    before = manifest(con)
    con.close()
    archive = tmp_path / "backup.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(tmp_path), "data"], check=True)
    restored = tmp_path / "restored"
    restored.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(restored)], check=True)
    restored_inbox = restored / "data" / "inbox"
    assert (restored_inbox / "signals" / "f0.jsonl").stat().st_mtime_ns % 1_000_000_000 == 0

    reads = []
    original = landing.fingerprint
    monkeypatch.setattr(landing, "fingerprint", lambda path: reads.append(path) or original(path))
    con = duckdb.connect(str(restored / "data" / "warehouse" / "ose.duckdb"))
    try:
        assert land(con, restored_inbox) == [] and reads == []
        assert manifest(con) == before
        # A touched file (new mtime, same content) is hashed once, not landed again, then skipped unread.
        os.utime(restored_inbox / "signals" / "f0.jsonl", (1_800_000_000, 1_800_000_000))
        assert land(con, restored_inbox) == [] and len(reads) == 1
        assert land(con, restored_inbox) == [] and len(reads) == 1
        assert manifest(con) == before
    finally:
        con.close()


SPELLINGS = [
    ("Offre d'emploi", "hiring"),
    ("Offre d’emploi", "hiring"),
    ("OFFRE D'EMPLOI", "hiring"),
    ("offre d emploi", "hiring"),
    ("offre-d-emploi", "hiring"),
    ("Levée de fonds", "fundraising"),
    ("LEVEE DE FONDS", "fundraising"),
    ("levée-de-fonds", "fundraising"),
    ("Marché public", "contract_win"),
    ("marche_public", "contract_win"),
    ("Augmentation de capital", "capital_increase"),
    ("Dépôt des comptes", "accounts_filed"),
    ("Transfert de siège", "head_office_transfer"),
    ("Changement de dirigeant", "executive_change"),
    ("  fundraising ", "fundraising"),
    ("Nouveau site", "new_site"),
]


def test_signal_type_spellings_map_through_one_label_key(env):
    con, inbox = env
    for text, _ in SPELLINGS:  # the Python and SQL forms of the rule agree
        assert duckdb.execute(f"select {label_key_sql('?')}", [text]).fetchone()[0] == label_key(text)
    write(
        inbox,
        "signals",
        "types.jsonl",
        jsonl(
            *(signal(S1, date=f"2025-05-{i + 1:02d}", type_=text) for i, (text, _) in enumerate(SPELLINGS))
        ),
    )
    [result] = land(con, inbox)
    assert result.records_quarantined == 0
    got = con.execute(
        "select raw_type, signal_type from raw.signal_records order by record_number"
    ).fetchall()
    assert got == [(text.strip(), expected) for text, expected in SPELLINGS]


def test_bodacc_creation_phrase_is_company_creation_and_an_opening_is_new_site(env):
    con, inbox = env

    def acte(category):
        # json.dumps escapes accents (\u00e0): the mapping reads the decoded text.
        return json.dumps(
            {
                "creation": {"categorieCreation": category},
                "dateImmatriculation": "2025-04-01",
                "dateCommencementActivite": "2025-03-15",
                "descriptif": "Activité : conseil.",
            }
        )

    records = [
        (
            "C1",
            "creation",
            S1,
            "Immatriculation d'une personne morale (B, C, D) suite à création d'un établissement principal",
        ),
        (
            "C2",
            "immatriculation",
            S2,
            "Immatriculation d’une personne physique suite à création d’un établissement principal",
        ),
        (
            "C3",
            None,
            S3,
            "Immatriculation d'une personne morale (B, C, D) suite à création d'un établissement principal",
        ),
        ("C4", "creation", S4, "Création d'un établissement secondaire"),
    ]
    write(
        inbox,
        "bodacc",
        "creations.jsonl",
        jsonl(
            *(
                {
                    **BODACC_BASE,
                    "id": i,
                    "registre": [siren],
                    "acte": acte(category),
                    **({"familleavis": family} if family else {}),
                }
                for i, family, siren, category in records
            )
        ),
    )
    land(con, inbox)
    signals.build_signals(con)
    assert con.execute(
        "select source_ref, signal_type from normalized.signals order by source_ref"
    ).fetchall() == [
        ("C1", "company_creation"),
        ("C2", "company_creation"),
        ("C3", "company_creation"),
        ("C4", "new_site"),
    ]


def test_naf_labels_have_no_trailing_spaces():
    frame = naf_frame()
    assert frame.filter(frame["naf_label"] != frame["naf_label"].str.strip_chars()).is_empty()
    assert "Activités d'architecture" in frame["naf_label"].to_list()


def test_dagster_run_with_a_bad_inbox_file_succeeds_and_warns(tmp_path):
    settings = OSESettings(data_dir=tmp_path)
    settings.ensure_dirs()
    write(settings.inbox_dir, "signals", "feed.jsonl", GOOD)
    write(settings.inbox_dir, "signals", "empty.jsonl", b"")
    write(settings.inbox_dir, "companies", "broken.parquet", b"PAR1 not really")
    result = dg.materialize(
        dg.load_assets_from_modules([ingestion_assets])
        + list(dg.load_asset_checks_from_modules([ingestion_assets])),
        resources=build_resources(settings),
    )
    assert result.success
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_rejected_files"]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "signals/empty.jsonl (empty_file)" in evaluation.description
    assert "companies/broken.parquet (bad_parquet)" in evaluation.description
    reconciles = [e for e in result.get_asset_check_evaluations() if e.check_name == "manifest_reconciles"]
    assert reconciles[0].passed
    metadata = result.asset_materializations_for_node("raw_inbox")[0].metadata
    assert metadata["files_rejected"].value == 2
