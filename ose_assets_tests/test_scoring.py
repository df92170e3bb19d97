"""Scoring: reasons, evidence, gating, ties, segments, history and trend, exact/approximate split.

Small hand-made tables in a tmp DuckDB file and tiny models built here (a rules prior whose
contributions are known, and a small XGBoost booster); the builders are reused by test_scoring_assets.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import polars as pl
import pytest

from ose_assets.features.catalog import FEATURE_CATALOG, lookback_months, model_feature_names
from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.evidence import EVIDENCE_COLUMNS, attach_evidence, signal_evidence_query
from ose_assets.scoring.explain import REASON_SCHEMA, explain, top_factors
from ose_assets.scoring.history import append_history, history_context
from ose_assets.scoring.ranking import (
    band_expr,
    build_top_opportunities,
    exclusion_expr,
    rank_segments,
    segment_count_mismatches,
)
from ose_assets.scoring.reasons import SIGNAL_TYPE_LABELS, TEMPLATES, render_reasons
from ose_assets.scoring.scores import score_companies
from ose_assets.settings import OSESettings, model_config

AS_OF = dt.date(2026, 6, 30)
CATEGORIES = {
    "category": ["PME", "ETI", "GE"],
    "legal_form_family": ["SAS", "SARL", "SA", "sole_trader", "other"],
    "naf_section": ["C", "F", "J"],
    "naf_division": ["10", "41", "62"],
    "region_code": ["11", "84", "93"],
    "latest_article_event_type": ["fundraising", "hiring", "other"],
}
# The rules prior: a transparent model whose contributions have known signs.
PRIOR_WEIGHTS = {
    "hiring_signals_3m": 0.6,
    "funding_signals_12m": 0.8,
    "has_collective_procedure": -2.0,
    "days_since_last_signal": -0.3,
    "company_age_years": 0.2,
}


# ---- builders (shared with test_scoring_assets) ----------------------------------------------------
def make_features(n: int, seed: int = 0, as_of: dt.date = AS_OF) -> pl.DataFrame:
    """A features.company_features frame with every catalog column: quiet companies, random attributes."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {"siren": [f"{100000000 + i}" for i in range(n)], "as_of_date": [as_of] * n}
    for f in FEATURE_CATALOG:
        if f.dtype == "int":
            columns[f.name] = pl.Series(rng.poisson(0.5, n), dtype=pl.Int64)
        elif f.dtype == "float":
            columns[f.name] = rng.random(n) * 5
        elif f.dtype == "bool":
            columns[f.name] = np.zeros(n, dtype=bool)
        elif f.dtype == "category":
            columns[f.name] = rng.choice(CATEGORIES[f.name], n)
        else:
            columns[f.name] = pl.Series([None] * n, dtype=pl.Date)
    return pl.DataFrame(columns)


def rules_model(version: str = "3") -> ServedModel:
    names = model_feature_names()
    return ServedModel(
        kind="rules_prior",
        feature_names=names,
        categories={name: values for name, values in CATEGORIES.items() if name in names},
        prior={
            "intercept": -2.0,
            "weights": PRIOR_WEIGHTS,
            "center": {"days_since_last_signal": 180.0, "company_age_years": 2.0},
            "scale": {"days_since_last_signal": 90.0},
        },
        version=version,
        run_id="run-rules",
    )


def xgb_model(features: pl.DataFrame, trees: int = 20, depth: int = 3, version: str = "5") -> ServedModel:
    import xgboost as xgb

    proto = rules_model()
    x = proto.matrix(features)
    names = proto.feature_names
    rng = np.random.default_rng(1)
    logit = x[:, names.index("hiring_signals_3m")] + x[:, names.index("funding_signals_12m")] - 1.0
    y = (logit + rng.normal(0, 1, len(x)) > 0).astype(float)
    booster = xgb.train(
        {"max_depth": depth, "eta": 0.3, "objective": "binary:logistic", "nthread": 2},
        xgb.DMatrix(x, label=y, feature_names=names),
        trees,
    )
    return ServedModel(
        kind="xgboost",
        feature_names=names,
        categories=proto.categories,
        booster_raw=bytes(booster.save_raw("ubj")),
        version=version,
        run_id="run-xgb",
    )


