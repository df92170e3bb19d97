"""Ingestion without Dagster: one test per bad-input kind, each checking its quarantine reason and that
every landed file reconciles (records read = loaded + quarantined + duplicates dropped)."""

from __future__ import annotations

import datetime as dt
import json
import random
import time

import duckdb
from stdnum import luhn
from stdnum.fr import siren as stdnum_siren

from ose_assets.ingestion import articles, companies, landing, outcomes, signals
from ose_assets.ingestion.readers import fingerprint
from ose_assets.ingestion.reference import naf_frame
from ose_assets.ingestion.sql import luhn_valid, siren_digits
from ose_assets.settings import OSESettings

TODAY = dt.date(2025, 6, 30)
UL_HEADER = (
    "siren,statutDiffusionUniteLegale,dateCreationUniteLegale,trancheEffectifsUniteLegale,"
    "dateDernierTraitementUniteLegale,categorieEntreprise,dateDebut,etatAdministratifUniteLegale,"
    "denominationUniteLegale,categorieJuridiqueUniteLegale,activitePrincipaleUniteLegale,"
    "nomenclatureActivitePrincipaleUniteLegale,nicSiegeUniteLegale,colonneAjoutee"
)


def make_siren(n: int) -> str:
    base = f"{n:08d}"
    return base + luhn.calc_check_digit(base)


S1, S2, S3, S4 = (make_siren(n) for n in (12345678, 23456789, 34567890, 45678901))
BAD_LUHN = S1[:-1] + str((int(S1[-1]) + 1) % 10)


def write(inbox, source: str, name: str, content: str | bytes):
    path = inbox / source / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records)


def signal(siren=S1, date="2025-05-01", type_="fundraising", **extra) -> dict:
    return {
        "siren": siren,
        "date": date,
        "type": type_,
        "source": "press_release",
        "source_ref": f"r-{siren}-{date}",
        **extra,
    }


def land(con, inbox):
    results = landing.land_inbox(con, inbox, TODAY)
    assert landing.reconciliation(con) == []
    for r in results:
        assert r.records_read == r.records_loaded + r.records_quarantined + r.duplicates_dropped
    return results


def reasons(con) -> list[tuple[int, str]]:
    return con.execute(
        f"select record_number, reason_code from {landing.QUARANTINE_TABLE} "
        "order by source_file, record_number"
    ).fetchall()


def test_luhn_sql_matches_python_stdnum():
    rng = random.Random(7)
    values = [f"{rng.randrange(10**9):09d}" for _ in range(20_000)] + [
        make_siren(rng.randrange(10**8)) for _ in range(5_000)
    ]
    values += ["356000000", "732829320", "000000000"]
    got = duckdb.sql(
        f"select v, {luhn_valid('v')}, {luhn_valid('v', digits_only=True)} "
        "from (select unnest(?::varchar[]) as v)",
        params=[values],
    ).fetchall()
    assert len(got) == len(values)
    for value, valid, valid_from_integer in got:
        assert valid == valid_from_integer == stdnum_siren.is_valid(value), value


def test_bad_siren_length_and_luhn_are_quarantined_and_spaced_siren_accepted(env):
    con, inbox = env
    spaced = f"{S2[:3]} {S2[3:6]} {S2[6:]}"
    write(
        inbox,
        "signals",
        "s.jsonl",
        jsonl(signal("12345"), signal(BAD_LUHN), signal(spaced), signal("12A456789")),
    )
    [result] = land(con, inbox)
    assert (result.records_read, result.records_loaded, result.records_quarantined) == (4, 1, 3)
    assert reasons(con) == [(1, "bad_siren_length"), (2, "bad_siren_luhn"), (4, "bad_siren_format")]
    assert con.execute("select siren from raw.signal_records").fetchall() == [(S2,)]


