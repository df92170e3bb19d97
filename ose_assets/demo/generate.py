"""Demo data generator: a synthetic French company world written in the real public formats.

`generate_demo_data` draws companies (SIRENE-like), their business events over about two years, a
hidden monthly conversion hazard driven by those events, and CRM outcomes drawn from that hazard. It
writes the inbox files ingestion reads (SIRENE stocks, Recherche d'entreprises JSON, signals feed,
BODACC export, press articles, CRM outcomes) and the hidden truth (`truth/`), which the pipeline never
reads. Everything is set-based (numpy / Polars over whole arrays) so 1,000,000 companies work, and
deterministic for a seed and end date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from faker import Faker

from ose_assets.demo import reference as ref
from ose_assets.demo.truth import PROPENSITY_FILE
from ose_assets.settings import model_config, today_paris

SIGNAL_TYPES = list(model_config()["signal_types"])
TYPE_ID = {name: i for i, name in enumerate(SIGNAL_TYPES)}

HISTORY_MONTHS = 30  # signals and outcomes start this many months before end_date's month
FUTURE_MONTHS = 3  # hazard drawn past end_date so opportunities opened lately are still open
TARGET_MONTHLY_HAZARD = 0.02  # mean monthly win hazard of an active company (~5 % over 90 days)

# The hidden world: the monthly win hazard is a logistic function of what the pipeline can observe
# (size, sector, region, legal form, age, recent events with decay), with no hidden company term, so
# the only irreducible noise is the outcome draw itself and a model can approach the oracle.
# Logit points a fresh event adds to the monthly hazard (decaying with the type's model_config
# half-life), and yearly event rates for a 6-9 employee company of average dynamism.
# Deliberately not model_config's weights: the model has to learn them.
TRUTH_EFFECT = {
    "fundraising": 2.0,
    "capital_increase": 0.7,
    "hiring": 0.7,
    "new_site": 1.4,
    "head_office_transfer": 0.5,
    "company_creation": 0.6,
    "new_activity": 0.7,
    "executive_change": 1.0,
    "contract_win": 1.1,
    "partnership": 0.7,
    "accounts_filed": 0.1,
    "business_sale": 0.2,
    "legal_modification": 0.15,
    "conciliation": -0.9,
    "professional_recovery": -4.0,
    "safeguard_procedure": -2.5,
    "receivership": -4.0,
    "liquidation": -5.0,
    "radiation": -5.0,
    "layoffs": -1.3,
}
ANNUAL_RATE = {
    "fundraising": 0.02,
    "capital_increase": 0.05,
    "hiring": 0.4,
    "new_site": 0.04,
    "head_office_transfer": 0.04,
    "new_activity": 0.03,
    "executive_change": 0.06,
    "contract_win": 0.06,
    "partnership": 0.03,
    "accounts_filed": 0.35,
    "business_sale": 0.015,
    "legal_modification": 0.08,
    "conciliation": 0.003,
    "layoffs": 0.01,
}
# How strongly a company's latent dynamism (z) raises each event type's rate (lowers it if negative).
# z never enters the hazard directly: it shows only through the events it makes more frequent.
DYNAMISM_LOADING = {
    "fundraising": 0.9,
    "capital_increase": 0.5,
    "hiring": 0.7,
    "new_site": 0.7,
    "head_office_transfer": 0.3,
    "new_activity": 0.4,
    "executive_change": 0.3,
    "contract_win": 0.6,
    "partnership": 0.5,
    "conciliation": -0.6,
    "layoffs": -0.6,
}
# Event-rate multiplier by headcount band (accounts filings do not depend on size).
SIZE_RATE = np.array([0.25, 0.25, 0.4, 0.6, 1.0, 1.6, 2.5, 4.0, 5.0, 7.0, 7.0, 10.0, 10.0, 14.0, 14.0, 14.0])
SIZE_EFFECT = np.array(
    [-1.6, -1.3, -0.75, -0.35, 0, 0.35, 0.65, 0.85, 1.0, 1.1, 1.15, 1.2, 1.2, 1.2, 1.2, 1.2]
)
SECTOR_EFFECT = {
    "J": 0.8,
    "M": 0.55,
    "K": 0.4,
    "C": 0.45,
    "D": 0.3,
    "H": 0.15,
    "N": 0.25,
    "F": -0.1,
    "Q": -0.4,
    "P": -0.3,
    "I": -0.5,
    "L": -0.55,
    "A": -0.7,
    "S": -0.4,
    "R": -0.3,
    "O": -0.7,
}
REGION_EFFECT = {
    "11": 0.35,
    "84": 0.15,
    "93": 0.05,
    "76": 0.05,
    "52": 0.05,
    "27": -0.1,
    "24": -0.1,
    "44": -0.05,
    "94": -0.3,
    "01": -0.4,
    "02": -0.4,
    "03": -0.4,
    "04": -0.4,
    "06": -0.4,
}
LEGAL_EFFECT = {"1000": -0.8, "6540": -1.0}
# Age effect by years since creation: young companies equip themselves, old ones less so.
AGE_EFFECT_YEARS = np.array([2.0, 5.0, 15.0, 30.0])
AGE_EFFECT = np.array([0.45, 0.25, 0.0, -0.2, -0.35])

# French aliases some feeds use instead of the model vocabulary.
SIGNAL_ALIASES = {
    "fundraising": "levee_de_fonds",
    "hiring": "recrutement",
    "new_site": "nouveau_site",
    "executive_change": "nomination",
}
FEED_SOURCE = {
    "fundraising": "press_release",
    "hiring": "france_travail",
    "new_site": "crm",
    "executive_change": "crm",
    "contract_win": "boamp",
    "partnership": "press_release",
    "layoffs": "press_release",
}
PRESS_TYPES = [
    "fundraising",
    "hiring",
    "new_site",
    "executive_change",
    "contract_win",
    "partnership",
    "layoffs",
]
BODACC_TYPES = [
    "company_creation",
    "capital_increase",
    "head_office_transfer",
    "new_activity",
    "legal_modification",
    "business_sale",
    "accounts_filed",
    "conciliation",
    "professional_recovery",
    "safeguard_procedure",
    "receivership",
    "liquidation",
    "radiation",
]
PRESS_OUTLETS = [
    ("Les Échos", "lesechos.fr"),
    ("La Tribune", "latribune.fr"),
    ("Le Parisien", "leparisien.fr"),
    ("Ouest-France", "ouest-france.fr"),
    ("L'Usine Nouvelle", "usinenouvelle.com"),
    ("Maddyness", "maddyness.com"),
    ("BFM Business", "bfmtv.com"),
    ("Actu.fr", "actu.fr"),
    ("Le Journal des Entreprises", "lejournaldesentreprises.com"),
]
SIRENE_COLUMNS = [
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
    "activitePrincipaleNAF25UniteLegale",
]

INBOX_FILES = {
    "sirene": "inbox/companies/StockUniteLegale_utf8.csv",
    "establishments": "inbox/companies/StockEtablissement_utf8.csv",
    "recherche": "inbox/companies/recherche_entreprises.jsonl",
    "signals": "inbox/signals/signals.jsonl",
    "bodacc": "inbox/bodacc/bodacc.jsonl",
    "articles": "inbox/articles/articles.jsonl",
    "outcomes": "inbox/outcomes/crm_outcomes.csv",
}
TRUTH_FILES = {"propensity": f"truth/{PROPENSITY_FILE}", "article_links": "truth/article_links.parquet"}

EPOCH = dt.date(1970, 1, 1)


def generate_demo_data(
    data_dir: Path,
    companies: int = 20_000,
    seed: int = 42,
    end_date: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write the demo inbox files and hidden truth under `data_dir`; return record counts per file."""
    say = progress or (lambda message: None)
    end = end_date or today_paris()
    data_dir = Path(data_dir)
    for relative in (*INBOX_FILES.values(), *TRUTH_FILES.values()):
        (data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    faker = Faker("fr_FR")
    faker.seed_instance(seed)
    clock = _Clock(end)

    say(f"drawing {companies:,} companies")
    firms = _draw_companies(rng, faker, companies, clock)
    say("drawing business events")
    firms, events = _draw_events(rng, firms, clock)
    say(f"{events.height:,} events; computing the hidden monthly hazard")
    hazard = _monthly_hazard(rng, firms, events, clock)
    say("drawing CRM outcomes from the hazard")
    outcomes = _draw_outcomes(rng, firms, hazard, clock)

    counts: dict[str, int] = {}
    say("writing SIRENE stocks")
    firms = _with_record_dates(rng, firms, clock)
    counts[INBOX_FILES["sirene"]] = _write_sirene(firms, clock, data_dir / INBOX_FILES["sirene"])
    counts[INBOX_FILES["establishments"]], establishments = _write_establishments(
        rng, firms, events, clock, data_dir / INBOX_FILES["establishments"]
    )
    counts[INBOX_FILES["recherche"]] = _write_recherche(
        rng, faker, firms, establishments, clock, data_dir / INBOX_FILES["recherche"]
    )
    say("writing signals, BODACC and press articles")
    counts[INBOX_FILES["signals"]] = _write_signals(
        rng, firms, events, clock, data_dir / INBOX_FILES["signals"]
    )
    counts[INBOX_FILES["bodacc"]] = _write_bodacc(rng, firms, events, clock, data_dir / INBOX_FILES["bodacc"])
    counts[INBOX_FILES["articles"]], links = _write_articles(
        rng, faker, firms, events, clock, data_dir / INBOX_FILES["articles"]
    )
    counts[INBOX_FILES["outcomes"]] = _write_csv(outcomes, data_dir / INBOX_FILES["outcomes"])
    say("writing the hidden truth")
    counts[TRUTH_FILES["propensity"]] = _write_propensity(
        firms, hazard, clock, data_dir / TRUTH_FILES["propensity"]
    )
    links.write_parquet(data_dir / TRUTH_FILES["article_links"])
    counts[TRUTH_FILES["article_links"]] = links.height
    say("done: " + ", ".join(f"{Path(k).name} {v:,}" for k, v in counts.items()))
    return counts


class _Clock:
    """Day numbers (days since 1970-01-01) of the simulated window and its months."""

    def __init__(self, end: dt.date):
        self.end_date = end
        self.end = (end - EPOCH).days
        end_month = end.replace(day=1)
        self.month_starts = [_add_months(end_month, k) for k in range(-HISTORY_MONTHS, FUTURE_MONTHS + 1)]
        self.start = (self.month_starts[0] - EPOCH).days
        self.month_days = np.array(
            [(m - EPOCH).days for m in self.month_starts + [_add_months(end_month, FUTURE_MONTHS + 1)]]
        )


def _add_months(month: dt.date, k: int) -> dt.date:
    total = month.year * 12 + month.month - 1 + k
    return dt.date(total // 12, total % 12 + 1, 1)


def _date(days) -> pl.Expr | pl.Series:
    """Day numbers to a Polars Date (nulls stay null)."""
    if isinstance(days, pl.Expr):
        return days.cast(pl.Int32).cast(pl.Date)
    return pl.Series(days).cast(pl.Int32).cast(pl.Date)


def luhn_check_digit(prefix: np.ndarray) -> np.ndarray:
    """Check digit that makes each row of digits (n x k) Luhn-valid once appended."""
    k = prefix.shape[1]
    doubled = (k - 1 - np.arange(k)) % 2 == 0  # from the right, the digit next to the check digit doubles
    values = np.where(doubled, prefix * 2, prefix)
    values = np.where(values > 9, values - 9, values)
    return (10 - values.sum(axis=1) % 10) % 10


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers) % 10


def _draw_sirens(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct Luhn-valid SIRENs (int64, ascending as in the SIRENE stock): 8 random digits + check."""
    bodies = np.unique(rng.integers(30_000_000, 100_000_000, int(n * 1.05) + 100))
    while bodies.size < n:  # collisions are rare: top up
        bodies = np.unique(np.concatenate([bodies, rng.integers(30_000_000, 100_000_000, n)]))
    bodies = np.sort(rng.choice(bodies, size=n, replace=False))
    sirens = bodies * 10 + luhn_check_digit(_digits(bodies, 8))
    return sirens[sirens != 356_000_000]  # La Poste's exception: never drawn in practice


def _nullable(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A Polars series of `values`, null where not `valid` (numpy has no integer null)."""
    return pl.select(pl.when(pl.lit(pl.Series(valid))).then(pl.lit(pl.Series(values)))).to_series()


def _pick(rng: np.random.Generator, probabilities: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1)


def _name_pools(faker: Faker) -> dict[str, list[str]]:
    """A few thousand French family and first names, drawn once and combined vectorially."""
    last = sorted({faker.last_name().upper() for _ in range(6000)})
    male = sorted({faker.first_name_male() for _ in range(1500)})
    female = sorted({faker.first_name_female() for _ in range(1500)})
    return {"last": last, "male": male, "female": female}


def _draw_companies(rng: np.random.Generator, faker: Faker, n: int, clock: _Clock) -> pl.DataFrame:
    sirens = _draw_sirens(rng, n)
    n = len(sirens)
    band = _pick(rng, ref.HEADCOUNT_SHARE, n)
    # Creation: ~12 % created inside the window (tiny at first), the rest earlier with an old tail.
    recent = rng.random(n) < 0.12
    old_creation = clock.start - 1 - rng.exponential(9 * 365, n).astype(np.int64)
    new_creation = clock.start + rng.integers(0, clock.end - clock.start - 20, n)
    creation = np.where(recent, new_creation, np.maximum(old_creation, (dt.date(1950, 1, 1) - EPOCH).days))
    band = np.where(recent, _pick(rng, [0.6, 0.2, 0.12, 0.08], n), band)
    # Legal form by size group.
    group = np.where(band <= 3, 0, np.where(band <= 6, 1, 2))
    mixes = np.array([np.cumsum(ref.LEGAL_FORM_MIX[g]) for g in ("tiny", "small", "large")])
    mixes /= mixes[:, -1:]
    legal = (rng.random(n)[:, None] > mixes[group]).sum(axis=1).clip(0, len(ref.LEGAL_FORM_CODES) - 1)
    legal_code = np.array(ref.LEGAL_FORM_CODES)[legal]
    # NAF: a section by French share, then a sub-class within it; SCIs rent real estate.
    naf = ref.naf_subclasses()
    sections = list(ref.NAF_SECTION_SHARE)
    section = _pick(rng, list(ref.NAF_SECTION_SHARE.values()), n)
    by_section = naf.filter(pl.col("naf_section").is_in(sections)).with_row_index("row")
    first = np.array([by_section.filter(pl.col("naf_section") == s)["row"].min() for s in sections])
    size = np.array([by_section.filter(pl.col("naf_section") == s).height for s in sections])
    naf_row = first[section] + (rng.random(n) * size[section]).astype(np.int64)
    sci_row = by_section.filter(pl.col("naf_code") == "68.20B")["row"][0]
    naf_row = np.where(legal_code == "6540", sci_row, naf_row)
    # Place: a département by weight, then one of its big communes or another commune of it.
    places = _places()
    place = _pick(rng, places["weight"].to_numpy(), n)
    z = rng.standard_normal(n)
    frame = pl.DataFrame(
        {
            "idx": np.arange(n, dtype=np.int64),
            "siren": pl.Series(sirens).cast(pl.String).str.zfill(9),
            "band_idx": band.astype(np.int64),
            "legal_form": legal_code,
            "naf_row": naf_row,
            "place": place,
            "creation_day": creation.astype(np.int64),
            "z": z,
            "name_pattern": _pick(rng, [0.04, 0.32, 0.15, 0.12, 0.12, 0.25], n),
            "u_last": rng.random(n),
            "u_last2": rng.random(n),
            "u_word": rng.random(n),
            "u_head": rng.random(n),
            "u_tail": rng.random(n),
            "u_first": rng.random(n),
            "sexe_f": rng.random(n) < 0.4,
            "u_commune": rng.random(n),
            "u_postcode": rng.random(n),
        }
    )
    frame = (
        frame.join(
            by_section.select("row", "naf_code", "naf_label", "naf_section"),
            left_on="naf_row",
            right_on="row",
        )
        .join(places.drop("weight").with_row_index("place"), on="place")
        .sort("idx")
        .with_columns(band=pl.col("band_idx").replace_strict(dict(enumerate(ref.HEADCOUNT_BANDS))))
    )
    frame = _with_commune(frame)
    frame = _with_names(frame, _name_pools(faker))
    # ~12 % also in Recherche d'entreprises: half updated after the SIRENE record (some with a grown
    # headcount: the newest value is the true one), half older (some with a stale, smaller headcount).
    u = rng.random(n)
    recherche = np.select(
        [u < 0.036, u < 0.06, u < 0.084, u < 0.12], ["newer_grown", "newer", "older_stale", "older"], ""
    )
    frame = frame.with_columns(
        recherche=pl.Series(recherche).replace("", None),
        statut=pl.when((pl.col("legal_form") == "1000") & (pl.Series(rng.random(n)) < 0.03))
        .then(pl.lit("P"))
        .otherwise(pl.lit("O")),
        sigle=pl.when((pl.Series(rng.random(n)) < 0.03) & pl.col("denomination").str.contains(" ")).then(
            pl.col("denomination").str.split(" ").list.eval(pl.element().str.slice(0, 1)).list.join("")
        ),
        nic_siege=_nic(frame["siren"], np.ones(n, dtype=np.int64)),
    )
    return frame.drop(
        "naf_row",
        "place",
        "u_commune",
        "u_postcode",
        "u_last",
        "u_last2",
        "u_word",
        "u_head",
        "u_tail",
        "u_first",
        "name_pattern",
    )


def _places() -> pl.DataFrame:
    """Sampling table: each big commune, plus one 'other commune' row per département."""
    deps = ref.departements()
    cities = pl.DataFrame(
        ref.CITIES, schema=["city", "departement_code", "commune_code", "postcode"], orient="row"
    )
    per_dep = cities.group_by("departement_code").agg(n_cities=pl.len())
    deps = deps.join(per_dep, on="departement_code", how="left").with_columns(
        city_share=pl.when(pl.col("n_cities").is_null())
        .then(0.0)
        .otherwise(pl.col("departement_code").replace_strict(ref.CITY_SHARE, default=ref.DEFAULT_CITY_SHARE))
    )
    city_rows = cities.join(deps, on="departement_code").with_columns(
        weight=pl.col("weight") * pl.col("city_share") / pl.col("n_cities")
    )
    other_rows = deps.filter(pl.col("city_share") < 1).with_columns(
        weight=pl.col("weight") * (1 - pl.col("city_share")),
        city=pl.lit(None, pl.String),
        commune_code=pl.lit(None, pl.String),
        postcode=pl.lit(None, pl.String),
    )
    columns = [
        "departement_code",
        "departement_name",
        "region_code",
        "region_name",
        "city",
        "commune_code",
        "postcode",
        "weight",
    ]
    return pl.concat([city_rows.select(columns), other_rows.select(columns)]).sort(
        "departement_code", "commune_code"
    )


def _with_commune(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill commune and postcode of companies outside the big communes, consistent with the département."""
    dep = pl.col("departement_code")
    overseas = dep.str.len_chars() == 3
    commune_number = (pl.col("u_commune") * pl.when(overseas).then(34).otherwise(699)).cast(pl.Int64) + 1
    postcode_number = (pl.col("u_postcode") * 98).cast(pl.Int64) + 1
    commune = (
        pl.when(overseas)
        .then(dep + commune_number.cast(pl.String).str.zfill(2))
        .otherwise(dep + commune_number.cast(pl.String).str.zfill(3))
    )
    postcode = (
        pl.when(overseas)
        .then(dep + (postcode_number % 9 + 1).cast(pl.String) + "0")
        .when(dep == "2A")
        .then("201" + (postcode_number % 10).cast(pl.String) + "0")
        .when(dep == "2B")
        .then("202" + (postcode_number % 10).cast(pl.String) + "0")
        .otherwise(dep + (postcode_number * 10).cast(pl.String).str.zfill(3))
    )
    return frame.with_columns(
        commune_code=pl.coalesce("commune_code", commune), postcode=pl.coalesce("postcode", postcode)
    )


def _pool_pick(pool: list[str], u: str) -> pl.Expr:
    return pl.lit(pl.Series(pool)).gather((pl.col(u) * len(pool)).cast(pl.Int64))


def _with_names(frame: pl.DataFrame, pools: dict[str, list[str]]) -> pl.DataFrame:
    """Company names: family names, sector words and invented brands combined set-wise (some collide)."""
    sections = sorted(ref.NAF_SECTION_SHARE)
    words_by_section = {s: ref.NAME_WORDS.get(s, []) + ref.NAME_WORDS["*"] for s in sections}
    flat = [w for s in sections for w in words_by_section[s]]
    offsets = np.cumsum([0] + [len(words_by_section[s]) for s in sections])[:-1]
    word_index = pl.col("naf_section").replace_strict(dict(zip(sections, offsets.tolist(), strict=True))) + (
        pl.col("u_word")
        * pl.col("naf_section").replace_strict({s: len(words_by_section[s]) for s in sections})
    ).cast(pl.Int64)
    last, last2 = _pool_pick(pools["last"], "u_last"), _pool_pick(pools["last"], "u_last2")
    word = pl.lit(pl.Series(flat)).gather(word_index)
    brand = (
        _pool_pick(ref.BRAND_HEADS, "u_head")
        + _pool_pick(ref.BRAND_MIDS, "u_word")
        + _pool_pick(ref.BRAND_TAILS, "u_tail")
    )
    pattern = pl.col("name_pattern")
    denomination = (
        pl.when(pattern == 0)
        .then(last)
        .when(pattern == 1)
        .then(pl.concat_str(last, word, separator=" "))
        .when(pattern == 2)
        .then(pl.concat_str(word, last, separator=" "))
        .when(pattern == 3)
        .then(pl.concat_str(last, pl.lit("ET"), last2, separator=" "))
        .when(pattern == 4)
        .then(brand)
        .otherwise(pl.concat_str(brand, word, separator=" "))
    )
    first_name = (
        pl.when(pl.col("sexe_f"))
        .then(_pool_pick(pools["female"], "u_first"))
        .otherwise(_pool_pick(pools["male"], "u_first"))
    )
    person = pl.col("legal_form") == "1000"
    return frame.with_columns(
        last_name=pl.when(person).then(last),
        first_name=pl.when(person).then(first_name),
        denomination=pl.when(~person).then(denomination),
    ).with_columns(
        name=pl.coalesce(
            "denomination", pl.concat_str("first_name", pl.col("last_name"), separator=" ").str.to_uppercase()
        )
    )


def _draw_events(
    rng: np.random.Generator, firms: pl.DataFrame, clock: _Clock
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Business events of the window (one row each) and the companies with their closure dates.

    Collective procedures and closures are drawn first (a company closed stops having events), then
    every other type as a Poisson count per company spread uniformly over its active days.
    """
    n = firms.height
    band = firms["band_idx"].to_numpy()
    z = firms["z"].to_numpy()
    creation = firms["creation_day"].to_numpy()
    person = (firms["legal_form"] == "1000").to_numpy()
    section = firms["naf_section"].to_numpy()
    # ~8 % of the stock closed before the window: no event, no hazard.
    old = creation < clock.start
    closed_before = old & (rng.random(n) < 0.08)
    closed_day = np.where(
        closed_before, creation + (rng.random(n) * (clock.start - creation)).astype(np.int64), -1
    )
    start = np.maximum(creation + 1, clock.start)
    span = np.maximum(clock.end - start, 0)
    years = np.where(closed_before, 0, span) / 365.25
    parts: list[tuple[np.ndarray, str, np.ndarray]] = []

    def at(mask: np.ndarray, signal_type: str, days: np.ndarray) -> None:
        keep = mask & (days <= clock.end)
        parts.append((np.flatnonzero(keep), signal_type, days[keep]))

    # Collective procedures: ~1 %/year, more for fragile companies and risky sectors.
    risk = 0.01 * years * np.exp(-0.5 * z) * np.where(np.isin(section, ["F", "I", "G"]), 1.5, 1.0)
    insolvent = (rng.random(n) < risk) & (span > 30)
    first_day = start + (rng.random(n) * span).astype(np.int64)
    kind = _pick(rng, [0.12, 0.58, 0.30], n)  # safeguard, receivership, direct liquidation
    at(insolvent & (kind == 0), "safeguard_procedure", first_day)
    at(insolvent & (kind == 1), "receivership", first_day)
    converted_day = first_day + rng.integers(60, 240, n)
    converted = insolvent & (kind == 1) & (rng.random(n) < 0.45)
    at(converted, "liquidation", converted_day)
    at(insolvent & (kind == 2), "liquidation", first_day)
    liquidated = (insolvent & (kind == 2)) | (converted & (converted_day <= clock.end))
    liquidation_day = np.where(kind == 2, first_day, converted_day)
    # Sole traders: professional recovery, then radiation.
    recovery = person & ~insolvent & (rng.random(n) < 0.002 * years) & (span > 30)
    at(recovery, "professional_recovery", first_day)
    # Closures (radiation): after most liquidations, after recoveries, and voluntary dissolutions.
    radiation_day = np.full(n, -1, dtype=np.int64)
    after_liquidation = liquidation_day + rng.integers(90, 400, n)
    radiation_day = np.where(liquidated & (rng.random(n) < 0.8), after_liquidation, radiation_day)
    radiation_day = np.where(recovery, first_day + rng.integers(30, 120, n), radiation_day)
    voluntary = (
        ~insolvent
        & ~recovery
        & ~closed_before
        & (rng.random(n) < 0.015 * years * np.where(band <= 1, 1.5, 1))
    )
    radiation_day = np.where(voluntary, start + (rng.random(n) * span).astype(np.int64), radiation_day)
    closes = (radiation_day >= 0) & (radiation_day <= clock.end)
    at(closes, "radiation", radiation_day)
    closed_day = np.where(closes, radiation_day, closed_day)
    # Creations inside the window are announced (immatriculation) a few weeks later.
    created = (creation >= clock.start) & (~person | (rng.random(n) < 0.5))
    at(created, "company_creation", creation + rng.integers(3, 30, n))

    active_end = np.where(closed_day >= 0, closed_day - 1, clock.end)
    active_span = np.maximum(active_end - start, 0)
    active_years = np.where(closed_before, 0, active_span) / 365.25
    young = (clock.end - creation) < 3 * 365
    for signal_type, rate in ANNUAL_RATE.items():
        loading = DYNAMISM_LOADING.get(signal_type, 0.0)
        multiplier = np.exp(loading * z - loading**2 / 2)
        if signal_type == "accounts_filed":
            multiplier = multiplier * np.where(person, 0.0, 1.0)
        else:
            multiplier = multiplier * SIZE_RATE[band] * np.where(person, 0.4, 1.0)
        if signal_type == "fundraising":
            multiplier = (
                multiplier * np.where(young, 3.0, 1.0) * np.where(np.isin(section, ["J", "M"]), 2.5, 1.0)
            )
        if signal_type == "layoffs":
            multiplier = multiplier * np.where(band >= 5, 1.0, 0.1)
        counts = rng.poisson(rate * active_years * multiplier)
        company = np.repeat(np.arange(n), counts)
        days = start[company] + (rng.random(company.size) * (active_span[company] + 1)).astype(np.int64)
        parts.append((company, signal_type, days))

    company = np.concatenate([p[0] for p in parts])
    events = pl.DataFrame(
        {
            "idx": company.astype(np.int64),
            "signal_type": np.concatenate([np.full(p[0].size, TYPE_ID[p[1]]) for p in parts]).astype(
                np.int64
            ),
            "day": np.concatenate([p[2] for p in parts]).astype(np.int64),
        }
    ).with_columns(signal_type=pl.col("signal_type").replace_strict(dict(enumerate(SIGNAL_TYPES))))
    events = events.sort("day", "idx", "signal_type").with_row_index("event_no")
    events = _with_magnitude_and_channels(rng, events, firms)
    firms = firms.with_columns(
        closed_day=_nullable(closed_day, closed_day >= 0),
        insolvent=pl.Series(insolvent),
    )
    return firms, events


def _with_magnitude_and_channels(
    rng: np.random.Generator, events: pl.DataFrame, firms: pl.DataFrame
) -> pl.DataFrame:
    """Amount / count of each event and where it is reported: BODACC, the signals feed, the press."""
    m = events.height
    info = events.join(firms.select("idx", "band_idx", "legal_form"), on="idx", how="left").sort("event_no")
    band = info["band_idx"].to_numpy()
    mid = np.array(ref.HEADCOUNT_MID)[band]
    kind = info["signal_type"].to_numpy()
    lognormal = rng.lognormal(0.0, 0.8, m)
    amount = np.select(
        [kind == "fundraising", kind == "contract_win", kind == "capital_increase"],
        [
            np.round(1.5e6 * lognormal * (1 + mid / 200), -5),
            np.round(0.6e6 * lognormal * (1 + mid / 300), -4),
            np.round(50e3 * lognormal * (1 + mid / 50), -3),
        ],
        np.nan,
    )
    count = np.select(
        [kind == "hiring", kind == "layoffs"],
        [1 + rng.poisson(0.5 + 0.4 * np.sqrt(mid)), 5 + rng.poisson(0.08 * mid + 5)],
        -1,
    )
    u = rng.random(m)
    large = band >= 5
    person = (info["legal_form"] == "1000").to_numpy()
    is_press = np.isin(kind, PRESS_TYPES)
    bodacc_exec = (kind == "executive_change") & (u < 0.3)
    p_article = np.where(kind == "hiring", np.where(count >= 20, 0.5, 0.03), np.where(large, 0.55, 0.2))
    v = rng.random(m)
    article = is_press & ~bodacc_exec & ~person & (v < p_article)
    article_only = article & (rng.random(m) < 0.35)
    press_bad_news = np.isin(kind, ["receivership", "liquidation"]) & large & (v < 0.35)
    return events.with_columns(
        amount=pl.Series(amount).fill_nan(None),
        count=_nullable(count, count >= 0),
        in_bodacc=pl.Series(np.isin(kind, BODACC_TYPES) | bodacc_exec),
        in_feed=pl.Series(is_press & ~bodacc_exec & ~article_only),
        in_article=pl.Series(article | press_bad_news),
        variant=pl.Series(rng.integers(0, 6, m)),
    )


def _monthly_hazard(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: _Clock
) -> np.ndarray:
    """Hidden monthly win hazard (companies x months): size, sector, region, legal form, age and decayed
    events on the logit scale, all observable by the pipeline; zero when the company is not active.
    The randomness left is the outcome draw itself (_draw_outcomes): as hard for the oracle as for a
    model."""
    n, months = firms.height, len(clock.month_starts)
    config = model_config()["signal_types"]
    half_life = np.array([config[t]["half_life_days"] for t in SIGNAL_TYPES], dtype=float)
    effect = np.array([TRUTH_EFFECT[t] for t in SIGNAL_TYPES])
    event_company = events["idx"].to_numpy()
    event_type = events["signal_type"].replace_strict(TYPE_ID).to_numpy()
    event_day = events["day"].to_numpy()
    static = (
        SIZE_EFFECT[firms["band_idx"].to_numpy()]
        + firms["naf_section"].replace_strict(SECTOR_EFFECT, default=0.0).to_numpy()
        + firms["region_code"].replace_strict(REGION_EFFECT, default=0.0).to_numpy()
        + firms["legal_form"].replace_strict(LEGAL_EFFECT, default=0.0).to_numpy()
    )
    creation = firms["creation_day"].to_numpy()
    closed = firms["closed_day"].fill_null(np.iinfo(np.int64).max).to_numpy()
    logit = np.empty((n, months), dtype=np.float32)
    active = np.empty((n, months), dtype=bool)
    for m in range(months):
        t0, t1 = clock.month_days[m], clock.month_days[m + 1]
        past = event_day < t0
        weight = effect[event_type[past]] * np.exp2(-(t0 - event_day[past]) / half_life[event_type[past]])
        signal = np.bincount(event_company[past], weights=weight, minlength=n)
        age = AGE_EFFECT[np.searchsorted(AGE_EFFECT_YEARS, (t0 - creation) / 365.25)]
        logit[:, m] = static + age + signal
        active[:, m] = (creation < t0) & (closed >= t1)
    # Intercept set so the average active company-month has the target hazard.
    cells = np.flatnonzero(active.ravel())
    sample = logit.ravel()[cells[rng.integers(0, cells.size, min(cells.size, 300_000))]].astype(float)
    low, high = -15.0, 5.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (
            (mid, high) if (1 / (1 + np.exp(-(mid + sample)))).mean() < TARGET_MONTHLY_HAZARD else (low, mid)
        )
    hazard = 1 / (1 + np.exp(-(logit + np.float32(low))))
    hazard[~active] = 0
    return hazard


def _draw_outcomes(
    rng: np.random.Generator, firms: pl.DataFrame, hazard: np.ndarray, clock: _Clock
) -> pl.DataFrame:
    """CRM opportunities: won ones close at the hazard, lost ones at a weaker function of it; those still
    running at end_date are open. Month by month, uniform close day within the month."""
    lost_hazard = hazard**0.6
    active = hazard > 0
    lost_hazard *= 1.3 * hazard[active].sum() / max(lost_hazard[active].sum(), 1e-12)
    lost_hazard = np.minimum(lost_hazard, 0.5)
    frames = []
    for status, rates, gap_scale in (("won", hazard, 12.0), ("lost", lost_hazard, 20.0)):
        for m in range(len(clock.month_starts)):
            hit = np.flatnonzero(rng.random(hazard.shape[0]) < rates[:, m])
            length = clock.month_days[m + 1] - clock.month_days[m]
            close = clock.month_days[m] + (rng.random(hit.size) * length).astype(np.int64)
            opened = close - 7 - rng.gamma(2.0, gap_scale, hit.size).astype(np.int64)
            frames.append(
                pl.DataFrame(
                    {"idx": hit.astype(np.int64), "open_day": opened, "close_day": close, "status": status}
                )
            )
    outcomes = (
        pl.concat(frames)
        .filter(pl.col("open_day") <= clock.end)
        .join(firms.select("idx", "siren"), on="idx")
        .with_columns(
            status=pl.when(pl.col("close_day") > clock.end).then(pl.lit("open")).otherwise("status"),
            opportunity_date=_date(pl.col("open_day")),
            closed_date=pl.when(pl.col("close_day") <= clock.end).then(_date(pl.col("close_day"))),
        )
        .sort("opportunity_date", "siren", "status", "close_day")
    )
    return outcomes.select(
        opportunity_id=pl.format("OPP-{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(7)),
        siren="siren",
        opportunity_date="opportunity_date",
        closed_date="closed_date",
        status="status",
    )


def _write_csv(frame: pl.DataFrame, path: Path) -> int:
    frame.write_csv(path, date_format="%Y-%m-%d")
    return frame.height


def _write_lines(lines: pl.Series | Iterable[pl.Series], path: Path) -> int:
    """Write one JSON document per line (already encoded), UTF-8, '\\n' separated; chunks are appended."""
    total = 0
    with path.open("wb") as handle:
        for chunk in [lines] if isinstance(lines, pl.Series) else lines:
            pl.DataFrame({"line": chunk}).write_csv(handle, include_header=False, quote_style="never")
            total += chunk.len()
    return total


def _fmt_date(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.to_string("%Y-%m-%d")


def _sirene_band_idx() -> pl.Expr:
    """SIRENE's headcount band lags for companies Recherche d'entreprises has a newer, grown value for."""
    return (
        pl.when(pl.col("recherche") == "newer_grown")
        .then((pl.col("band_idx") - 1).clip(0))
        .otherwise("band_idx")
    )


def _with_record_dates(rng: np.random.Generator, firms: pl.DataFrame, clock: _Clock) -> pl.DataFrame:
    """SIRENE dateDebut (start of the current period) and last processing time of each company."""
    n = firms.height
    return (
        firms.with_columns(
            u=pl.Series(rng.random(n)),
            periods=pl.Series(1 + rng.poisson(0.8, n)),
            seconds=pl.Series(rng.integers(0, 86400, n)),
        )
        .with_columns(
            date_debut=pl.when(pl.col("closed_day").is_not_null())
            .then("closed_day")
            .otherwise(
                pl.col("creation_day")
                + ((clock.end - pl.col("creation_day")) * pl.col("u") * 0.5).cast(pl.Int64)
            ),
        )
        .with_columns(
            processed=pl.min_horizontal(
                clock.end - 1, pl.col("date_debut") + (pl.col("u") * 400).cast(pl.Int64)
            ),
        )
    )


def _write_sirene(firms: pl.DataFrame, clock: _Clock, path: Path) -> int:
    end_year = clock.end_date.year
    person = pl.col("legal_form") == "1000"
    hidden = pl.col("statut") == "P"
    band_idx = _sirene_band_idx()
    band_code = band_idx.replace_strict(dict(enumerate(ref.HEADCOUNT_BANDS)))
    category = (
        pl.when(pl.col("creation_day") > (dt.date(end_year - 2, 12, 31) - EPOCH).days)
        .then(None)
        .when(band_idx >= 14)
        .then(pl.lit("GE"))
        .when(band_idx >= 10)
        .then(pl.lit("ETI"))
        .otherwise(pl.lit("PME"))
    )
    nd = pl.lit("[ND]")
    frame = firms
    sirene = frame.select(
        siren="siren",
        statutDiffusionUniteLegale="statut",
        unitePurgeeUniteLegale=pl.when(pl.col("closed_day") < clock.start - 3650).then(pl.lit("true")),
        dateCreationUniteLegale=_fmt_date(_date(pl.col("creation_day"))),
        sigleUniteLegale="sigle",
        sexeUniteLegale=pl.when(person & hidden)
        .then(nd)
        .when(person)
        .then(pl.when(pl.col("sexe_f")).then(pl.lit("F")).otherwise(pl.lit("M"))),
        prenom1UniteLegale=pl.when(person & hidden).then(nd).otherwise("first_name"),
        prenom2UniteLegale=pl.lit(None, pl.String),
        prenom3UniteLegale=pl.lit(None, pl.String),
        prenom4UniteLegale=pl.lit(None, pl.String),
        prenomUsuelUniteLegale=pl.when(person & hidden).then(nd).otherwise("first_name"),
        pseudonymeUniteLegale=pl.lit(None, pl.String),
        identifiantAssociationUniteLegale=pl.lit(None, pl.String),
        trancheEffectifsUniteLegale=band_code,
        anneeEffectifsUniteLegale=pl.when(band_code != "NN").then(pl.lit(str(end_year - 2))),
        dateDernierTraitementUniteLegale=(
            _date(pl.col("processed")).cast(pl.Datetime) + pl.duration(seconds=pl.col("seconds"))
        ).dt.to_string("%Y-%m-%dT%H:%M:%S"),
        nombrePeriodesUniteLegale=pl.col("periods").cast(pl.String),
        categorieEntreprise=category,
        anneeCategorieEntreprise=pl.when(category.is_not_null()).then(pl.lit(str(end_year - 2))),
        dateDebut=_fmt_date(_date(pl.col("date_debut"))),
        etatAdministratifUniteLegale=pl.when(pl.col("closed_day").is_not_null())
        .then(pl.lit("C"))
        .otherwise(pl.lit("A")),
        nomUniteLegale=pl.when(person & hidden).then(nd).otherwise("last_name"),
        nomUsageUniteLegale=pl.lit(None, pl.String),
        denominationUniteLegale="denomination",
        denominationUsuelle1UniteLegale=pl.when(pl.col("u") < 0.03).then("denomination"),
        denominationUsuelle2UniteLegale=pl.lit(None, pl.String),
        denominationUsuelle3UniteLegale=pl.lit(None, pl.String),
        categorieJuridiqueUniteLegale="legal_form",
        activitePrincipaleUniteLegale="naf_code",
        nomenclatureActivitePrincipaleUniteLegale=pl.lit("NAFRev2"),
        nicSiegeUniteLegale="nic_siege",
        economieSocialeSolidaireUniteLegale=pl.when(pl.col("u") < 0.02)
        .then(pl.lit("O"))
        .otherwise(pl.lit("N")),
        societeMissionUniteLegale=pl.when(person).then(None).otherwise(pl.lit("N")),
        caractereEmployeurUniteLegale=pl.when(band_idx >= 2).then(pl.lit("O")).otherwise(pl.lit("N")),
        activitePrincipaleNAF25UniteLegale=pl.lit(None, pl.String),  # no public NAF 2 -> NAF 25 table shipped
    )
    assert sirene.columns == SIRENE_COLUMNS
    return _write_csv(sirene, path)


def _nic(sirens: pl.Series, sequence: np.ndarray) -> pl.Series:
    """NICs (4-digit sequence + check digit) making SIREN + NIC a Luhn-valid SIRET."""
    prefix = sirens.cast(pl.Int64).to_numpy() * 10_000 + sequence
    check = luhn_check_digit(_digits(prefix, 13))
    return pl.Series(sequence * 10 + check).cast(pl.String).str.zfill(5)


def _write_establishments(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: _Clock, path: Path
) -> tuple[int, pl.DataFrame]:
    """Head offices, secondary establishments (more for bigger companies) and the sites new_site events
    opened; also returns each company's establishment counts."""
    secondary_mean = np.array([0.03, 0.03, 0.05, 0.08, 0.2, 0.5, 1, 2, 3, 5, 5, 8, 8, 12, 12, 12])
    counts = np.minimum(rng.poisson(secondary_mean[firms["band_idx"].to_numpy()]), 30)
    owner = np.repeat(np.arange(firms.height), counts)
    sites = events.filter(pl.col("signal_type") == "new_site")
    owners = np.concatenate([owner, sites["idx"].to_numpy()]).astype(np.int64)
    places = _places()
    place = _pick(rng, places["weight"].to_numpy(), owners.size)
    created_at = np.concatenate(
        [np.full(owner.size, -1), sites["day"].to_numpy() - rng.integers(0, 45, sites.height)]
    )
    secondary = (
        pl.DataFrame(
            {
                "idx": owners,
                "place": place,
                "created": created_at,
                "u_commune": rng.random(owners.size),
                "u_postcode": rng.random(owners.size),
                "u": rng.random(owners.size),
            }
        )
        .join(places.drop("weight").with_row_index("place"), on="place")
        .join(firms.select("idx", "siren", "creation_day", "closed_day", "naf_code"), on="idx")
        .with_columns(
            created=pl.when(pl.col("created") >= 0)
            .then("created")
            .otherwise(
                pl.col("creation_day")
                + ((clock.end - pl.col("creation_day")).clip(0) * pl.col("u") * 0.5).cast(pl.Int64)
            ),
            head_office=pl.lit(False),
            band=pl.lit("NN"),
            closed=pl.col("closed_day").is_not_null() | (pl.col("u") < 0.15),
        )
    )
    secondary = _with_commune(secondary)
    heads = firms.select(
        "idx",
        "siren",
        "commune_code",
        "postcode",
        "naf_code",
        "band",
        created="creation_day",
        head_office=pl.lit(True),
        closed=pl.col("closed_day").is_not_null(),
        sequence=pl.lit(1, pl.Int64),
    )
    secondary = secondary.sort("idx", "created", "place").with_columns(
        sequence=pl.int_range(2, pl.len() + 2).over("idx")
    )
    columns = [
        "idx",
        "siren",
        "commune_code",
        "postcode",
        "naf_code",
        "band",
        "created",
        "head_office",
        "closed",
        "sequence",
    ]
    rows = pl.concat([heads.select(columns), secondary.select(columns)]).sort("idx", "sequence")
    rows = rows.with_columns(nic=_nic(rows["siren"], rows["sequence"].to_numpy()))
    frame = rows.select(
        siren="siren",
        nic="nic",
        siret=pl.col("siren") + pl.col("nic"),
        statutDiffusionEtablissement=pl.lit("O"),
        dateCreationEtablissement=_fmt_date(_date(pl.col("created"))),
        trancheEffectifsEtablissement="band",
        etablissementSiege=pl.when("head_office").then(pl.lit("true")).otherwise(pl.lit("false")),
        codePostalEtablissement="postcode",
        codeCommuneEtablissement="commune_code",
        etatAdministratifEtablissement=pl.when("closed").then(pl.lit("F")).otherwise(pl.lit("A")),
        activitePrincipaleEtablissement="naf_code",
        nomenclatureActivitePrincipaleEtablissement=pl.lit("NAFRev2"),
    )
    per_company = rows.group_by("idx").agg(
        establishments=pl.len(), open_establishments=(~pl.col("closed")).sum()
    )
    return _write_csv(frame, path), per_company


def _spaced(siren: str | pl.Expr) -> pl.Expr:
    """'853479236' -> '853 479 236', as several sources print SIRENs."""
    s = pl.col(siren) if isinstance(siren, str) else siren
    return pl.concat_str(s.str.slice(0, 3), s.str.slice(3, 3), s.str.slice(6, 3), separator=" ")


def _write_recherche(
    rng: np.random.Generator,
    faker: Faker,
    firms: pl.DataFrame,
    establishments: pl.DataFrame,
    clock: _Clock,
    path: Path,
) -> int:
    """Recherche d'entreprises result objects for ~12 % of companies, with finances and dirigeants."""
    chosen = firms.filter(pl.col("recherche").is_not_null()).join(establishments, on="idx", how="left")
    n = chosen.height
    year = clock.end_date.year
    newer = pl.col("recherche").str.starts_with("newer")
    band_idx = (
        pl.when(pl.col("recherche") == "older_stale")
        .then((pl.col("band_idx") - 1).clip(0))
        .otherwise("band_idx")
    )
    mid = pl.col("band_idx").replace_strict(
        {i: float(v) for i, v in enumerate(ref.HEADCOUNT_MID)}, return_dtype=pl.Float64
    )
    person = pl.col("legal_form") == "1000"
    chosen = chosen.with_columns(
        updated=pl.when(newer)
        .then(pl.min_horizontal(clock.end, pl.col("processed") + pl.Series(rng.integers(1, 90, n))))
        .otherwise(
            pl.max_horizontal(
                pl.col("creation_day") + 1, pl.col("processed") - pl.Series(rng.integers(30, 400, n))
            )
        ),
        revenue=(
            (120 * pl.max_horizontal(mid, 0.7) * pl.Series(rng.lognormal(0, 0.5, n))).round() * 1000
        ).cast(pl.Int64),
        margin=pl.Series(rng.normal(0.04, 0.08, n)),
        growth=pl.Series(rng.normal(0.05, 0.1, n)),
        has_finances=~person
        & (pl.Series(rng.random(n)) < pl.when(pl.col("band_idx") >= 4).then(0.8).otherwise(0.3)),
        n_leaders=pl.when(person)
        .then(0)
        .otherwise(1 + (pl.col("band_idx") >= 5).cast(pl.Int64) + pl.Series(rng.poisson(0.3, n)).clip(0, 1)),
    )
    leaders = _leaders(rng, faker, chosen)
    chosen = chosen.join(leaders, on="idx", how="left").sort("idx")
    date = _fmt_date
    state = pl.when(pl.col("closed_day").is_not_null()).then(pl.lit("C")).otherwise(pl.lit("A"))
    band_code = band_idx.replace_strict(dict(enumerate(ref.HEADCOUNT_BANDS)))
    finances_year = {
        str(year - 1): (pl.col("revenue"), pl.col("revenue") * pl.col("margin")),
        str(year - 2): (
            pl.col("revenue") / (1 + pl.col("growth")),
            pl.col("revenue") * pl.col("margin") * 0.9,
        ),
    }
    record = pl.struct(
        siren="siren",
        nom_complet=pl.when(pl.col("sigle").is_not_null())
        .then(pl.format("{} ({})", "name", "sigle"))
        .otherwise("name"),
        nom_raison_sociale="denomination",
        sigle="sigle",
        nombre_etablissements="establishments",
        nombre_etablissements_ouverts="open_establishments",
        siege=pl.struct(
            siret=pl.col("siren") + pl.col("nic_siege"),
            commune="commune_code",
            code_postal="postcode",
            departement="departement_code",
            region="region_code",
            latitude=pl.lit(None, pl.Float64),
            longitude=pl.lit(None, pl.Float64),
            activite_principale="naf_code",
            tranche_effectif_salarie=band_code,
            date_creation=date(_date(pl.col("creation_day"))),
            est_siege=pl.lit(True),
            etat_administratif=state,
        ),
        activite_principale="naf_code",
        section_activite_principale="naf_section",
        categorie_entreprise=pl.when(band_idx >= 14)
        .then(pl.lit("GE"))
        .when(band_idx >= 10)
        .then(pl.lit("ETI"))
        .otherwise(pl.lit("PME")),
        date_creation=date(_date(pl.col("creation_day"))),
        date_fermeture=date(_date(pl.col("closed_day"))),
        etat_administratif=state,
        nature_juridique="legal_form",
        tranche_effectif_salarie=band_code,
        dirigeants=pl.col("dirigeants").fill_null(pl.lit([], pl.List(leaders.schema["dirigeants"].inner))),
        finances=pl.when("has_finances").then(
            pl.struct(
                *(
                    pl.struct(ca=ca.round().cast(pl.Int64), resultat_net=net.round().cast(pl.Int64)).alias(y)
                    for y, (ca, net) in finances_year.items()
                )
            )
        ),
        complements=pl.struct(
            est_entrepreneur_individuel=person,
            est_ess=pl.col("u") < 0.02,
            est_societe_mission=pl.lit(False),
        ),
        date_mise_a_jour=date(_date(pl.col("updated"))),
    )
    return _write_lines(chosen.select(record.struct.json_encode()).to_series(), path)


def _leaders(rng: np.random.Generator, faker: Faker, chosen: pl.DataFrame) -> pl.DataFrame:
    """dirigeants[] of each chosen company: 0 (sole traders) to 3 people, from a pre-drawn name pool."""
    pool = sorted({(faker.last_name().upper(), faker.first_name()) for _ in range(800)})
    owner = np.repeat(chosen["idx"].to_numpy(), chosen["n_leaders"].to_numpy())
    pick = rng.integers(0, len(pool), owner.size)
    long = pl.DataFrame(
        {
            "idx": owner,
            "nom": pl.Series([p[0] for p in pool]).gather(pick),
            "prenoms": pl.Series([p[1] for p in pool]).gather(pick),
            "annee_de_naissance": pl.Series(rng.integers(1950, 2000, owner.size)).cast(pl.String),
        }
    ).join(chosen.select("idx", "legal_form"), on="idx")
    first = pl.int_range(pl.len()).over("idx") == 0
    quality = (
        pl.when(pl.col("legal_form").is_in(["5499", "5498", "6540"]))
        .then(pl.lit("Gérant"))
        .when((pl.col("legal_form") == "5599") & first)
        .then(pl.lit("Président du conseil d'administration"))
        .when(first)
        .then(pl.lit("Président"))
        .otherwise(pl.lit("Directeur général"))
    )
    return (
        long.with_columns(qualite=quality, type_dirigeant=pl.lit("personne physique"))
        .group_by("idx", maintain_order=True)
        .agg(dirigeants=pl.struct("nom", "prenoms", "annee_de_naissance", "qualite", "type_dirigeant"))
    )


def _bad_sample(rng: np.random.Generator, frame: pl.DataFrame, rate: float, minimum: int) -> pl.DataFrame:
    """A few rows to corrupt on purpose so quarantine is exercised (well under 1 %)."""
    k = min(frame.height, max(minimum, int(frame.height * rate)))
    return frame[np.sort(rng.choice(frame.height, size=k, replace=False))]


def _write_signals(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: _Clock, path: Path
) -> int:
    """The signals feed: job postings, press releases, CRM notes, public contracts (JSON Lines)."""
    feed = events.filter("in_feed").join(firms.select("idx", "siren"), on="idx").sort("event_no")
    m = feed.height
    u = pl.Series(rng.random(m))
    source = (
        pl.when((pl.col("signal_type") == "fundraising") & (u > 0.7))
        .then(pl.lit("crm"))
        .otherwise(pl.col("signal_type").replace_strict(FEED_SOURCE))
    )
    feed = feed.with_columns(source=source, u=u, v=pl.Series(rng.random(m)))
    prefix = pl.col("source").replace_strict(
        {"france_travail": "FT", "press_release": "PR", "crm": "CRM", "boamp": "BOAMP"}
    )
    source_ref = pl.format("{}-{}", prefix, pl.col("event_no").cast(pl.String).str.zfill(9))
    url = (
        pl.when(pl.col("source") == "france_travail")
        .then(pl.format("https://candidat.francetravail.fr/offres/recherche/detail/{}", source_ref))
        .when(pl.col("source") == "boamp")
        .then(pl.format("https://www.boamp.fr/pages/avis/?q=idweb:{}", source_ref))
        .when(pl.col("source") == "press_release")
        .then(pl.format("https://www.communiques.fr/{}", source_ref))
    )
    rows = feed.select(
        siren=pl.when(pl.col("v") < 0.05).then(_spaced("siren")).otherwise("siren"),
        date=_fmt_date(_date(pl.col("day"))),
        type=pl.when(pl.col("signal_type").is_in(list(SIGNAL_ALIASES)) & (pl.col("u") < 0.25))
        .then(pl.col("signal_type").replace(SIGNAL_ALIASES))
        .otherwise("signal_type"),
        amount=pl.col("amount").round().cast(pl.Int64),
        count="count",
        source="source",
        source_ref=source_ref,
        url=url,
    )
    # The same notice delivered twice (~1 %), and a few deliberately bad records.
    duplicates = _bad_sample(rng, rows, 0.01, 1)
    bad_luhn = _bad_sample(rng, rows, 0.0007, 1).with_columns(
        siren=pl.col("siren").str.replace_all(" ", "").str.slice(0, 8)
        + ((pl.col("siren").str.slice(-1).cast(pl.Int64) + 1) % 10).cast(pl.String)
    )
    bad_date = _bad_sample(rng, rows, 0.0007, 1).with_columns(date=pl.col("date").str.slice(0, 5) + "02-30")
    future = _bad_sample(rng, rows, 0.0007, 1).with_columns(
        date=pl.lit((clock.end_date + dt.timedelta(days=200)).isoformat())
    )
    rows = pl.concat([rows, duplicates, bad_luhn, bad_date, future]).sort("date", "source_ref")
    return _write_lines(rows.select(pl.struct(pl.all()).struct.json_encode()).to_series(), path)


BODACC_FAMILY = {
    "company_creation": "immatriculation",
    "capital_increase": "modification",
    "head_office_transfer": "modification",
    "new_activity": "modification",
    "legal_modification": "modification",
    "executive_change": "modification",
    "business_sale": "vente",
    "accounts_filed": "dpc",
    "conciliation": "conciliation",
    "professional_recovery": "retablissement_professionnel",
    "safeguard_procedure": "collective",
    "receivership": "collective",
    "liquidation": "collective",
    "radiation": "radiation",
}
BODACC_FAMILY_LABEL = {
    "creation": "Créations",
    "immatriculation": "Immatriculations",
    "modification": "Modifications diverses",
    "vente": "Ventes et cessions",
    "dpc": "Dépôts des comptes",
    "radiation": "Radiations",
    "collective": "Procédures collectives",
    "conciliation": "Procédures de conciliation",
    "retablissement_professionnel": "Procédures de rétablissement professionnel",
}
BODACC_PUBLICATION = {"modification": "B", "radiation": "B", "dpc": "C"}  # the others are in BODACC A
JUDGEMENT_NATURE = {
    "safeguard_procedure": "Jugement d'ouverture d'une procédure de sauvegarde",
    "receivership": "Jugement d'ouverture d'une procédure de redressement judiciaire",
    "liquidation": "Jugement d'ouverture d'une procédure de liquidation judiciaire",
    "conciliation": "Jugement d'ouverture d'une procédure de conciliation",
    "professional_recovery": "Jugement d'ouverture d'une procédure de rétablissement professionnel",
}
MODIFICATION_TEXT = {
    "capital_increase": [
        "Modification survenue sur le capital (augmentation). Nouveau capital : {} EUR.",
        "Augmentation du capital social porté à {} EUR.",
    ],
    "head_office_transfer": [
        "Transfert du siège social. Nouvelle adresse : {}.",
        "Modification de l'adresse du siège : {}.",
    ],
    "new_activity": ["Adjonction d'activité : {}.", "Modification de l'objet social. Activité : {}."],
    "legal_modification": [
        "Modification de la dénomination.",
        "Modification de la forme juridique.",
        "Modification de la date de clôture de l'exercice social.",
        "Prorogation de la durée de la société.",
    ],
    "executive_change": [
        "Modification survenue sur l'administration : nomination d'un nouveau président.",
        "Changement de gérant.",
    ],
}


def _write_bodacc(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: _Clock, path: Path
) -> int:
    """BODACC open-data export records (JSON Lines), sub-documents JSON-encoded as strings as exported."""
    firm_columns = firms.select(
        "idx",
        "siren",
        "name",
        "denomination",
        "first_name",
        "last_name",
        "legal_form",
        "naf_label",
        "city",
        "postcode",
        "departement_code",
        "departement_name",
        "region_code",
        "region_name",
        "creation_day",
    )
    b = (
        events.filter("in_bodacc")
        .sort("event_no")
        .with_columns(
            converted=(
                (pl.col("signal_type") == "liquidation")
                & ((pl.col("signal_type") == "receivership").cum_sum().over("idx", order_by="event_no") > 0)
            ),
        )
        .join(firm_columns, on="idx")
        .sort("event_no")
    )
    m = b.height
    b = (
        b.with_columns(
            family=pl.when((pl.col("signal_type") == "company_creation") & (pl.col("variant") < 2))
            .then(pl.lit("creation"))
            .otherwise(pl.col("signal_type").replace_strict(BODACC_FAMILY)),
            buyer=pl.Series(rng.integers(0, firms.height, m)),
            two_sirens=pl.Series(rng.random(m) < 0.1) & (pl.col("signal_type") == "business_sale"),
            v1_registre=pl.Series(rng.random(m) < 0.15),
            judgement_lag=pl.Series(rng.integers(5, 20, m)),
        )
        .join(
            firm_columns.select(buyer="idx", buyer_siren="siren", buyer_name="name", buyer_form="legal_form"),
            on="buyer",
        )
        .with_columns(two_sirens=pl.col("two_sirens") & (pl.col("buyer_siren") != pl.col("siren")))
        .sort("event_no")
    )
    family = pl.col("family")
    kind = pl.col("signal_type")
    published = _date(pl.col("pub_day"))
    form_label = {code: label for code, (label, _) in ref.LEGAL_FORMS.items()}
    greffe = pl.coalesce("city", "departement_name")

    def person(siren: str, name: str, form: str) -> pl.Expr:
        sole = pl.col(form) == "1000"
        return pl.struct(
            typePersonne=pl.when(sole).then(pl.lit("pp")).otherwise(pl.lit("pm")),
            denomination=pl.when(~sole).then(name),
            formeJuridique=pl.col(form).replace_strict(form_label),
            numeroImmatriculation=pl.struct(
                numeroIdentification=_spaced(siren), codeRCS=pl.lit("RCS"), nomGreffeImmat=greffe
            ),
        )

    seller = person("siren", "name", "legal_form")
    buyer = person("buyer_siren", "buyer_name", "buyer_form")
    amount_text = pl.col("amount").round().cast(pl.Int64).cast(pl.String)
    address = pl.concat_str("postcode", greffe, separator=" ")
    text_args = {
        "capital_increase": amount_text,
        "head_office_transfer": address,
        "new_activity": pl.col("naf_label"),
    }
    descriptif = pl.lit(None, pl.String)
    for signal_type, variants in MODIFICATION_TEXT.items():
        for i, template in enumerate(variants):
            chosen = (kind == signal_type) & (pl.col("variant") % len(variants) == i)
            text = pl.format(template, text_args[signal_type]) if "{}" in template else pl.lit(template)
            descriptif = pl.when(chosen).then(text).otherwise(descriptif)
    judgement_nature = pl.when(pl.col("converted")).then(
        pl.lit("Jugement de conversion en liquidation judiciaire")
    )
    judgement_nature = judgement_nature.otherwise(kind.replace(JUDGEMENT_NATURE))
    judgement_day = pl.col("day") - pl.col("judgement_lag")
    columns = dict(
        publicationavis=family.replace_strict(BODACC_PUBLICATION, default="A"),
        parution=pl.format(
            "{}{}",
            published.dt.year(),
            ((published.dt.ordinal_day() * 5) // 7 + 1).cast(pl.String).str.zfill(4),
        ),
        dateparution=_fmt_date(published),
        registre=pl.when("v1_registre")
        .then(pl.format('"{},{}"', _spaced("siren"), "siren"))
        .when("two_sirens")
        .then(
            pl.format(
                '["{}","{}","{}","{}"]', "siren", _spaced("siren"), "buyer_siren", _spaced("buyer_siren")
            )
        )
        .otherwise(pl.format('["{}","{}"]', "siren", _spaced("siren"))),
        # Spliced as text: a list of structs is slow to build in Polars.
        listepersonnes=pl.when("two_sirens")
        .then(pl.format('{{"personne":[{},{}]}}', seller.struct.json_encode(), buyer.struct.json_encode()))
        .otherwise(pl.format('{{"personne":{}}}', seller.struct.json_encode())),
        jugement=pl.when(kind.is_in(list(JUDGEMENT_NATURE))).then(
            pl.struct(
                type=pl.lit("initial"),
                famille=pl.when("converted")
                .then(pl.lit("Jugement de conversion"))
                .otherwise(pl.lit("Jugement d'ouverture")),
                nature=judgement_nature,
                date=_fmt_date(_date(judgement_day)),
                complementJugement=pl.format(
                    "Jugement du tribunal de commerce de {}. Date de cessation des paiements : {}.",
                    greffe,
                    _fmt_date(_date(judgement_day - 45)),
                ),
            ).struct.json_encode()
        ),
        acte=pl.when(family.is_in(["creation", "immatriculation"]))
        .then(
            pl.struct(
                creation=pl.struct(
                    categorieCreation=pl.when(family == "creation")
                    .then(pl.lit("Création d'un fonds de commerce"))
                    .otherwise(pl.lit("Immatriculation d'une personne morale suite à création"))
                ),
                dateImmatriculation=_fmt_date(_date(pl.col("creation_day"))),
                dateCommencementActivite=_fmt_date(_date(pl.col("creation_day"))),
                descriptif=pl.format("Activité : {}.", "naf_label"),
            ).struct.json_encode()
        )
        .when(family == "vente")
        .then(
            pl.struct(
                vente=pl.struct(categorieVente=pl.lit("Vente de fonds de commerce")),
                dateCommencementActivite=_fmt_date(published),
                descriptif=pl.format("Cession d'un fonds de commerce de {}.", "naf_label"),
            ).struct.json_encode()
        ),
        modificationsgenerales=pl.when(family == "modification").then(
            pl.struct(descriptif=descriptif).struct.json_encode()
        ),
        radiationaurcs=pl.when(family == "radiation").then(
            pl.struct(
                radiationPM=pl.when(pl.col("legal_form") != "1000").then(pl.lit("O")),
                radiationPP=pl.when(pl.col("legal_form") == "1000").then(pl.lit("O")),
                dateCessationActivite=_fmt_date(_date(pl.col("day") - 30)),
            ).struct.json_encode()
        ),
        depot=pl.when(family == "dpc").then(
            pl.struct(
                dateCloture=pl.format("{}-12-31", published.dt.year() - 1),
                typeDepot=pl.lit("Comptes annuels et rapports"),
            ).struct.json_encode()
        ),
    )
    # Publication numbering first; the JSON documents are built chunk by chunk when writing (memory).
    numbering = ("publicationavis", "parution", "dateparution", "registre")
    rows = (
        b.with_columns(pub_day="day")
        .with_columns(**{name: columns.pop(name) for name in numbering})
        .with_columns(
            numeroannonce=pl.int_range(1, pl.len() + 1).over(
                "publicationavis", "parution", order_by="event_no"
            )
        )
    )
    rows = rows.with_columns(
        id=pl.format(
            "{}{}{}", "publicationavis", "parution", pl.col("numeroannonce").cast(pl.String).str.zfill(5)
        )
    )
    # Rectificatifs: a few announcements published again a few weeks later, pointing at the first one.
    fixes = _bad_sample(rng, rows, 0.004, 1)
    fixes = fixes.with_columns(
        parutionavisprecedent=pl.struct(
            nomPublication=pl.format("BODACC {}", "publicationavis"),
            numeroParution="parution",
            dateParution="dateparution",
            numeroAnnonce="numeroannonce",
        ).struct.json_encode(),
        pub_day=pl.col("pub_day") + pl.Series(rng.integers(7, 30, fixes.height)),
        typeavis=pl.lit("rectificatif"),
        typeavis_lib=pl.lit("Avis rectificatif"),
    ).filter(pl.col("pub_day") <= clock.end)
    fixes = fixes.with_columns(
        dateparution=_fmt_date(published),
        parution=pl.format(
            "{}{}",
            published.dt.year(),
            ((published.dt.ordinal_day() * 5) // 7 + 1).cast(pl.String).str.zfill(4),
        ),
        numeroannonce=90_000 + pl.int_range(1, pl.len() + 1),
    ).with_columns(
        id=pl.format("{}{}{}", "publicationavis", "parution", pl.col("numeroannonce").cast(pl.String))
    )
    rows = pl.concat(
        [
            rows.with_columns(
                parutionavisprecedent=pl.lit(None, pl.String),
                typeavis=pl.lit("annonce"),
                typeavis_lib=pl.lit("Avis initial"),
            ),
            fixes,
        ],
        how="diagonal",
    )
    # A few unusable records: no SIREN in registre, or an impossible publication date.
    no_siren = _bad_sample(rng, rows, 0.0005, 1).with_columns(registre=pl.lit("[]"), id=pl.col("id") + "X")
    bad_date = _bad_sample(rng, rows, 0.0005, 1).with_columns(
        dateparution=pl.col("dateparution").str.slice(0, 5) + "02-31", id=pl.col("id") + "Y"
    )
    rows = pl.concat([rows, no_siren, bad_date]).sort("dateparution", "id")
    head = pl.struct(
        "id",
        "publicationavis",
        publicationavis_facette=pl.format("Bodacc {}", "publicationavis"),
        parution="parution",
        dateparution="dateparution",
        numeroannonce="numeroannonce",
        typeavis="typeavis",
        typeavis_lib="typeavis_lib",
        familleavis="family",
        familleavis_lib=family.replace_strict(BODACC_FAMILY_LABEL),
        numerodepartement="departement_code",
        departement_nom_officiel="departement_name",
        region_code=pl.col("region_code").cast(pl.Int64),
        region_nom_officiel="region_name",
        tribunal=pl.format("GREFFE DU TRIBUNAL DE COMMERCE DE {}", greffe.str.to_uppercase()),
        commercant="name",
        ville="city",
    ).struct.json_encode()
    tail = pl.struct(
        cp="postcode",
        listepersonnes="listepersonnes",
        listeetablissements=pl.lit(None, pl.String),
        jugement="jugement",
        acte="acte",
        modificationsgenerales="modificationsgenerales",
        radiationaurcs="radiationaurcs",
        depot="depot",
        divers=pl.lit(None, pl.String),
        parutionavisprecedent="parutionavisprecedent",
        url_complete=pl.format("https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:{}", "id"),
    ).struct.json_encode()
    # `registre` is an array (API v2.1) or a string (v1): spliced in as raw JSON between the two halves.
    line = pl.concat_str(
        head.str.strip_suffix("}"),
        pl.lit(',"registre":'),
        "registre",
        pl.lit(","),
        tail.str.strip_prefix("{"),
    )
    chunk = 100_000
    return _write_lines(
        (
            rows.slice(start, chunk).with_columns(**columns).select(line).to_series()
            for start in range(0, rows.height, chunk)
        ),
        path,
    )


# Press headlines and texts by event type: {n} company as named in the article, {c} its place,
# {a} amount in M€, {k} a count, {s} its activity, {o} another city, {p} a person.
ARTICLE_TEMPLATES = {
    "fundraising": [
        (
            "{n} lève {a} M€ pour accélérer",
            "{n}, entreprise {c} spécialisée dans l'activité « {s} », annonce une levée de fonds de {a} "
            "millions d'euros. Ces fonds financeront le recrutement et le développement commercial.",
        ),
        (
            "Levée de fonds : {n} boucle un tour de table de {a} M€",
            "Nouvelle levée de fonds pour {n}, qui réunit {a} "
            "millions d'euros auprès d'investisseurs pour accélérer sa croissance en France et en Europe.",
        ),
    ],
    "hiring": [
        (
            "{n} recrute {k} personnes",
            "{n} ({s}) prévoit de recruter {k} collaborateurs {c} dans les prochains mois "
            "pour accompagner sa croissance.",
        ),
        (
            "Emploi : {n} va embaucher {k} salariés {c}",
            "Bonne nouvelle pour l'emploi local : {n} annonce {k} recrutements en CDI.",
        ),
    ],
    "new_site": [
        (
            "{n} ouvre un nouveau site à {o}",
            "{n}, implantée {c}, ouvre un nouveau site à {o} qui accueillera à terme "
            "plusieurs dizaines de salariés.",
        ),
        (
            "{n} s'agrandit avec une nouvelle implantation à {o}",
            "Pour répondre à la demande, {n} inaugure un établissement à {o}.",
        ),
    ],
    "executive_change": [
        (
            "{n} nomme un nouveau directeur général",
            "{p} prend la direction générale de {n}, entreprise {c} active dans l'activité « {s} ».",
        ),
        ("Changement de direction chez {n}", "{n} annonce avoir nommé {p} à sa tête."),
    ],
    "contract_win": [
        (
            "{n} remporte un contrat de {a} M€",
            "{n} a été retenue pour un contrat d'un montant de {a} millions d'euros sur trois ans.",
        ),
        (
            "{n} décroche un important marché public",
            "L'entreprise {n}, basée {c}, remporte un marché de {a} M€.",
        ),
    ],
    "partnership": [
        (
            "{n} noue un partenariat stratégique",
            "{n} annonce un partenariat avec un acteur européen de son secteur "
            "pour développer de nouvelles offres.",
        ),
        (
            "Partenariat : {n} s'allie à un groupe industriel",
            "{n} et un grand groupe s'associent pour accélérer.",
        ),
    ],
    "layoffs": [
        (
            "{n} annonce un plan social",
            "{n} prévoit la suppression de {k} postes {c} dans le cadre d'un plan de sauvegarde de l'emploi.",
        ),
        ("{n} va supprimer {k} postes", "Coup dur {c} : {n} annonce {k} suppressions d'emplois."),
    ],
    "receivership": [
        (
            "{n} placée en redressement judiciaire",
            "Le tribunal de commerce a placé {n} en redressement judiciaire. "
            "L'entreprise {c} poursuit son activité pendant la période d'observation.",
        ),
        ("Le tribunal place {n} en redressement judiciaire", "{n} ({s}) cherche un repreneur."),
    ],
    "liquidation": [
        (
            "{n} placée en liquidation judiciaire",
            "Le tribunal de commerce a prononcé la liquidation judiciaire de {n}, entreprise {c}.",
        ),
        ("Fin de l'aventure pour {n}, placée en liquidation judiciaire", "{n} cesse son activité {c}."),
    ],
    "other": [
        (
            "{n} présente ses nouveautés au salon professionnel organisé à {o}",
            "{n} ({s}) était présente au salon organisé à {o}.",
        ),
        ("{n} fête ses dix ans", "Retour sur le parcours de {n}, entreprise {c}."),
    ],
}


def _write_articles(
    rng: np.random.Generator,
    faker: Faker,
    firms: pl.DataFrame,
    events: pl.DataFrame,
    clock: _Clock,
    path: Path,
) -> tuple[int, pl.DataFrame]:
    """Press articles (JSON Lines): some carry SIRENs, others name the company only; plus the true links."""
    about_events = events.filter("in_article").select(
        "idx", "signal_type", "day", "amount", "count", "variant"
    )
    # Articles about no business event at all, on companies the press covers.
    covered = firms.filter((pl.col("legal_form") != "1000") & pl.col("closed_day").is_null())
    k = min(covered.height, max(3, about_events.height // 8))
    others = pl.DataFrame(
        {
            "idx": covered["idx"].gather(rng.integers(0, covered.height, k)),
            "signal_type": ["other"] * k,
            "day": rng.integers(clock.start, clock.end + 1, k),
            "variant": rng.integers(0, 6, k),
        }
    )
    articles = pl.concat([about_events, others], how="diagonal").join(
        firms.select("idx", "siren", "name", "legal_form", "city", "departement_code", "naf_label"), on="idx"
    )
    m = articles.height
    people = pl.Series(sorted({faker.name() for _ in range(500)}))
    outlets = pl.Series([o[0] for o in PRESS_OUTLETS])
    domains = pl.Series([o[1] for o in PRESS_OUTLETS])
    big_cities = pl.Series(sorted({c[0] for c in ref.CITIES}))
    outlet = rng.integers(0, len(PRESS_OUTLETS), m)
    abbreviation = {code: abbr for code, (_, abbr) in ref.LEGAL_FORMS.items()}
    style = pl.Series(rng.random(m))
    articles = (
        articles.with_columns(
            published=(
                _date(pl.col("day") + pl.Series(rng.integers(0, 3, m))).cast(pl.Datetime)
                + pl.duration(minutes=pl.Series(rng.integers(6 * 60, 21 * 60, m)))
            ).dt.replace_time_zone("Europe/Paris", ambiguous="earliest"),
            shown=pl.when(style < 0.45)
            .then(pl.concat_str("name", pl.col("legal_form").replace_strict(abbreviation), separator=" "))
            .when(style < 0.8)
            .then(pl.col("name").str.to_titlecase())
            .otherwise("name"),
            has_sirens=pl.Series(rng.random(m) < 0.4),
            source=outlets.gather(outlet),
            domain=domains.gather(outlet),
            p=people.gather(rng.integers(0, len(people), m)),
            o=big_cities.gather(rng.integers(0, len(big_cities), m)),
            c=pl.when(pl.col("city").is_not_null())
            .then(pl.format("à {}", "city"))
            .otherwise(pl.format("du {}", "departement_code")),
            a=_millions(pl.col("amount")),
            k=pl.coalesce(pl.col("count"), pl.lit(10)).cast(pl.String),
        )
        .sort("published", "idx", "signal_type")
        .with_columns(
            article_id=pl.format("ART-{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8))
        )
    )
    title, text = pl.lit(None, pl.String), pl.lit(None, pl.String)
    fields = {
        "n": pl.col("shown"),
        "c": pl.col("c"),
        "a": pl.col("a"),
        "k": pl.col("k"),
        "s": pl.col("naf_label").str.to_lowercase(),
        "o": pl.col("o"),
        "p": pl.col("p"),
    }
    for signal_type, variants in ARTICLE_TEMPLATES.items():
        for i, (title_template, text_template) in enumerate(variants):
            chosen = (pl.col("signal_type") == signal_type) & (pl.col("variant") % len(variants) == i)
            title = pl.when(chosen).then(_template(title_template, fields)).otherwise(title)
            text = pl.when(chosen).then(_template(text_template, fields)).otherwise(text)
    record = pl.struct(
        id="article_id",
        url=pl.format(
            "https://www.{}/entreprises/{}.html", "domain", pl.col("article_id").str.to_lowercase()
        ),
        published_at=pl.col("published").dt.to_string("%Y-%m-%dT%H:%M:%S%:z"),
        title=title,
        text=text,
        source="source",
        sirens=pl.when("has_sirens").then(pl.concat_list("siren")),
    ).struct.json_encode()
    lines = articles.select(record).to_series()
    # A few lines cut in the middle (a crawler dying mid-write): broken JSON.
    broken = np.sort(rng.choice(m, size=min(m, max(2, m // 1000)), replace=False))
    lines = lines.scatter(broken, lines.gather(broken).str.slice(0, 60))
    links = articles.select(
        "article_id", "siren", event_type="signal_type", name_in_text="shown", carries_siren="has_sirens"
    )
    return _write_lines(lines, path), links


def _millions(amount: pl.Expr) -> pl.Expr:
    """EUR amount as French millions: 2500000 -> '2,5'."""
    tenths = (amount / 1e5).round().cast(pl.Int64).clip(1)
    return (
        pl.when(tenths % 10 == 0)
        .then((tenths // 10).cast(pl.String))
        .otherwise(pl.format("{},{}", tenths // 10, tenths % 10))
    )


def _template(template: str, fields: dict[str, pl.Expr]) -> pl.Expr:
    """A '{x}' template as a Polars string expression."""
    parts: list[pl.Expr] = []
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        key, _, rest = after.partition("}")
        parts += [pl.lit(before), fields[key]]
    return pl.concat_str([*parts, pl.lit(rest)])


def _write_propensity(firms: pl.DataFrame, hazard: np.ndarray, clock: _Clock, path: Path) -> int:
    """truth/propensity.parquet: (siren, month, monthly_hazard) for every active company-month, written
    month by month so 1,000,000 companies never hold the long table in memory."""
    schema = pa.schema([("siren", pa.string()), ("month", pa.date32()), ("monthly_hazard", pa.float64())])
    sirens = firms["siren"].to_arrow()
    total = 0
    with pq.ParquetWriter(path, schema) as writer:
        for m, month in enumerate(clock.month_starts):
            active = np.flatnonzero(hazard[:, m] > 0)
            writer.write_table(
                pa.table(
                    {
                        "siren": sirens.take(pa.array(active)),
                        "month": pa.array(np.full(active.size, np.datetime64(month, "D"))),
                        "monthly_hazard": pa.array(hazard[active, m].astype(np.float64)),
                    },
                    schema=schema,
                )
            )
            total += active.size
    return total