def make_companies(features: pl.DataFrame) -> pl.DataFrame:
    return features.select(
        "siren",
        pl.format("Société {}", pl.col("siren")).alias("name"),
        pl.lit("62.01Z").alias("naf_code"),
        pl.lit("Programmation informatique").alias("naf_label"),
        "naf_section",
        pl.lit("Information et communication").alias("naf_section_label"),
        "region_code",
        pl.col("region_code")
        .replace_strict({"11": "Île-de-France", "84": "Auvergne-Rhône-Alpes", "93": "PACA"}, default="?")
        .alias("region_name"),
        pl.col("region_code")
        .replace_strict({"11": "75", "84": "69", "93": "13"}, default=None)
        .alias("departement_code"),
        pl.lit("12").alias("headcount_band"),
    )


def signal(siren, day, signal_type, ref, source="france_travail", url=None):
    spec = model_config()["signal_types"][signal_type]
    return {
        "signal_id": f"sig-{ref}",
        "siren": siren,
        "event_date": day,
        "signal_type": signal_type,
        "signal_family": spec["family"],
        "polarity": spec["polarity"],
        "magnitude": None,
        "source": source,
        "source_ref": ref,
        "source_url": url,
        "description": signal_type,
    }


SIGNAL_SCHEMA = {
    "signal_id": pl.String,
    "siren": pl.String,
    "event_date": pl.Date,
    "signal_type": pl.String,
    "signal_family": pl.String,
    "polarity": pl.Int8,
    "magnitude": pl.Float64,
    "source": pl.String,
    "source_ref": pl.String,
    "source_url": pl.String,
    "description": pl.String,
}


def write_warehouse(path, features, signals=(), articles=(), links=()) -> duckdb.DuckDBPyConnection:
    """A warehouse with features.company_features and the normalized tables scoring reads."""
    con = duckdb.connect(str(path))
    frames = {
        "features.company_features": features,
        "normalized.companies": make_companies(features),
        "normalized.signals": pl.DataFrame(list(signals), schema=SIGNAL_SCHEMA),
        "normalized.articles": pl.DataFrame(
            list(articles),
            schema={
                "article_id": pl.String,
                "url": pl.String,
                "published_date": pl.Date,
                "published_at": pl.Datetime("us"),
                "title": pl.String,
                "text": pl.String,
                "source": pl.String,
                "event_type": pl.String,
                "polarity": pl.Int8,
            },
        ),
        "normalized.article_companies": pl.DataFrame(
            list(links),
            schema={
                "article_id": pl.String,
                "siren": pl.String,
                "match_method": pl.String,
                "confidence": pl.Float64,
            },
        ),
    }
    for table, frame in frames.items():
        con.execute(f"create schema if not exists {table.split('.')[0]}")
        arrow_frame = frame.to_arrow()  # noqa: F841
        con.execute(f"create or replace table {table} as select * from arrow_frame")
    return con


def reasons_frame(rows: list[dict]) -> pl.DataFrame:
    base = {"value": None, "feature_value": None, "evidence_date": None, "evidence_type": None}
    return pl.DataFrame(
        [{**base, **row} for row in rows],
        schema={
            "feature": pl.String,
            "value": pl.Float64,
            "feature_value": pl.String,
            "evidence_date": pl.Date,
            "evidence_type": pl.String,
        },
    )


# ---- reasons --------------------------------------------------------------------------------------
def test_every_model_feature_has_french_and_english_templates():
    for name in model_feature_names():
        template = TEMPLATES.get(name)
        assert template is not None, f"no reason template for model feature {name}"
        rendered = render_reasons(reasons_frame([{"feature": name, "value": 1.0, "feature_value": "1"}]))
        assert rendered["reason_fr"][0] and rendered["reason_en"][0], name
    assert set(model_config()["signal_types"]) <= set(SIGNAL_TYPE_LABELS)