def test_bad_date_and_future_date(env):
    con, inbox = env
    write(
        inbox,
        "signals",
        "s.jsonl",
        jsonl(
            signal(date="2025-13-45"),
            signal(date="2025-07-01"),
            signal(date="01/06/2025"),
            signal(date=None),
        ),
    )
    [result] = land(con, inbox)
    assert reasons(con) == [(1, "bad_date"), (2, "future_date"), (4, "missing_date")]
    assert result.records_loaded == 1
    assert con.execute("select event_date from raw.signal_records").fetchone()[0] == dt.date(2025, 6, 1)


def test_broken_json_line_is_quarantined_with_its_line_number(env):
    con, inbox = env
    write(
        inbox,
        "signals",
        "s.jsonl",
        jsonl(signal(), '{"siren": "' + S2 + '", "date": ', "", signal(S3), "[1, 2]"),
    )
    [result] = land(con, inbox)
    # Line 3 is blank: not a record.
    assert (result.records_read, result.records_loaded) == (4, 2)
    assert reasons(con) == [(2, "broken_json"), (5, "not_an_object")]
    raw = con.execute(
        f"select raw_record from {landing.QUARANTINE_TABLE} where record_number = 2"
    ).fetchone()[0]
    assert raw.startswith('{"siren": "' + S2)


def test_short_csv_row_is_quarantined_and_the_rest_loads(env):
    con, inbox = env
    write(
        inbox,
        "signals",
        "s.csv",
        "siren,date,type,amount\n"
        f"{S1},2025-05-01,fundraising,1000000\n{S2},2025-05-02\n{S3},2025-05-03,hiring,\n",
    )
    [result] = land(con, inbox)
    assert (result.records_read, result.records_loaded, result.records_quarantined) == (3, 2, 1)
    assert reasons(con) == [(3, "bad_column_count")]
    assert con.execute("select siren, amount from raw.signal_records order by record_number").fetchall() == [
        (S1, 1_000_000.0),
        (S3, None),
    ]
    assert con.execute("select record_number from raw.signal_records order by 1").fetchall() == [(2,), (4,)]


def test_cp1252_file_with_accents(env):
    con, inbox = env
    text = (
        f"siren;date;type;source;source_ref\n{S1};2025-05-01;Levée de fonds;presse;Réf ’€\n"
        f"{S2};2025-05-02;Recrutement;presse;Œuvre\n"
    )
    path = write(inbox, "signals", "s.csv", text.encode("cp1252"))
    assert fingerprint(path).encoding == "cp1252"
    [result] = land(con, inbox)
    assert result.records_loaded == 2
    assert con.execute(
        "select signal_type, source_ref from raw.signal_records order by siren"
    ).fetchall() == [("fundraising", "Réf ’€"), ("hiring", "Œuvre")]


def test_utf8_bom_csv_and_jsonl(env):
    con, inbox = env
    write(inbox, "signals", "a.csv", f"\ufeffsiren,date,type\n{S1},2025-05-01,hiring\n")
    write(inbox, "signals", "b.jsonl", "\ufeff" + jsonl(signal(S2)))
    results = land(con, inbox)
    assert [r.records_loaded for r in results] == [1, 1]
    assert reasons(con) == []


def test_semicolon_csv(env):
    con, inbox = env
    write(
        inbox,
        "outcomes",
        "crm.csv",
        "opportunity_id;siren;opportunity_date;closed_date;status\n"
        f"o1;{S1};2025-01-10;2025-03-01;won\no2;{S2};2025-02-10;;open\no3;{S3};2025-02-10;2025-01-01;lost\n"
        f"o4;{S4};2025-02-10;2025-03-01;peut-être\n",
    )
    [result] = land(con, inbox)
    assert reasons(con) == [(4, "inconsistent_dates"), (5, "bad_status")]
    assert outcomes.build_outcomes(con) == 2
    assert con.execute("select opportunity_id, status from normalized.outcomes order by 1").fetchall() == [
        ("o1", "won"),
        ("o2", "open"),
    ]
    assert result.records_read == 4


