"""Scoring benchmark: prediction, exact TreeSHAP and approximate contributions at 200k and 1M companies.

    ose bench scoring [--sizes 200000 1000000] [--trees 200] [--depth 6] [--exact-top-n N]

Synthetic companies over the catalog's model features, an XGBoost model of realistic size, and a
full scoring run (score_companies: load, predict, exact TreeSHAP, approximate contributions in chunks
when capped, evidence, writes) on a temporary DuckDB warehouse. Not collected by pytest. --exact-top-n
caps exact TreeSHAP to ranked companies plus the top N (OSE_EXACT_EXPLANATIONS_TOP_N; default 10,000 here,
every company in the pipeline): exact TreeSHAP of this depth-6 model for 1,000,000 companies takes ~17 min.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ose_assets.features.catalog import FEATURE_CATALOG, model_feature_names
from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.ranking import GATES, exclusion_expr
from ose_assets.scoring.scores import exact_sirens, score_companies
from ose_assets.settings import model_config

AS_OF = dt.date(2026, 6, 30)
CATEGORY_VALUES = {
    "category": ["PME", "ETI", "GE"],
    "legal_form_family": ["SAS", "SARL", "SA", "sole_trader", "other"],
    "naf_section": list("ABCDEFGHIJKLMNOPQRS"),
    "naf_division": [f"{d:02d}" for d in range(1, 100)],
    "region_code": ["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"],
    "latest_article_event_type": ["fundraising", "hiring", "contract_win", "layoffs", "other"],
}


def synthetic_features(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {
        "siren": np.char.zfill(np.arange(n).astype(str), 9),
        "as_of_date": [AS_OF] * n,
    }
    for f in FEATURE_CATALOG:
        if f.dtype == "int":
            columns[f.name] = rng.poisson(0.7, n)
        elif f.dtype == "float":
            columns[f.name] = rng.gamma(1.5, 2.0, n)
        elif f.dtype == "bool":
            columns[f.name] = rng.random(n) < 0.02
        elif f.dtype == "category":
            columns[f.name] = rng.choice(CATEGORY_VALUES[f.name], n)
        else:
            days = rng.integers(0, 700, n).astype("timedelta64[D]")
            columns[f.name] = pl.Series(np.datetime64(AS_OF, "D") - days).cast(pl.Date)
    return pl.DataFrame(columns)


def train_model(features: pl.DataFrame, trees: int, depth: int) -> ServedModel:
    import xgboost as xgb

    names = model_feature_names()
    proto = ServedModel(
        kind="xgboost",
        feature_names=names,
        categories={k: v for k, v in CATEGORY_VALUES.items() if k in names},
    )
    sample = features.head(200_000)
    x = proto.matrix(sample)
    rng = np.random.default_rng(1)
    logit = 0.6 * np.nan_to_num(x[:, :10]).sum(axis=1) - 4 + rng.normal(0, 1, len(x))
    booster = xgb.train(
        {
            "max_depth": depth,
            "eta": 0.05,
            "objective": "binary:logistic",
            "nthread": 2,
            "tree_method": "hist",
        },
        xgb.DMatrix(x, label=(logit > 0).astype(float), feature_names=names),
        trees,
    )
    return ServedModel(
        kind="xgboost",
        feature_names=names,
        categories=proto.categories,
        booster_raw=bytes(booster.save_raw("ubj")),
        version="bench",
    )


def build_warehouse(
    path: Path, features: pl.DataFrame, signals_per_company: int
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema features; create schema normalized")
    con.register("features_frame", features.to_arrow())
    con.execute("create table features.company_features as select * from features_frame")
    con.unregister("features_frame")
    con.execute(
        """create table normalized.companies as select siren, 'Société ' || siren as name,
        '62.01Z' as naf_code, 'Programmation informatique' as naf_label, naf_section, region_code,
        'région ' || region_code as region_name, null::varchar as departement_code,
        null::varchar as headcount_band from features.company_features"""
    )
    types = list(model_config()["signal_types"])
    con.execute(
        f"""create table normalized.signals as
        select 'sig-' || siren || '-' || i as signal_id, siren,
            date '{AS_OF}' - cast(hash(siren, i) % 700 as integer) as event_date,
            list_extract({types}, cast(hash(i, siren) % {len(types)} as integer) + 1) as signal_type,
            null::varchar as signal_family, 1::tinyint as polarity, null::double as magnitude,
            'france_travail' as source, 'ref-' || siren || '-' || i as source_ref,
            'https://example.org/' || siren || '/' || i as source_url, '' as description
        from features.company_features, range({signals_per_company}) r(i)"""
    )
    con.execute(
        """create table normalized.articles (article_id varchar, url varchar, published_date date,
            published_at timestamp, title varchar, text varchar, source varchar, event_type varchar,
            polarity tinyint);
        create table normalized.article_companies (article_id varchar, siren varchar, match_method varchar,
            confidence double)"""
    )
    return con


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run(n: int, trees: int, depth: int, signals_per_company: int, top_n: int | None) -> dict[str, float]:
    features = synthetic_features(n)
    model, train_seconds = timed(lambda: train_model(features, trees, depth))
    figures: dict[str, float] = {"companies": n, "train_s": round(train_seconds, 1)}
    score, figures["predict_s"] = timed(lambda: model.predict_score(features))
    scores = features.select(
        "siren",
        "region_code",
        "naf_section",
        "last_positive_signal_date",
        score=pl.Series(np.round(score.astype(np.float64), 1)),
        is_eligible=exclusion_expr(GATES).is_null(),
    )
    exact = exact_sirens(scores, top_n)
    exact_rows = features.filter(pl.col("siren").is_in(exact.implode()))
    _, exact_seconds = timed(lambda: model.contributions(exact_rows, exact=True))
    figures.update(exact_rows=exact_rows.height, exact_shap_s=exact_seconds)
    figures["exact_rows_per_s"] = exact_rows.height / exact_seconds
    rest = features.filter(~pl.col("siren").is_in(exact.implode()))
    chunk = 200_000
    _, approx_seconds = timed(
        lambda: [model.contributions(rest.slice(i, chunk), exact=False) for i in range(0, rest.height, chunk)]
    )
    figures.update(
        approx_rows=rest.height, approx_s=approx_seconds, approx_rows_per_s=rest.height / approx_seconds
    )
    with tempfile.TemporaryDirectory() as directory:
        con, build_seconds = timed(
            lambda: build_warehouse(Path(directory) / "bench.duckdb", features, signals_per_company)
        )
        figures["build_warehouse_s"] = build_seconds
        scoring, figures["score_companies_s"] = timed(lambda: score_companies(con, model, top_n))
        figures.update({f"score_companies.{k}_s": v for k, v in scoring.seconds.items()})
        figures["reasons_rows"] = scoring.reasons
        con.close()
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--signals-per-company", type=int, default=5)
    parser.add_argument("--exact-top-n", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(f"model: {args.trees} trees, depth {args.depth}, {len(model_feature_names())} features")
    for n in args.sizes:
        figures = run(n, args.trees, args.depth, args.signals_per_company, args.exact_top_n)
        print(" | ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    main()