def test_reason_sentences_read_like_a_salesperson_would_say_them():
    rows = [
        {"feature": "hiring_signals_3m", "value": 3.0},
        {"feature": "hiring_signals_3m", "value": 1.0},
        {"feature": "hiring_signals_3m", "value": 0.0},
        {
            "feature": "has_collective_procedure",
            "value": 1.0,
            "evidence_date": dt.date(2026, 3, 12),
            "evidence_type": "receivership",
        },
        {"feature": "has_collective_procedure", "value": 1.0},
        {"feature": "company_age_years", "value": 2.7},
        {"feature": "days_since_last_signal", "value": 430.0},
        {"feature": "days_since_last_signal", "value": 12.0},
        {"feature": "days_since_last_signal", "value": None},
        {"feature": "latest_revenue", "value": 2_340_000.0},
        {"feature": "region_code", "feature_value": "11", "value": 0.0},
        {"feature": "headcount_band_rank", "value": 6.0},
    ]
    rendered = render_reasons(reasons_frame(rows).with_row_index()).sort("index")
    assert rendered["reason_fr"].to_list() == [
        "3 offres d'emploi publiées ces 3 derniers mois",
        "1 offre d'emploi publiée ces 3 derniers mois",
        "Aucune offre d'emploi publiée ces 3 derniers mois",
        "Procédure de redressement judiciaire ouverte le 12/03/2026",
        "Procédure collective en cours",
        "Entreprise créée il y a 2 ans",
        "Aucun signal depuis 14 mois",
        "Dernier signal il y a 12 jours",
        f"Aucun signal depuis {lookback_months()} mois",
        "Chiffre d'affaires de 2,3 M€",
        "Siège en région Île-de-France",
        "Effectif : 20 à 49 salariés",
    ]
    assert rendered["reason_en"][0] == "3 job postings in the last 3 months"
    assert rendered["reason_en"][3] == "Receivership (redressement judiciaire) opened on 2026-03-12"


def test_top_factors_are_signed_ordered_and_vectorised():
    contributions = np.array(
        [
            [5.0, -1.0, 0.2, -3.0, 0.001, 2.0],
            [-0.5, -0.2, -0.1, 0.0, 0.0, 0.0],
        ]
    )
    rows, columns, is_up, rank, points = top_factors(contributions, 3)
    first = [
        (int(c), bool(u), int(r)) for row, c, u, r in zip(rows, columns, is_up, rank, strict=True) if row == 0
    ]
    assert first == [(0, True, 1), (5, True, 2), (2, True, 3), (3, False, 1), (1, False, 2)]
    second = [
        (int(c), bool(u), int(r)) for row, c, u, r in zip(rows, columns, is_up, rank, strict=True) if row == 1
    ]
    assert second == [(0, False, 1), (1, False, 2), (2, False, 3)]  # no positive factor: no 'up' reason
    assert np.all(points[is_up] > 0) and np.all(points[~is_up] < 0)


def test_explain_reasons_follow_contributions_and_differ_between_companies():
    features = make_features(3).with_columns(
        hiring_signals_3m=pl.Series([6, 0, 0], dtype=pl.Int64),
        funding_signals_12m=pl.Series([0, 3, 0], dtype=pl.Int64),
        has_collective_procedure=pl.Series([False, False, True]),
    )
    model = rules_model()
    evidence = pl.DataFrame(schema=EVIDENCE_COLUMNS)
    reasons = explain(model, features, evidence, exact=True)
    assert reasons.schema == pl.Schema(REASON_SCHEMA)
    top_up = reasons.filter(direction="up", reason_rank=1).select("siren", "feature").rows()
    assert top_up[:2] == [("100000000", "hiring_signals_3m"), ("100000001", "funding_signals_12m")]
    down = reasons.filter(siren="100000002", direction="down", reason_rank=1).row(0, named=True)
    assert down["feature"] == "has_collective_procedure" and down["contribution_points"] < 0
    assert down["reason_fr"] == "Procédure collective en cours"
    # Signs and order: up reasons positive and decreasing, down reasons negative and increasing.
    for (_, direction), group in reasons.group_by("siren", "direction"):
        points = group.sort("reason_rank")["contribution_points"].to_list()
        assert all(p > 0 for p in points) if direction == "up" else all(p < 0 for p in points)
        assert points == sorted(points, reverse=direction == "up")
    per_company = (
        reasons.group_by("siren").agg(pl.col("reason_fr").sort()).sort("siren")["reason_fr"].to_list()
    )
    assert len({tuple(r) for r in per_company}) == 3
    # Contributions sum to score minus base (the model's own guarantee, surfaced as points).
    contributions, base = model.contributions(features)
    assert np.allclose(contributions.sum(axis=1) + base, model.predict_score(features))