def test_same_content_under_two_names_lands_once(env):
    con, inbox = env
    content = jsonl(signal(), signal(S2))
    write(inbox, "signals", "a.jsonl", content)
    write(inbox, "signals", "copy_of_a.jsonl", content)
    first, second = land(con, inbox)
    assert (first.status, first.records_loaded) == ("loaded", 2)
    assert (second.status, second.records_read) == ("duplicate_file", 0)
    assert land(con, inbox) == []  # re-running adds nothing
    assert con.execute("select count(*) from raw.signal_records").fetchone()[0] == 2
    assert con.execute("select count(*) from raw.manifest").fetchone()[0] == 2


def test_manifest_records_how_long_each_file_took(env):
    con, inbox = env
    write(inbox, "signals", "a.jsonl", jsonl(signal(), signal(S2)))
    write(inbox, "signals", "b.jsonl", jsonl(signal(), signal(S2)))  # same content: duplicate_file
    write(inbox, "signals", "c.jsonl", b"\x00\x01 not text")  # rejected as a file
    started = time.perf_counter()
    land(con, inbox)
    elapsed = time.perf_counter() - started
    rows = con.execute("select status, landing_seconds from raw.manifest order by inbox_path").fetchall()
    assert [status for status, _ in rows] == ["loaded", "duplicate_file", "rejected"]
    assert all(0 < seconds for _, seconds in rows)
    assert sum(seconds for _, seconds in rows) <= elapsed


def test_duplicated_record_dropped_within_and_across_files(env):
    con, inbox = env
    write(inbox, "signals", "a.jsonl", jsonl(signal(), signal(), signal(S2)))
    [first] = land(con, inbox)
    assert (first.records_read, first.records_loaded, first.duplicates_dropped) == (3, 2, 1)
    # A later file repeating one old record adds only its new record and reads no old file.
    write(inbox, "signals", "b.jsonl", jsonl(signal(S2), signal(S3)))
    [second] = land(con, inbox)
    assert (second.records_loaded, second.duplicates_dropped) == (1, 1)
    assert signals.build_signals(con)["signals"] == 3


def test_unknown_naf_code_is_kept_with_null_hierarchy(env, tmp_path):
    con, inbox = env
    write(
        inbox,
        "companies",
        "StockUniteLegale_utf8.csv",
        UL_HEADER + "\n"
        f"{S1},O,2010-01-01,11,2025-01-01T10:00:00,PME,2010-01-01,A,ALPHA SAS,5710,6201Z,NAFRev2,00012,x\n"
        f"{S2},O,2011-01-01,NN,2025-01-01T10:00:00,,2020-05-01,C,BETA,5499,99.99Q,NAFRev2,00013,x\n"
        f"{S3},O,2012-01-01,[ND],2025-01-01,,2012-01-01,A,[ND],1000,46.87Y,NAFRev2,00014,x\n",
    )
    [result] = land(con, inbox)
    assert result.records_loaded == 3
    counts = companies.build_companies(con, OSESettings(data_dir=tmp_path).reference_dir)
    assert counts["unknown_naf_codes"] == 1 and counts["naf2025_codes"] == 1
    rows = con.execute(
        "select siren, naf_code, naf_label, naf_section, naf_division, legal_form_family, headcount_band, "
        "headcount_min, is_active, closed_date, name from normalized.companies order by siren"
    ).fetchall()
    assert rows[0][:8] == (S1, "62.01Z", "Programmation informatique", "J", "62", "SAS", "11", 10)
    assert rows[1][1:4] == ("99.99Q", None, None) and rows[1][8:10] == (False, dt.date(2020, 5, 1))
    assert rows[2][1:5] == ("46.87Y", None, None, "46") and rows[2][6] is None and rows[2][10] is None


def test_naf_codes_are_written_the_nomenclature_way_whatever_their_shape():
    # SIRENE's own shape takes a shortcut (kept as it is); every other shape is cleaned.
    shapes = {
        "62.01Z": "62.01Z",
        "6201Z": "62.01Z",
        "62.01z": "62.01Z",
        " 62 01 Z": "62.01Z",
        "62.01 Z": "62.01Z",
        "62.01Z ": "62.01Z",
        "62.01": "62.01",
        "n/a": "N/A",
        "６2.01Z": "６2.01Z",
    }
    values = ", ".join(f"('{shape}')" for shape in shapes)
    written = duckdb.sql(
        f"select code, {companies._naf_format('code')} from (values {values}, (null)) as t(code)"
    ).fetchall()
    assert dict(written) == {**shapes, None: None}


