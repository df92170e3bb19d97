"""A synthetic serving copy with the contract's tables, for the API's tests and its benchmark.

Built set-wise (NumPy, Polars, DuckDB SQL), so 1,000,000 companies take well under a minute. The
model is a real ServedModel (a small XGBoost booster or a rules prior) over the catalog's model
features; stored reasons come from the scoring explain function, exact for the top-ranked companies
and approximate for the rest, like the pipeline's serving copy. Written to a temporary file in the
target's folder and moved over the target with os.replace, like the pipeline's publish.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ose_assets.features.catalog import FEATURES_BY_NAME, model_feature_names
from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.explain import explain
from ose_assets.scoring.publish import company_scores_query, index_serving_tables, name_tokens_query
from ose_assets.scoring.ranking import band_expr
from ose_assets.scoring.responses import TABLE as RESPONSES_TABLE
from ose_assets.scoring.responses import score_responses_query, top_reason_rank
from ose_assets.scoring.scores import COMPANY_SCORE_COLUMNS, first_reasons
from ose_assets.settings import model_config

REGIONS = {
    "11": "Île-de-France",
    "53": "Bretagne",
    "84": "Auvergne-Rhône-Alpes",
    "93": "Provence-Alpes-Côte d'Azur",
}
# Départements of each region above; headcount bands (SIRENE codes): drawn from the SIREN, not the rng,
# so the other columns stay the same for a given seed.
DEPARTEMENTS = {"11": ("75", "92"), "53": ("29", "35"), "84": ("38", "69"), "93": ("06", "13")}
HEADCOUNT_BANDS = tuple("NN 00 01 02 03 11 12 21 22 31 32 41 42 51 52 53".split())
NAF_SECTIONS = ("C", "F", "G", "J", "M")
CATEGORY_VALUES = {
    "category": ["PME", "ETI", "GE"],
    "legal_form_family": ["SAS", "SARL", "SA", "sole_trader", "other"],
    "naf_section": list(NAF_SECTIONS),
    "naf_division": ["10", "25", "43", "47", "62", "70"],
    "region_code": list(REGIONS),
    "latest_article_event_type": ["fundraising", "hiring", "other"],
}
# Company names like French ones (accents, elisions, hyphens): "{activity} {surname} {brand}", drawn from
# the SIREN. An activity is shared by about 1 company in 37, a surname by 1 in 40, a brand by 1 in 65,536.
ACTIVITIES = (
    "Boulangerie Pâtisserie Café Hôtel Garage Société Atelier Cabinet Transports Menuiserie Électricité "
    "Plomberie Pharmacie Librairie Épicerie Brasserie Crèmerie Fromagerie Charcuterie Imprimerie "
    "Quincaillerie Boucherie Maçonnerie Coiffure Fleuriste Auto-école Bâtiment Conseil Informatique "
    "Immobilière Restaurant Cave Agence Studio Laboratoire Clinique Distribution"
).split()
SURNAMES = (
    "Dupont Lefèvre Martin Gérard Noël Benoît Müller Clément André François Rivière Guérin Durand Moreau "
    "Lambert Fontaine Rousseau Mercier Chevalier Legrand Perrin Dubois Lemaître Barbier Roussel Faure "
    "Garnier Blanchard Lacroix Bérenger Hébert Ménard Pérez Girard Bonnet d'Arcy l'Hermite "
    "Saint-Just Le-Gall Lenôtre"
).split()
BRAND_SYLLABLES = "ba lé mo ri tè nu ca dé fi go ju ké la mé no pa".split()
HISTORY_RUNS = 3
EVIDENCE_PER_COMPANY = 2


def luhn_sirens(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct Luhn-valid SIRENs (9-digit strings), spread over the whole range."""
    step = 10**8 // n
    base = np.arange(n, dtype=np.int64) * step + rng.integers(0, step, n)
    digits = (base[:, None] // 10 ** np.arange(7, -1, -1)) % 10  # d1..d8
    doubled = digits[:, 1::2] * 2  # d2, d4, d6, d8: every second digit from the right of the 9-digit number
    total = digits[:, 0::2].sum(axis=1) + (doubled // 10 + doubled % 10).sum(axis=1)
    check = (10 - total % 10) % 10
    return np.char.zfill((base * 10 + check).astype(str), 9)


def synthetic_names(sirens) -> list[str]:
    """A French-looking company name per SIREN, drawn from its digits."""
    names = []
    for siren in sirens:
        n = int(siren[:8])
        brand = "".join(BRAND_SYLLABLES[(n // 16**i) % 16] for i in range(4))
        names.append(
            f"{ACTIVITIES[n % len(ACTIVITIES)]} {SURNAMES[(n // 37) % len(SURNAMES)]} {brand.capitalize()}"
        )
    return names


def _features(sirens: np.ndarray, as_of: dt.date, rng: np.random.Generator) -> pl.DataFrame:
    n = len(sirens)
    columns: dict[str, object] = {"siren": sirens, "as_of_date": [as_of] * n}
    for name in model_feature_names():
        dtype = FEATURES_BY_NAME[name].dtype
        if dtype == "category":
            values = CATEGORY_VALUES[name]
            columns[name] = np.array(values)[rng.integers(0, len(values), n)]
        elif dtype == "bool":
            columns[name] = rng.random(n) < 0.03
        elif dtype == "int":
            counts = rng.poisson(1.5, n).astype(float)
            counts[rng.random(n) < 0.1] = np.nan
            columns[name] = counts
        else:
            columns[name] = rng.normal(0.0, 1.0, n)
    frame = pl.DataFrame(columns)
    return frame.with_columns(
        [
            pl.col(name).fill_nan(None).cast(pl.Int64)
            for name in model_feature_names()
            if FEATURES_BY_NAME[name].dtype == "int"
        ]
    )


def synthetic_model(features: pl.DataFrame, kind: str, version: str, seed: int) -> ServedModel:
    """A small model whose score rises with positive signals and falls with red flags."""
    names = model_feature_names()
    categories = {n: CATEGORY_VALUES[n] for n in names if FEATURES_BY_NAME[n].dtype == "category"}
    weights = {
        "positive_signals_12m": 0.6,
        "decayed_signal_intensity": 0.5,
        "red_flag_count": -0.8,
        "company_age_years": 0.2,
    }
    prior = {
        "intercept": -2.5,
        "weights": weights,
        "center": {n: 1.0 for n in weights},
        "scale": {n: 1.0 for n in weights},
    }
    rules = ServedModel(
        kind="rules_prior",
        feature_names=names,
        categories=categories,
        prior=prior,
        version=version,
        run_id=f"run-{version}",
    )
    if kind == "rules_prior":
        return rules
    import xgboost as xgb

    sample = features.head(20_000)
    x = rules.matrix(sample)
    rng = np.random.default_rng(seed)
    label = (rng.random(sample.height) < rules.predict_score(sample) / 100).astype(float)
    booster = xgb.train(
        {"max_depth": 4, "eta": 0.3, "objective": "binary:logistic", "nthread": 2},
        xgb.DMatrix(x, label=label, feature_names=names),
        num_boost_round=40,
    )
    return ServedModel(
        kind="xgboost",
        feature_names=names,
        categories=categories,
        booster_raw=bytes(booster.save_raw("ubj")),
        version=version,
        run_id=f"run-{version}",
    )


def build_serving_copy(
    path: Path,
    companies: int = 500,
    model_version: str = "1",
    model_kind: str = "xgboost",
    seed: int = 7,
    as_of: dt.date = dt.date(2026, 11, 23),
    exact_top_n: int | None = 50,
    score_offset: float = 0.0,
) -> pl.DataFrame:
    """Write a serving copy at `path` (atomically) and return its company_scores frame.

    score_offset shifts every stored score, so two copies built from one seed differ in scores.
    The last company is left out of every table: a valid SIREN that is not scored.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    sirens = luhn_sirens(companies + 1, rng)[:-1]
    features = _features(sirens, as_of, rng)
    model = synthetic_model(features, model_kind, model_version, seed)
    scored_at = dt.datetime.combine(as_of, dt.time(6, 0))
    score = np.round(np.clip(model.predict_score(features) + score_offset, 0, 100), 1)
    gated = features.get_column("has_collective_procedure") | features.get_column("is_radiated")
    scores = (
        features.select("siren", "region_code", "naf_section", "naf_division")
        .with_columns(
            score=pl.Series(score.astype(np.float64)).round(1),
            exclusion_reason=pl.when(pl.Series(gated)).then(pl.lit("collective_procedure")),
            name=pl.Series(synthetic_names(sirens)),
        )
        .with_columns(band=band_expr(), is_eligible=pl.col("exclusion_reason").is_null())
        .sort(["is_eligible", "score", "siren"], descending=[True, True, False])
        .with_columns(
            rank=pl.when(pl.col("is_eligible")).then(pl.int_range(1, pl.len() + 1, dtype=pl.Int32)),
            region_name=pl.col("region_code").replace_strict(REGIONS),
            departement_code=pl.col("region_code")
            .replace_strict({code: list(codes) for code, codes in DEPARTEMENTS.items()})
            .list.get(pl.col("siren").str.slice(5, 3).cast(pl.Int64) % 2),
            headcount_band=pl.lit(pl.Series(HEADCOUNT_BANDS)).get(
                pl.col("siren").str.slice(2, 3).cast(pl.Int64) % len(HEADCOUNT_BANDS)
            ),
            naf_code=pl.col("naf_division") + ".01Z",
            naf_label=pl.format("Activité {}", pl.col("naf_division")),
            model_version=pl.lit(model_version),
            model_kind=pl.lit(model.kind),
            as_of_date=pl.lit(as_of),
            scored_at=pl.lit(scored_at),
            score_change=pl.lit(score_offset),
            trend=pl.lit("improving" if score_offset > 0 else "steady"),
            last_positive_signal_date=pl.lit(as_of - dt.timedelta(days=10)),
        )
    )
    # Like scoring's exact_sirens: everyone when exact_top_n is None, else the top ranks.
    exact = (
        pl.Series([True] * scores.height)
        if exact_top_n is None
        else scores.get_column("rank").fill_null(exact_top_n + 1) <= exact_top_n
    )
    scores = scores.with_columns(
        explanation_method=pl.when(pl.Series(exact)).then(pl.lit("exact")).otherwise(pl.lit("approximate"))
    )
    evidence = _evidence(sirens, as_of, rng)
    exact_sirens = scores.filter(pl.col("explanation_method") == "exact").select("siren")
    reasons = pl.concat(
        [
            explain(model, features.join(exact_sirens, on="siren", how=how), evidence, exact=is_exact)
            for how, is_exact in (("semi", True), ("anti", False))
        ]
    )
    scores = scores.join(first_reasons(reasons), on="siren", how="left")
    _write(path, model, features, scores, reasons, evidence, as_of, scored_at)
    return scores


def _evidence(sirens: np.ndarray, as_of: dt.date, rng: np.random.Generator) -> pl.DataFrame:
    vocabulary = model_config()["signal_types"]
    types = np.array(list(vocabulary))
    n = len(sirens) * EVIDENCE_PER_COMPANY
    chosen = types[rng.integers(0, len(types), n)]
    return pl.DataFrame(
        {
            "siren": np.repeat(sirens, EVIDENCE_PER_COMPANY),
            "signal_type": chosen,
            "signal_family": [vocabulary[t]["family"] for t in chosen],
            "polarity": pl.Series([vocabulary[t]["polarity"] for t in chosen], dtype=pl.Int8),
            "event_date": [as_of - dt.timedelta(days=int(d)) for d in rng.integers(1, 300, n)],
            "kind": "signal",
            "source": "press_release",
            "source_ref": [f"ref-{i}" for i in range(n)],
            "source_url": [f"https://example.org/news/{i}" for i in range(n)],
            "title": None,
        }
    )


def _write(path, model, features, scores, reasons, evidence, as_of, scored_at) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    company_scores = scores.select(COMPANY_SCORE_COLUMNS).to_arrow()
    reasons_arrow, evidence_arrow, features_arrow = (
        reasons.to_arrow(),
        evidence.to_arrow(),
        features.to_arrow(),
    )
    with duckdb.connect(str(temporary)) as con:
        con.execute("set enable_progress_bar = false")
        con.register("company_scores_frame", company_scores)
        con.register("reasons_frame", reasons_arrow)
        con.register("evidence_frame", evidence_arrow)
        con.register("features_frame", features_arrow)
        # The publish's physical design (ose_assets.scoring.publish): rows sorted by siren (company_scores
        # by rank), ART on siren, the name index.
        con.execute(f"create table company_scores as {company_scores_query('company_scores_frame')}")
        con.execute("create table score_reasons as select * from reasons_frame order by siren")
        con.execute("create table company_features as select * from features_frame order by siren")
        con.execute("create table signal_evidence as select * from evidence_frame order by siren")
        con.execute(
            """create table score_history as
            select siren, ?::timestamp - to_days((k * 7)::int) as scored_at,
                   ?::date - (k * 7)::int as as_of_date,
                   greatest(score - k, 0) as score, band, model_version
            from company_scores, range(?) t(k) order by siren, as_of_date""",
            [scored_at, as_of, HISTORY_RUNS],
        )
        con.execute(
            """create table top_opportunities as
            with eligible as (select * from company_scores where is_eligible),
            segments as (
                select 'overall' as segment, * from eligible
                union all select 'region:' || region_code, * from eligible
                union all select 'naf_section:' || naf_section, * from eligible
            )
            select segment, row_number() over (partition by segment order by rank) as segment_rank,
                   siren, name, score, band, region_code, naf_section
            from segments qualify segment_rank <= 10""",
        )
        con.execute(
            """create table served_model as
            select ? as model_version, ? as model_kind, ? as run_id, ?::blob as model_bytes,
                   ?::date as as_of_date,
                   ?::timestamp as scored_at, timezone('UTC', now()) as published_at,
                   (select count(*) from company_scores) as scored_companies""",
            [model.version, model.kind, model.run_id, model.to_bytes(), as_of, scored_at],
        )
        con.execute(f"create table name_tokens as {name_tokens_query('main')}")
        query = score_responses_query("main", top_reason_rank(con, "main"))
        con.execute(f"create table {RESPONSES_TABLE} as {query}")
        index_serving_tables(con)
        con.execute("checkpoint")
    os.replace(temporary, path)