# ---- evidence -------------------------------------------------------------------------------------
def test_evidence_lists_most_recent_records_dated_up_to_as_of(tmp_path):
    features = make_features(2)
    siren = features["siren"][0]
    signals = [
        signal(siren, dt.date(2026, 6, 1), "hiring", "ft-1", url="https://ft/1"),
        signal(siren, dt.date(2026, 6, 20), "hiring", "ft-2"),
        signal(siren, dt.date(2026, 5, 10), "hiring", "ft-3"),
        signal(siren, dt.date(2026, 6, 25), "hiring", "ft-4"),
        signal(siren, dt.date(2026, 7, 5), "hiring", "ft-future"),  # after the as-of date
        signal(siren, dt.date(2025, 1, 5), "hiring", "ft-old"),  # outside every window but 'all'
        signal(siren, dt.date(2026, 3, 12), "receivership", "A202600123", source="bodacc"),
    ]
    articles = [
        {
            "article_id": "art-1",
            "url": "https://news/1",
            "published_date": dt.date(2026, 6, 2),
            "published_at": dt.datetime(2026, 6, 2, 8),
            "title": "t",
            "text": "x",
            "source": "presse",
            "event_type": "hiring",
            "polarity": 1,
        },
        {
            "article_id": "art-2",
            "url": "https://news/2",
            "published_date": dt.date(2026, 6, 3),
            "published_at": dt.datetime(2026, 6, 3, 8),
            "title": "t",
            "text": "x",
            "source": "presse",
            "event_type": "layoffs",
            "polarity": -1,
        },
        {
            "article_id": "art-weak",
            "url": "https://news/3",
            "published_date": dt.date(2026, 6, 4),
            "published_at": dt.datetime(2026, 6, 4, 8),
            "title": "t",
            "text": "x",
            "source": "presse",
            "event_type": "other",
            "polarity": 0,
        },
    ]
    links = [
        {"article_id": "art-1", "siren": siren, "match_method": "siren", "confidence": 1.0},
        {"article_id": "art-2", "siren": siren, "match_method": "exact_name", "confidence": 0.95},
        {"article_id": "art-weak", "siren": siren, "match_method": "fuzzy_name", "confidence": 0.5},
    ]
    con = write_warehouse(tmp_path / "w.duckdb", features, signals, articles, links)
    evidence = con.execute(signal_evidence_query(AS_OF)).pl()
    assert "ft-future" not in evidence["source_ref"].to_list()
    assert "art-weak" not in evidence["source_ref"].to_list()  # below press.min_link_confidence
    reasons = pl.DataFrame(
        {
            "reason_id": [0, 1, 2, 3, 4, 5],
            "siren": [siren] * 5 + [features["siren"][1]],
            "as_of_date": [AS_OF] * 6,
            "feature": [
                "hiring_signals_3m",
                "hiring_signals_12m",
                "has_collective_procedure",
                "negative_press_count_12m",
                "company_age_years",
                "hiring_signals_3m",
            ],
        }
    )
    attached = attach_evidence(reasons, evidence).sort("reason_id")
    parsed = [json.loads(text) for text in attached["evidence"]]
    assert [e["id"] for e in parsed[0]] == ["ft-4", "ft-2", "ft-1"]  # 3 most recent, none after as_of
    assert parsed[0][2]["url"] == "https://ft/1" and parsed[0][0]["date"] == "2026-06-25"
    assert {e["kind"] for e in parsed[0]} == {"signal"}
    assert [e["id"] for e in parsed[2]] == ["A202600123"] and parsed[2][0]["kind"] == "bodacc"
    assert (
        attached["evidence_date"][2] == dt.date(2026, 3, 12)
        and attached["evidence_type"][2] == "receivership"
    )
    assert [(e["id"], e["url"], e["kind"]) for e in parsed[3]] == [("art-2", "https://news/2", "article")]
    assert parsed[4] == [] and parsed[5] == []  # company attribute; a company without signals