def test_newest_company_record_wins_and_establishments_give_the_place(env, tmp_path):
    con, inbox = env
    write(
        inbox,
        "companies",
        "StockUniteLegale_utf8.csv",
        UL_HEADER + "\n"
        f"{S1},O,2010-01-01,11,2025-01-01T10:00:00,PME,2010-01-01,A,OLD NAME,5710,6201Z,NAFRev2,00012,x\n",
    )
    write(
        inbox,
        "companies",
        "StockEtablissement_utf8.csv",
        "siren,nic,siret,etablissementSiege,codePostalEtablissement,codeCommuneEtablissement,"
        "etatAdministratifEtablissement\n"
        f"{S1},00012,{S1}00012,true,69001,69381,A\n{S1},00020,{S1}00020,false,75001,75101,A\n"
        f"{S1},00030,{S1}00030,false,75001,75101,F\n",
    )
    write(
        inbox,
        "companies",
        "recherche.json",
        json.dumps(
            {
                "results": [
                    {
                        "siren": S1,
                        "nom_raison_sociale": "NEW NAME",
                        "date_mise_a_jour": "2025-03-01",
                        "finances": {"2023": {"ca": 1.5e6}, "2024": {"ca": 2e6, "resultat_net": 1e5}},
                        "dirigeants": [{"nom": "X"}, {"nom": "Y"}],
                        "etat_administratif": "A",
                    },
                    {
                        "siren": S2,
                        "nom_complet": "GAMMA",
                        "activite_principale": "70.22Z",
                        "date_mise_a_jour": "2024-01-01",
                        "siege": {"commune": "2A004", "code_postal": "20000"},
                        "nature_juridique": "5499",
                    },
                ],
                "total_results": 2,
                "page": 1,
            }
        ),
    )
    land(con, inbox)
    companies.build_companies(con, OSESettings(data_dir=tmp_path).reference_dir)
    rows = {
        r[0]: r
        for r in con.execute(
            "select siren, name, source, naf_code, revenue, revenue_year, establishment_count, commune_code, "
            "departement_code, region_code, region_name, executive_count from normalized.companies"
        ).fetchall()
    }
    assert rows[S1][1:3] == ("NEW NAME", "recherche_entreprises")
    assert rows[S1][3] == "62.01Z"  # the newest record has no NAF: the older SIRENE value fills it
    assert rows[S1][4:6] == (2e6, 2024)
    assert rows[S1][6:11] == (2, "69381", "69", "84", "Auvergne-Rhône-Alpes")
    assert rows[S1][11] == 2
    assert rows[S2][7:11] == ("2A004", "2A", "94", "Corse")


BODACC_BASE = {"dateparution": "2025-04-10", "typeavis": "annonce", "publicationavis": "A"}


def test_bodacc_record_with_two_sirens_yields_two_signals(env):
    con, inbox = env
    write(
        inbox,
        "bodacc",
        "bodacc.jsonl",
        jsonl(
            {
                **BODACC_BASE,
                "id": "A1",
                "familleavis": "collective",
                "registre": [S1, f"{S1[:3]} {S1[3:6]} {S1[6:]}", S2],
                "jugement": json.dumps(
                    {"nature": "Jugement d'ouverture d'une procédure de redressement judiciaire"}
                ),
            },
            {
                **BODACC_BASE,
                "id": "A2",
                "familleavis": "modification",
                "registre": f"{S3[:3]} {S3[3:6]} {S3[6:]},{S3}",
                "modificationsgenerales": json.dumps({"descriptif": "Augmentation du capital social"}),
            },
            {**BODACC_BASE, "id": "A3", "familleavis": "immatriculation", "registre": ["12345"]},
        ),
    )
    [result] = land(con, inbox)
    assert (result.records_read, result.records_loaded) == (3, 2)
    assert reasons(con) == [(3, "bad_siren_length")]
    signals.build_signals(con)
    rows = con.execute(
        "select siren, signal_type, polarity, source, source_ref, description "
        "from normalized.signals order by siren"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (S1, "receivership", -1),
        (S2, "receivership", -1),
        (S3, "capital_increase", 1),
    ]
    assert rows[0][3:6] == ("bodacc", "A1", "Jugement d'ouverture d'une procédure de redressement judiciaire")


