"""The demo generator writes real-format inbox files, deterministically, with a realistic hidden truth."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

from ose_assets.demo import hazard as gen
from ose_assets.demo import reference as ref
from ose_assets.demo.common import SIGNAL_TYPES
from ose_assets.demo.generate import INBOX_FILES, generate_demo_data
from ose_assets.demo.signals import SIGNAL_ALIASES
from ose_assets.demo.sirene import SIRENE_COLUMNS
from ose_assets.demo.truth import PROPENSITY_FILE, oracle_probability

END = dt.date(2026, 6, 15)
COMPANIES = 2_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict[str, int], list[str]]:
    root = tmp_path_factory.mktemp("demo")
    messages: list[str] = []
    counts = generate_demo_data(root, companies=COMPANIES, seed=7, end_date=END, progress=messages.append)
    return root, counts, messages


def _json_lines(path: Path) -> tuple[list[dict], int]:
    """Parsed records and the number of lines that are not valid JSON."""
    records, broken = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            broken += 1
    return records, broken


def _departement(commune: str) -> str:
    return commune[:3] if commune.startswith("97") else commune[:2]


def test_every_inbox_file_and_the_truth_are_written_with_their_counts(demo):
    root, counts, messages = demo
    for relative in INBOX_FILES.values():
        path = root / relative
        assert path.stat().st_size > 0, relative
        lines = path.read_text(encoding="utf-8").count("\n")
        header = 1 if relative.endswith(".csv") else 0
        assert lines == counts[relative] + header, relative
    assert (root / "truth" / PROPENSITY_FILE).exists()
    assert counts["inbox/companies/StockUniteLegale_utf8.csv"] == COMPANIES
    assert messages and messages[-1].startswith("done")


def test_sirene_stock_has_the_35_columns_valid_sirens_and_realistic_values(demo):
    root, _, _ = demo
    path = root / INBOX_FILES["sirene"]
    with path.open(encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == SIRENE_COLUMNS
    units = pl.read_csv(path, infer_schema=False)
    assert len(SIRENE_COLUMNS) == 35
    assert units["siren"].is_unique().all()
    assert all(stdnum_siren.is_valid(s) for s in units["siren"])
    bands = units["trancheEffectifsUniteLegale"]
    assert bands.is_in(ref.HEADCOUNT_BANDS).all()
    assert bands.is_in(["NN", "00", "01", "02"]).mean() > 0.7  # tiny companies dominate
    assert units["categorieJuridiqueUniteLegale"].is_in(list(ref.LEGAL_FORMS)).all()
    naf_codes = set(ref.naf_subclasses()["naf_code"])
    assert units["activitePrincipaleUniteLegale"].is_in(naf_codes).all()
    assert set(units["etatAdministratifUniteLegale"]) == {"A", "C"}
    assert 0 < (units["nomUniteLegale"] == "[ND]").sum() < COMPANIES * 0.02
    # Category consistent with size: ETI/GE only from 250 employees.
    large = units.filter(pl.col("categorieEntreprise").is_in(["ETI", "GE"]))
    assert large["trancheEffectifsUniteLegale"].is_in(["32", "41", "42", "51", "52", "53"]).all()
    # Sole traders carry a person's name, companies a denomination.
    sole = units.filter(pl.col("categorieJuridiqueUniteLegale") == "1000")
    assert sole["denominationUniteLegale"].is_null().all() and sole["nomUniteLegale"].is_not_null().all()
    names = units["denominationUniteLegale"].drop_nulls()
    assert 0.6 < names.n_unique() / names.len() < 1.0  # unique-ish, some shared names


def test_establishments_have_one_head_office_valid_sirets_and_consistent_communes(demo):
    root, _, _ = demo
    sites = pl.read_csv(root / INBOX_FILES["establishments"], infer_schema=False)
    units = pl.read_csv(root / INBOX_FILES["sirene"], infer_schema=False)
    heads = sites.filter(pl.col("etablissementSiege") == "true")
    assert heads.height == units.height and heads["siren"].is_unique().all()
    assert (sites["etablissementSiege"] == "false").sum() > 0
    assert all(stdnum_siret.is_valid(s) for s in sites["siret"])
    assert (sites["siret"] == sites["siren"] + sites["nic"]).all()
    # The head office's NIC is the unit's nicSiege.
    joined = heads.join(units, on="siren")
    assert (joined["nic"] == joined["nicSiegeUniteLegale"]).all()
    departements = set(ref.DEPARTEMENTS)
    assert all(_departement(c) in departements for c in sites["codeCommuneEtablissement"])
    shares = (
        heads["codeCommuneEtablissement"]
        .map_elements(_departement, return_dtype=pl.String)
        .value_counts(normalize=True)
    )
    paris = shares.filter(pl.col("codeCommuneEtablissement") == "75")["proportion"].item()
    assert 0.04 < paris < 0.2  # Paris over-represented, as head offices are


def test_recherche_entreprises_records_are_a_fraction_with_finances_and_update_dates(demo):
    root, _, _ = demo
    records, broken = _json_lines(root / INBOX_FILES["recherche"])
    assert broken == 0
    assert 0.08 * COMPANIES < len(records) < 0.16 * COMPANIES
    first = records[0]
    for field in (
        "siren",
        "nom_complet",
        "siege",
        "finances",
        "dirigeants",
        "date_mise_a_jour",
        "nature_juridique",
    ):
        assert field in first
    assert {"siret", "commune", "code_postal", "departement", "region", "est_siege"} <= set(first["siege"])
    with_finances = [r for r in records if r["finances"]]
    assert with_finances and all(
        set(year.keys()) == {"ca", "resultat_net"} for r in with_finances for year in r["finances"].values()
    )
    sirene = pl.read_csv(root / INBOX_FILES["sirene"], infer_schema=False).select(
        "siren", processed=pl.col("dateDernierTraitementUniteLegale").str.slice(0, 10)
    )
    updates = pl.DataFrame([{"siren": r["siren"], "updated": r["date_mise_a_jour"]} for r in records]).join(
        sirene, on="siren"
    )
    assert updates.height == len(records)
    newer = (updates["updated"] > updates["processed"]).mean()
    assert 0.2 < newer < 0.8  # "newest wins" matters both ways


def test_signals_use_the_vocabulary_or_french_aliases_with_rare_bad_records(demo):
    root, _, _ = demo
    records, broken = _json_lines(root / INBOX_FILES["signals"])
    assert broken == 0 and records
    assert set(records[0]) == {"siren", "date", "type", "amount", "count", "source", "source_ref", "url"}
    types = {r["type"] for r in records}
    assert types <= set(SIGNAL_TYPES) | set(SIGNAL_ALIASES.values())
    assert types & set(SIGNAL_ALIASES.values())
    digits = [r["siren"].replace(" ", "") for r in records]
    assert any(" " in r["siren"] for r in records)
    bad_siren = sum(not stdnum_siren.is_valid(s) for s in digits)
    bad_dates = 0
    future = 0
    for r in records:
        try:
            future += dt.date.fromisoformat(r["date"]) > END
        except ValueError:
            bad_dates += 1
    assert 1 <= bad_siren and 1 <= bad_dates and 1 <= future
    assert bad_siren + bad_dates + future < 0.01 * len(records)
    # Sparse: most companies have no feed signal.
    assert len(set(digits)) < 0.6 * COMPANIES


def test_bodacc_records_follow_the_open_data_export(demo):
    root, _, _ = demo
    records, broken = _json_lines(root / INBOX_FILES["bodacc"])
    assert broken == 0
    families = {r["familleavis"] for r in records}
    assert {"immatriculation", "modification", "vente", "dpc", "radiation", "collective"} <= families
    arrays = [r for r in records if isinstance(r["registre"], list) and r["registre"]]
    strings = [r for r in records if isinstance(r["registre"], str)]
    assert len(arrays) > 3 * len(strings) > 0
    assert all(r["registre"][1].replace(" ", "") == r["registre"][0] for r in arrays)
    assert any(len(r["registre"]) == 4 for r in arrays)  # announcements naming two companies
    for r in records:
        for field in (
            "listepersonnes",
            "jugement",
            "acte",
            "modificationsgenerales",
            "radiationaurcs",
            "depot",
            "parutionavisprecedent",
        ):
            if r[field] is not None:
                assert isinstance(r[field], str)
                json.loads(r[field])
    natures = {json.loads(r["jugement"])["nature"] for r in records if r["familleavis"] == "collective"}
    assert any("liquidation judiciaire" in nature for nature in natures)
    assert any("redressement judiciaire" in nature for nature in natures)
    fixes = [r for r in records if r["typeavis"] == "rectificatif"]
    assert fixes
    originals = {(r["parution"], r["numeroannonce"]) for r in records if r["typeavis"] == "annonce"}
    for fix in fixes:
        previous = json.loads(fix["parutionavisprecedent"])
        assert (previous["numeroParution"], previous["numeroAnnonce"]) in originals


def test_articles_are_french_press_some_with_sirens_and_a_few_broken_lines(demo):
    root, counts, _ = demo
    records, broken = _json_lines(root / INBOX_FILES["articles"])
    assert 1 <= broken < max(3, 0.01 * counts[INBOX_FILES["articles"]])
    assert set(records[0]) == {"id", "url", "published_at", "title", "text", "source", "sirens"}
    assert all(dt.datetime.fromisoformat(r["published_at"]).tzinfo is not None for r in records)
    with_sirens = [r for r in records if r["sirens"]]
    assert 0 < len(with_sirens) < len(records)
    titles = " ".join(r["title"] for r in records)
    assert "recrute" in titles and ("lève" in titles or "Levée" in titles)
    links = pl.read_parquet(root / "truth" / "article_links.parquet")
    assert links["article_id"].is_unique().all() and links.height == counts[INBOX_FILES["articles"]]


def test_crm_outcomes_have_won_lost_and_open_opportunities(demo):
    root, _, _ = demo
    path = root / INBOX_FILES["outcomes"]
    with path.open(encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == [
            "opportunity_id",
            "siren",
            "opportunity_date",
            "closed_date",
            "status",
        ]
    outcomes = pl.read_csv(path, infer_schema=False)
    assert set(outcomes["status"]) == {"won", "lost", "open"}
    assert outcomes["opportunity_id"].is_unique().all()
    assert (outcomes["closed_date"].is_null() == (outcomes["status"] == "open")).all()
    closed = outcomes.filter(pl.col("status") != "open")
    assert (closed["closed_date"] >= closed["opportunity_date"]).all()
    assert (closed["closed_date"] <= END.isoformat()).all()


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    def run(name: str, seed: int) -> Path:
        generate_demo_data(tmp_path / name, companies=500, seed=seed, end_date=END)
        return tmp_path / name

    first, second, other = run("a", 1), run("b", 1), run("c", 2)
    for relative in INBOX_FILES.values():
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert (first / INBOX_FILES["sirene"]).read_bytes() != (other / INBOX_FILES["sirene"]).read_bytes()
    truth = [pl.read_parquet(root / "truth" / PROPENSITY_FILE) for root in (first, second)]
    assert truth[0].equals(truth[1])


def test_oracle_matches_the_hazard_arithmetic(tmp_path):
    pl.DataFrame(
        {
            "siren": ["123456782"] * 3,
            "month": [dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)],
            "monthly_hazard": [0.1, 0.2, 0.3],
        }
    ).write_parquet(tmp_path / PROPENSITY_FILE)
    snapshots = pl.DataFrame(
        {
            "siren": ["123456782", "123456782", "000000000"],
            "snapshot_date": [dt.date(2025, 1, 31), dt.date(2024, 12, 31), dt.date(2025, 1, 31)],
        }
    )
    probability = oracle_probability(tmp_path, snapshots, horizon_days=28)
    # Window Feb 1..28 covers all of February; Jan 1..28 covers 28/31 of January; unknown company: 0.
    assert probability.to_list() == pytest.approx([0.2, 0.1 * 28 / 31, 0.0])


def test_label_rate_and_oracle_auc_are_realistic(demo):
    root, _, _ = demo
    units = pl.read_csv(root / INBOX_FILES["sirene"], infer_schema=False).select(
        "siren",
        creation=pl.col("dateCreationUniteLegale").str.to_date(),
        closed=pl.when(pl.col("etatAdministratifUniteLegale") == "C").then(pl.col("dateDebut").str.to_date()),
    )
    months = [dt.date(2024 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(3, 15)]  # 2024-03 .. 2025-02
    spine = units.join(pl.DataFrame({"snapshot_date": months}), how="cross").filter(
        (pl.col("creation") <= pl.col("snapshot_date"))
        & (pl.col("closed").is_null() | (pl.col("closed") > pl.col("snapshot_date")))
    )
    won = pl.read_csv(root / INBOX_FILES["outcomes"], infer_schema=False).filter(pl.col("status") == "won")
    hits = (
        spine.join(won.select("siren", closed_date=pl.col("closed_date").str.to_date()), on="siren")
        .filter(
            (pl.col("closed_date") > pl.col("snapshot_date"))
            & (pl.col("closed_date") <= pl.col("snapshot_date") + pl.duration(days=90))
        )
        .select("siren", "snapshot_date")
        .unique()
        .with_columns(label=pl.lit(1))
    )
    labels = spine.join(hits, on=["siren", "snapshot_date"], how="left")["label"].fill_null(0).to_numpy()
    oracle = oracle_probability(root / "truth", spine.select("siren", "snapshot_date")).to_numpy()
    assert 0.02 <= labels.mean() <= 0.10
    assert 0.75 <= roc_auc_score(labels, oracle) <= 0.90
    assert abs(oracle.mean() - labels.mean()) < 0.01  # the oracle is calibrated
    assert np.isfinite(oracle).all()


def test_hidden_hazard_has_no_company_term_the_pipeline_can_not_observe(demo):
    """Before any event, the hazard is a function of what the inbox files show (size, sector, region,
    legal form, age): logit(h) - Σ effects is the same intercept for every company. Only the ~4 % whose
    SIRENE headcount band lags a newer Recherche d'entreprises value differ."""
    root, _, _ = demo
    first = pl.read_parquet(root / "truth" / PROPENSITY_FILE).filter(pl.col("month") == pl.col("month").min())
    month = first["month"][0]
    units = pl.read_csv(root / INBOX_FILES["sirene"], infer_schema=False)
    heads = pl.read_csv(root / INBOX_FILES["establishments"], infer_schema=False).filter(
        pl.col("etablissementSiege") == "true"
    )
    region_of = {dep: code for code, (_, deps) in ref.REGIONS.items() for dep in deps}
    section_of = dict(ref.naf_subclasses().select("naf_code", "naf_section").iter_rows())
    commune = pl.col("codeCommuneEtablissement")
    frame = (
        first.join(units, on="siren")
        .join(heads.select("siren", "codeCommuneEtablissement"), on="siren")
        .with_columns(
            band=pl.col("trancheEffectifsUniteLegale").replace_strict(
                {b: i for i, b in enumerate(ref.HEADCOUNT_BANDS)}
            ),
            age=(pl.lit(month) - pl.col("dateCreationUniteLegale").str.to_date()).dt.total_days() / 365.25,
            effects=pl.col("activitePrincipaleUniteLegale")
            .replace_strict(section_of)
            .replace_strict(gen.SECTOR_EFFECT, default=0.0)
            + pl.when(commune.str.starts_with("97"))
            .then(commune.str.slice(0, 3))
            .otherwise(commune.str.slice(0, 2))
            .replace_strict(region_of)
            .replace_strict(gen.REGION_EFFECT, default=0.0)
            + pl.col("categorieJuridiqueUniteLegale").replace_strict(gen.LEGAL_EFFECT, default=0.0),
        )
    )
    expected = (
        frame["effects"].to_numpy()
        + gen.SIZE_EFFECT[frame["band"].to_numpy()]
        + gen.AGE_EFFECT[np.searchsorted(gen.AGE_EFFECT_YEARS, frame["age"].to_numpy())]
    )
    hazard = frame["monthly_hazard"].to_numpy()
    intercept = np.log(hazard / (1 - hazard)) - expected
    assert frame.height > 0.7 * COMPANIES
    assert np.mean(np.abs(intercept - np.median(intercept)) < 1e-4) > 0.95