# ---- ranking, gating, ties, segments --------------------------------------------------------------
def scores_frame(rows: list[tuple]) -> pl.DataFrame:
    """rows: (siren, score, region_code, naf_section, last_positive_signal_date,
    has_collective_procedure, is_radiated, is_closed[, open_opportunity])."""
    frame = pl.DataFrame(
        [(*row, *(False,) * (9 - len(row))) for row in rows],
        schema={
            "siren": pl.String,
            "score": pl.Float64,
            "region_code": pl.String,
            "naf_section": pl.String,
            "last_positive_signal_date": pl.Date,
            "has_collective_procedure": pl.Boolean,
            "is_radiated": pl.Boolean,
            "is_closed": pl.Boolean,
            "open_opportunity": pl.Boolean,
        },
        orient="row",
    )
    return frame.with_columns(exclusion_reason=exclusion_expr()).with_columns(
        is_eligible=pl.col("exclusion_reason").is_null()
    )


def test_red_flags_gate_companies_out_of_every_ranking():
    d = dt.date(2026, 6, 1)
    frame = scores_frame(
        [
            ("000000001", 99.0, "11", "J", d, True, False, False),
            ("000000002", 98.0, "11", "J", d, False, True, True),
            ("000000003", 97.0, "11", "J", d, False, False, True),
            ("000000004", 10.0, "11", "J", d, False, False, False),
        ]
    )
    assert frame["exclusion_reason"].to_list() == ["collective_procedure", "radiated,closed", "closed", None]
    ranked = rank_segments(frame)
    assert set(ranked["siren"]) == {"000000004"}
    assert sorted(ranked["segment"]) == ["naf_section:J", "overall", "region:11"]


def test_open_opportunity_keeps_the_score_and_leaves_every_ranking():
    d = dt.date(2026, 6, 1)
    frame = scores_frame(
        [
            ("000000001", 99.0, "11", "J", d, False, False, False, True),
            ("000000002", 98.0, "11", "J", d, True, False, False, True),
            ("000000003", 10.0, "11", "J", d, False, False, False, False),
        ]
    )
    assert frame["exclusion_reason"].to_list() == [
        "open_opportunity",
        "collective_procedure,open_opportunity",
        None,
    ]
    assert frame["score"].to_list() == [99.0, 98.0, 10.0]
    assert set(rank_segments(frame)["siren"]) == {"000000003"}


def test_ties_break_on_latest_positive_signal_then_siren():
    frame = scores_frame(
        [
            ("000000009", 50.0, "11", "J", dt.date(2026, 1, 1), False, False, False),
            ("000000005", 50.0, "11", "J", None, False, False, False),
            ("000000003", 50.0, "11", "J", dt.date(2026, 6, 1), False, False, False),
            ("000000001", 50.0, "11", "J", dt.date(2026, 1, 1), False, False, False),
            ("000000002", 60.0, "11", "J", None, False, False, False),
        ]
    )
    overall = rank_segments(frame).filter(segment="overall")
    assert overall["siren"].to_list() == ["000000002", "000000003", "000000001", "000000009", "000000005"]
    assert overall["segment_rank"].to_list() == [1, 2, 3, 4, 5]
    # Deterministic whatever the input order.
    assert rank_segments(frame.reverse()).equals(rank_segments(frame))