def test_bodacc_rectificatif_and_annulation_are_corrections(env):
    con, inbox = env
    write(
        inbox,
        "bodacc",
        "bodacc.csv",
        "id;dateparution;typeavis;familleavis;registre;parution;numeroannonce;"
        "jugement;parutionavisprecedent\n"
        f"A1;2025-04-01;annonce;collective;{S1};20250065;101;"
        '"{""nature"": ""Jugement d\'ouverture de liquidation judiciaire""}";\n'
        f"A2;2025-04-08;rectificatif;collective;{S1};20250070;55;"
        '"{""nature"": ""Jugement d\'ouverture d\'une procédure de sauvegarde""}";'
        '"{""numeroParution"": ""20250065"", ""numeroAnnonce"": ""101""}"\n'
        f"B1;2025-04-02;annonce;vente;{S2};20250066;7;;\n"
        f"B2;2025-04-09;annulation;vente;{S2};20250071;8;;\n"
        f"C1;2025-04-09;rectificatif;dpc;{S3};20250071;9;;\n",
    )
    [result] = land(con, inbox)
    assert result.records_loaded == 5
    counts = signals.build_signals(con)
    assert (counts["bodacc_rectificatifs"], counts["bodacc_annulations"]) == (2, 1)
    rows = con.execute(
        "select siren, signal_type, event_date, source_ref from normalized.signals order by siren"
    ).fetchall()
    # A1 corrected by A2 (one event, original id and date); B1 cancelled; C1's original unknown: it stands.
    assert rows == [
        (S1, "safeguard_procedure", dt.date(2025, 4, 1), "A1"),
        (S3, "accounts_filed", dt.date(2025, 4, 9), "C1"),
    ]


def _companies_for_matching(con, inbox, tmp_path):
    write(
        inbox,
        "companies",
        "recherche.jsonl",
        jsonl(
            {"siren": S1, "nom_raison_sociale": "Boulangerie Épicéa SAS", "date_mise_a_jour": "2025-01-01"},
            {"siren": S2, "nom_raison_sociale": "Martin Conseil", "date_mise_a_jour": "2025-01-01"},
            {"siren": S3, "nom_raison_sociale": "MARTIN CONSEIL SARL", "date_mise_a_jour": "2025-01-01"},
            {
                "siren": S4,
                "nom_raison_sociale": "Transports Durandeau Logistique",
                "date_mise_a_jour": "2025-01-01",
            },
        ),
    )


def _article(i, title, text="", sirens=None):
    return {
        "id": f"art{i}",
        "url": f"https://ex.fr/{i}",
        "published_at": "2025-06-01T08:00:00+02:00",
        "title": title,
        "text": text,
        "source": "presse",
        **({"sirens": sirens} if sirens else {}),
    }