def test_segments_hold_top_10_or_all_eligible(tmp_path):
    rng = np.random.default_rng(3)
    rows = [
        (
            f"{i:09d}",
            float(rng.integers(0, 100)),
            "11" if i < 25 else "84",
            "J" if i % 2 else "C",
            None,
            i % 7 == 0,
            False,
            False,
        )
        for i in range(32)
    ]
    frame = scores_frame(rows).with_columns(
        band=band_expr(), name=pl.lit("x"), model_version=pl.lit("1"), as_of_date=pl.lit(AS_OF)
    )
    ranked = rank_segments(frame)
    sizes = dict(ranked.group_by("segment").len().rows())
    eligible_84 = frame.filter(pl.col("is_eligible") & (pl.col("region_code") == "84")).height
    assert sizes["overall"] == 10 and sizes["region:11"] == 10 and sizes["naf_section:J"] == 10
    assert sizes["region:84"] == eligible_84 < 10
    for segment, group in ranked.group_by("segment"):
        scores = frame.join(group, on="siren").sort("segment_rank")["score"].to_list()
        assert scores == sorted(scores, reverse=True), segment
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema scoring")
    arrow_frame = frame.with_columns(  # noqa: F841
        explanation_method=pl.lit("exact"), last_positive_signal_date=pl.lit(None, pl.Date)
    ).to_arrow()
    con.execute("create table scoring.company_scores as select * from arrow_frame")
    con.execute(
        """create table scoring.score_reasons as select siren, 'up' as direction, 1::tinyint as reason_rank,
        'Raison ' || siren as reason_fr, 'Reason ' || siren as reason_en from scoring.company_scores"""
    )
    assert build_top_opportunities(con) == ranked.height
    assert segment_count_mismatches(con).is_empty()
    top = con.execute(
        "select * from scoring.top_opportunities where segment = 'overall' order by segment_rank"
    ).pl()
    assert top["top_reasons_fr"][0] == f"Raison {top['siren'][0]}"
    con.execute("delete from scoring.top_opportunities where segment = 'region:11' and segment_rank = 10")
    assert segment_count_mismatches(con)["segment"].to_list() == ["region:11"]


def test_bands_follow_model_config_cut_offs():
    bounds = model_config()["bands"]
    scores = pl.DataFrame(
        {"score": [100.0, bounds["A"], bounds["A"] - 0.1, bounds["B"], bounds["C"] - 0.1, 0.0]}
    )
    assert scores.select(band=band_expr())["band"].to_list() == ["A", "A", "B", "B", "D", "D"]


# ---- history and trend ----------------------------------------------------------------------------
def write_run(con, as_of: dt.date, scores: dict[str, float]) -> None:
    frame = pl.DataFrame({"siren": list(scores), "score": list(scores.values())}).with_columns(
        scored_at=pl.lit(dt.datetime(2026, 7, 1, 3)),
        as_of_date=pl.lit(as_of),
        band=band_expr(),
        model_version=pl.lit("1"),
        is_eligible=pl.lit(True),
        exclusion_reason=pl.lit(None, pl.String),
        rank=pl.col("score").rank("ordinal", descending=True).cast(pl.Int32),
        region_code=pl.lit("53"),
        naf_section=pl.lit("J"),
    )
    con.execute("create schema if not exists scoring")
    arrow_frame = frame.to_arrow()  # noqa: F841
    con.execute("create or replace table scoring.company_scores as select * from arrow_frame")