def test_articles_matched_by_name_exact_fuzzy_and_ambiguous(env, tmp_path):
    con, inbox = env
    _companies_for_matching(con, inbox, tmp_path)
    write(
        inbox,
        "articles",
        "a.jsonl",
        jsonl(
            _article(1, "La boulangerie Epicea recrute 20 personnes à Lyon"),
            _article(2, "Martin Conseil remporte un contrat"),
            _article(3, "Transports Durandot Logistique lève 5 millions d'euros"),
            _article(4, "Plan social chez un industriel", sirens=[S2]),
            _article(5, "Rien à voir", sirens=[BAD_LUHN]),
            _article(
                6,
                "Un article du futur",
            )
            | {"published_at": "2025-07-05T10:00:00"},
        ),
    )
    land(con, inbox)
    assert reasons(con) == [(5, "bad_siren_luhn"), (6, "future_date")]
    companies.build_companies(con, OSESettings(data_dir=tmp_path).reference_dir)
    counts = articles.build_articles(con)
    links = con.execute(
        "select article_id, siren, match_method, confidence from normalized.article_companies "
        "order by article_id"
    ).fetchall()
    assert links[0] == ("presse:art1", S1, "exact_name", 1.0)
    assert links[1][:3] == ("presse:art3", S4, "fuzzy_name") and 0.9 <= links[1][3] < 1.0
    assert links[2] == ("presse:art4", S2, "siren", 1.0)
    assert len(links) == 3
    assert counts["articles_ambiguous_name"] == 1  # "Martin Conseil" names two companies
    events = dict(
        con.execute("select article_id, event_type || ':' || polarity from normalized.articles").fetchall()
    )
    assert events == {
        "presse:art1": "hiring:1",
        "presse:art2": "contract_win:1",
        "presse:art3": "fundraising:1",
        "presse:art4": "layoffs:-1",
    }


def test_naf_reference_has_the_full_hierarchy():
    naf = naf_frame()
    assert naf.height == 732
    assert naf["naf_section"].n_unique() == 21 and naf["naf_division"].n_unique() == 88
    assert naf["naf_group"].n_unique() == 272 and naf["naf_class"].n_unique() == 615


def test_siren_digits_strips_spaces():
    assert (
        duckdb.sql(f"select {siren_digits(chr(39) + '853 479 236' + chr(39))}").fetchone()[0] == "853479236"
    )


def test_sirene_parquet_stock_gives_the_same_companies_as_the_csv(tmp_path):
    """INSEE also publishes the stocks as Parquet, with typed columns (dates, timestamps, booleans)."""
    unite_legale = (
        UL_HEADER + "\n"
        f"{S1},O,2010-01-01,11,2025-01-01T10:00:00,PME,2010-01-01,A,ALPHA,5710,62.01Z,NAFRev2,00012,x\n"
        f"{S2},O,1999-05-20,,2024-06-01T08:30:00,ETI,2019-01-01,C,BETA,5499,70.22Z,NAFRev2,00020,y\n"
    )
    etablissement = (
        "siren,nic,siret,etablissementSiege,codePostalEtablissement,codeCommuneEtablissement,"
        "etatAdministratifEtablissement\n"
        f"{S1},00012,{S1}00012,true,69001,69381,A\n{S2},00020,{S2}00020,true,75001,75101,F\n"
    )
    typed = {
        "StockUniteLegale_utf8": "dateCreationUniteLegale::date as dateCreationUniteLegale, "
        "dateDebut::date as dateDebut, "
        "dateDernierTraitementUniteLegale::timestamp as dateDernierTraitementUniteLegale",
        "StockEtablissement_utf8": "etablissementSiege::boolean as etablissementSiege",
    }
    built = {}
    for file_format in ("csv", "parquet"):
        root = tmp_path / file_format
        (root / "inbox" / "companies").mkdir(parents=True)
        con = duckdb.connect(str(root / "warehouse.duckdb"))
        for stem, content in (
            ("StockUniteLegale_utf8", unite_legale),
            ("StockEtablissement_utf8", etablissement),
        ):
            csv_path = write(root / "inbox", "companies", f"{stem}.csv", content)
            if file_format == "parquet":
                con.execute(
                    f"copy (select * replace ({typed[stem]}) from read_csv('{csv_path}', all_varchar = 1)) "
                    f"to '{csv_path.with_suffix('.parquet')}' (format parquet)"
                )
                csv_path.unlink()
        land(con, root / "inbox")
        companies.build_companies(con, OSESettings(data_dir=root).reference_dir)
        encodings = con.execute(f"select distinct encoding from {landing.MANIFEST_TABLE}").fetchall()
        assert encodings == [("utf-8" if file_format == "csv" else "binary",)]  # Parquet is never decoded
        built[file_format] = con.execute("select * from normalized.companies order by siren").fetchall()
        con.close()
    assert len(built["csv"]) == 2 and built["parquet"] == built["csv"]