def test_history_replaces_a_rescored_as_of_date_and_trend_follows_the_slope(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    days = [dt.date(2026, 3, 31), dt.date(2026, 4, 30), dt.date(2026, 5, 31)]
    series = {
        "up": [10.0, 14.0, 18.0],
        "down": [50.0, 45.0, 41.0],
        "flat": [30.0, 30.5, 29.8],
        "gone": [5, 5, 5],
    }
    for index, day in enumerate(days):
        write_run(con, day, {siren: float(values[index]) for siren, values in series.items()})
        append_history(con)
    write_run(con, days[-1], {"up": 18.0, "down": 41.0, "flat": 29.8, "gone": 5.0})
    append_history(con)  # the same as-of date again: replaced, not duplicated
    counts = con.execute(
        "select as_of_date, count(*) from scoring.score_history group by 1 order by 1"
    ).fetchall()
    assert counts == [(day, 4) for day in days]
    current = pl.DataFrame({"siren": ["up", "down", "flat", "new"], "score": [22.0, 37.0, 30.0, 12.0]})
    context = history_context(con, current, dt.date(2026, 6, 30)).sort("siren")
    assert dict(zip(context["siren"], context["trend"], strict=True)) == {
        "down": "declining",
        "flat": "steady",
        "new": "steady",
        "up": "improving",
    }
    assert dict(zip(context["siren"], context["score_change"], strict=True)) == {
        "down": -4.0,
        "flat": 0.2,
        "new": None,
        "up": 4.0,
    }
    # Re-scoring the latest as-of date compares it with the run before, never with itself.
    again = history_context(con, current, days[-1]).sort("siren")
    assert again.filter(siren="up")["score_change"][0] == 8.0


def test_replays_keep_history_in_as_of_order_and_compare_with_the_previous_date(tmp_path):
    """Runs happen Nov, then Jun, then Sep (replays): the table and every change follow the calendar."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    jun, sep, nov = dt.date(2026, 6, 30), dt.date(2026, 9, 30), dt.date(2026, 11, 29)
    scores = {jun: 65.7, sep: 68.0, nov: 71.5}
    for day in (nov, jun):
        write_run(con, day, {"a": scores[day], "b": 10.0})
        append_history(con)
    # Sep is replayed last: compared with Jun (the previous date in time), not with Nov (the previous run).
    write_run(con, sep, {"a": scores[sep], "b": 10.0})
    replayed = history_context(con, pl.DataFrame({"siren": ["a"], "score": [scores[sep]]}), sep)
    assert replayed["score_change"].to_list() == [round(scores[sep] - scores[jun], 1)]
    append_history(con)
    stored = con.execute("select as_of_date, siren from scoring.score_history").fetchall()
    assert stored == sorted(stored) and [d for d, _ in stored[::2]] == [jun, sep, nov]
    # Nov re-scored: against Sep now; the trend over Jun, Sep, Nov rises.
    latest = history_context(con, pl.DataFrame({"siren": ["a"], "score": [scores[nov]]}), nov)
    assert latest["score_change"].to_list() == [round(scores[nov] - scores[sep], 1)]
    assert latest["trend"].to_list() == ["improving"]


def test_first_run_has_no_change_and_a_steady_trend(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    context = history_context(con, pl.DataFrame({"siren": ["a"], "score": [3.0]}), AS_OF)
    assert context.rows() == [("a", None, "steady")]


# ---- one scoring run ------------------------------------------------------------------------------
@pytest.fixture
def scored_warehouse(tmp_path):
    features = make_features(400, seed=5).with_columns(
        has_collective_procedure=pl.int_range(pl.len()) % 50 == 0,
        last_positive_signal_date=pl.lit(dt.date(2026, 6, 1)),
    )
    siren = features["siren"][7]
    signals = [signal(siren, dt.date(2026, 6, 10), "hiring", "ft-77", url="https://ft/77")]
    con = write_warehouse(tmp_path / "w.duckdb", features, signals)
    model = xgb_model(features)
    run = score_companies(con, model, exact_top_n=5, scored_at=dt.datetime(2026, 7, 1, 3))
    yield con, run, model, features
    con.close()


def test_score_companies_explains_ranked_and_top_n_exactly(scored_warehouse):
    con, run, model, features = scored_warehouse
    scores = con.execute("select * from scoring.company_scores").pl()
    assert scores.height == 400 and run.companies == 400 and scores.schema["score"] == pl.Float64
    assert scores["score"].is_between(0, 100).all()
    assert (scores["score"] == scores["score"].round(1)).all()
    ranked = set(rank_segments(scores)["siren"])
    top5 = set(scores.sort(["score", "siren"], descending=[True, False]).head(5)["siren"])
    exact = set(scores.filter(explanation_method="exact")["siren"])
    assert exact == ranked | top5 and run.exact == len(exact)
    excluded = scores.filter(~pl.col("is_eligible"))
    assert excluded.height == 8 and excluded["rank"].is_null().all()
    assert set(excluded["exclusion_reason"]) == {"collective_procedure"}
    assert sorted(scores["rank"].drop_nulls()) == list(range(1, 393))
    reasons = con.execute("select * from scoring.score_reasons").pl()
    by_company = reasons.group_by("siren").agg(
        pl.col("is_exact").all(), pl.col("is_exact").any().alias("some")
    )
    method = scores.select("siren", "explanation_method").join(by_company, on="siren")
    assert (method["is_exact"] == (method["explanation_method"] == "exact")).all()
    assert (method["is_exact"] == method["some"]).all()
    assert reasons.group_by("siren", "direction").len()["len"].max() <= 3
    # Exact reasons are the model's exact TreeSHAP values.
    row = scores.filter(explanation_method="exact")["siren"][0]
    contributions, _ = model.contributions(features.filter(siren=row), exact=True)
    top = reasons.filter(siren=row, direction="up", reason_rank=1)
    assert top["contribution_points"][0] == pytest.approx(contributions.max(), abs=0.006)
    served = con.execute(
        "select model_version, model_kind, scored_companies from scoring.served_model"
    ).fetchone()
    assert served == ("5", "xgboost", 400)
    assert (
        ServedModel.from_bytes(
            con.execute("select model_bytes from scoring.served_model").fetchone()[0]
        ).feature_names
        == model.feature_names
    )


def test_open_opportunity_at_the_as_of_date_is_excluded_with_its_reason(tmp_path):
    """Training's definition (snapshots.open_opportunity): opened on or before the as-of date and not
    closed before it. Such companies keep their score row, leave the rankings and say why."""
    features = make_features(40, seed=3)
    sirens = features["siren"].to_list()
    con = write_warehouse(tmp_path / "w.duckdb", features)
    day = dt.timedelta(days=1)
    opportunities = [  # (siren, opened, closed, status) -> open at AS_OF?
        (sirens[0], AS_OF - 30 * day, None, "open"),  # open
        (sirens[1], AS_OF - 30 * day, AS_OF + 5 * day, "won"),  # closed after the as-of date: open then
        (sirens[2], AS_OF, None, "open"),  # opened on the as-of date: open
        (sirens[3], AS_OF - 30 * day, AS_OF - day, "lost"),  # closed before: may be ranked
        (sirens[4], AS_OF + day, None, "open"),  # opened after: may be ranked
        (sirens[5], AS_OF - 30 * day, AS_OF, "won"),  # closed on the as-of date: may be ranked
    ]
    con.execute(
        "create table normalized.outcomes (siren varchar, opportunity_date date, closed_date date, "
        "status varchar)"
    )
    con.executemany("insert into normalized.outcomes values (?, ?, ?, ?)", opportunities)
    score_companies(con, xgb_model(features), exact_top_n=None)
    scores = con.execute(
        "select siren, exclusion_reason, is_eligible, rank, score from scoring.company_scores"
    ).pl()
    assert scores.height == 40 and scores["score"].is_not_null().all()
    excluded = scores.filter(pl.col("exclusion_reason") == "open_opportunity")
    assert sorted(excluded["siren"]) == sorted(sirens[:3])
    assert not excluded["is_eligible"].any() and excluded["rank"].is_null().all()
    assert scores.filter(pl.col("siren").is_in(sirens[3:6]))["is_eligible"].all()
    build_top_opportunities(con)
    listed = set(con.execute("select siren from scoring.top_opportunities").pl()["siren"])
    assert listed and not listed & set(sirens[:3])


def test_every_company_is_explained_exactly_by_default(tmp_path):
    features = make_features(300, seed=11)
    con = write_warehouse(tmp_path / "w.duckdb", features)
    model = xgb_model(features)
    run = score_companies(con, model, exact_top_n=OSESettings().exact_explanations_top_n)
    methods = con.execute(
        "select explanation_method, count(*) from scoring.company_scores group by all"
    ).fetchall()
    assert methods == [("exact", 300)] and run.exact == 300
    assert con.execute(
        "select bool_and(is_exact), count(distinct siren) from scoring.score_reasons"
    ).fetchone() == (
        True,
        300,
    )
    con.close()


def test_features_stating_the_same_fact_make_one_reason():
    from ose_assets.scoring.explain import merge_same_facts, reason_groups

    names = [
        "funding_signals_3m",
        "funding_signals_12m",
        "headcount_band_rank",
        "headcount_midpoint",
        "is_closed",
    ]
    groups = reason_groups(names)
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len(set(groups.tolist())) == 3
    contributions = np.array([[1.0, 2.5, -0.5, -1.0, 0.2]])
    merged, lead = merge_same_facts(contributions, groups)
    by_group = {int(g): (merged[0, g], names[lead[0, g]]) for g in set(groups.tolist())}
    assert by_group[int(groups[0])] == (3.5, "funding_signals_12m")
    assert by_group[int(groups[2])] == (-1.5, "headcount_midpoint")
    assert merged.sum() == contributions.sum()  # additivity kept: reasons still sum to the score
