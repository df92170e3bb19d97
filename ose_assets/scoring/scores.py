"""One scoring run: score every company of features.company_features with the champion, explain it,
and write scoring.signal_evidence, company_scores, score_reasons and served_model.

Prediction runs in one batch; explanations in chunks so memory stays flat at 1,000,000 companies: exact
TreeSHAP for every company, or (when capped) for ranked companies and the top N by score with approximate
contributions for the rest.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import duckdb
import polars as pl

from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.evidence import signal_evidence_query
from ose_assets.scoring.explain import explain
from ose_assets.scoring.history import history_context
from ose_assets.scoring.ranking import (
    GATES,
    OPEN_OPPORTUNITY,
    band_expr,
    exclusion_expr,
    order_frame,
    rank_segments,
)
from ose_assets.training.snapshots import open_opportunity
from ose_assets.warehouse import replace_table, replace_table_from_frame, table_exists

FEATURES_TABLE = "features.company_features"
OUTCOMES_TABLE = "normalized.outcomes"
EXPLAIN_CHUNK_ROWS = 200_000

COMPANY_SCORE_COLUMNS = [
    "siren",
    "name",
    "naf_code",
    "naf_label",
    "naf_section",
    "region_code",
    "region_name",
    "departement_code",
    "headcount_band",
    "score",
    "band",
    "rank",
    "is_eligible",
    "exclusion_reason",
    "model_version",
    "model_kind",
    "as_of_date",
    "scored_at",
    "score_change",
    "trend",
    "explanation_method",
    "last_positive_signal_date",
    "first_reason_fr",
    "first_reason_en",
    "first_reason_date",
]


@dataclass
class ScoringRun:
    as_of: dt.date
    scored_at: dt.datetime
    companies: int
    eligible: int
    exact: int
    reasons: int
    seconds: dict[str, float] = field(default_factory=dict)


def features_as_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    dates = con.execute(f"select distinct as_of_date from {FEATURES_TABLE}").fetchall()
    if len(dates) != 1:
        raise ValueError(f"{FEATURES_TABLE} must hold exactly one as_of_date, found {[d for (d,) in dates]}")
    return dates[0][0]


def load_scoring_frame(con: duckdb.DuckDBPyConnection, model: ServedModel) -> pl.DataFrame:
    """Features the model needs, the exclusions (red-flag gates, open opportunity at the as-of date) and
    the company's descriptive columns."""
    missing = sorted(
        set(model.feature_names) - {name for name, *_ in con.execute(f"describe {FEATURES_TABLE}").fetchall()}
    )
    if missing:
        raise ValueError(f"{FEATURES_TABLE} lacks features of model {model.version}: {missing}")
    columns = list(dict.fromkeys([*model.feature_names, *GATES, "last_positive_signal_date"]))
    selected = ", ".join(f'f."{name}"' for name in columns)
    open_deals = (
        f"""select distinct o.siren from {OUTCOMES_TABLE} o
        where {open_opportunity("o", f"date '{features_as_of(con).isoformat()}'")}"""
        if table_exists(con, OUTCOMES_TABLE)
        else "select null::varchar as siren where false"
    )
    return con.execute(
        f"""select f.siren, f.as_of_date, c.name, c.naf_code, c.naf_label,
            c.naf_section as company_naf_section, c.region_code as company_region_code, c.region_name,
            c.departement_code, c.headcount_band, {selected}, d.siren is not null as {OPEN_OPPORTUNITY}
        from {FEATURES_TABLE} f left join normalized.companies c using (siren)
        left join ({open_deals}) d using (siren)
        order by f.siren"""
    ).pl()


def score_frame(frame: pl.DataFrame, model: ServedModel, scored_at: dt.datetime) -> pl.DataFrame:
    """Score, band, gate and rank every company (no history yet)."""
    scores = frame.select(
        "siren",
        "name",
        "naf_code",
        "naf_label",
        pl.col("company_naf_section").alias("naf_section"),
        pl.col("company_region_code").alias("region_code"),
        "region_name",
        "departement_code",
        "headcount_band",
        "as_of_date",
        "last_positive_signal_date",
        score=model.published_scores(frame).get_column("score"),
        exclusion_reason=exclusion_expr(),
    ).with_columns(
        band=band_expr(),
        is_eligible=pl.col("exclusion_reason").is_null(),
        model_version=pl.lit(str(model.version)),
        model_kind=pl.lit(model.kind),
        scored_at=pl.lit(scored_at, dtype=pl.Datetime("us")),
    )
    ranks = order_frame(scores.filter("is_eligible")).select(
        "siren", rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32)
    )
    return scores.join(ranks, on="siren", how="left")


def first_reasons(reasons: pl.DataFrame) -> pl.DataFrame:
    """Per company, its strongest reason up and the date of that reason's most recent evidence: what a
    ranking row shows, read with the row instead of one score_reasons lookup per listed company."""
    return reasons.filter(pl.col("direction") == "up", pl.col("reason_rank") == 1).select(
        "siren",
        first_reason_fr="reason_fr",
        first_reason_en="reason_en",
        first_reason_date=pl.col("evidence").str.json_path_match("$[0].date").str.to_date(),
    )


def exact_sirens(scores: pl.DataFrame, exact_top_n: int | None) -> pl.Series:
    """Companies explained exactly: all of them when exact_top_n is None, else every ranked company and
    the top N by score."""
    if exact_top_n is None:
        return scores.get_column("siren")
    ranked = rank_segments(scores).get_column("siren")
    top = order_frame(scores).head(exact_top_n).get_column("siren")
    return pl.concat([ranked, top]).unique()


def explain_all(
    model: ServedModel, frame: pl.DataFrame, evidence: pl.DataFrame, exact: pl.Series
) -> pl.DataFrame:
    is_exact = frame.get_column("siren").is_in(exact.implode())
    features = frame.select("siren", "as_of_date", *model.feature_names)
    parts = [explain(model, features.head(0), evidence)]  # the schema, when there is nothing to explain
    for rows, exact_method in ((features.filter(is_exact), True), (features.filter(~is_exact), False)):
        for offset in range(0, rows.height, EXPLAIN_CHUNK_ROWS):
            parts.append(explain(model, rows.slice(offset, EXPLAIN_CHUNK_ROWS), evidence, exact=exact_method))
    return pl.concat(parts)


def score_companies(
    con: duckdb.DuckDBPyConnection,
    model: ServedModel,
    exact_top_n: int | None,
    scored_at: dt.datetime | None = None,
) -> ScoringRun:
    """Write scoring.signal_evidence, company_scores, score_reasons and served_model for one run."""
    scored_at = scored_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    as_of = features_as_of(con)
    timer = time.perf_counter()
    seconds = {}

    def lap(name):
        nonlocal timer
        now = time.perf_counter()
        seconds[name] = round(now - timer, 2)
        timer = now

    replace_table(con, "scoring.signal_evidence", signal_evidence_query(as_of))
    evidence = con.execute("select * from scoring.signal_evidence").pl()
    frame = load_scoring_frame(con, model)
    lap("load")
    scores = score_frame(frame, model, scored_at)
    lap("predict")
    exact = exact_sirens(scores, exact_top_n)
    scores = scores.join(history_context(con, scores, as_of), on="siren", how="left").with_columns(
        explanation_method=pl.when(pl.col("siren").is_in(exact.implode()))
        .then(pl.lit("exact"))
        .otherwise(pl.lit("approximate"))
    )
    reasons = explain_all(model, frame, evidence, exact)
    scores = scores.join(first_reasons(reasons), on="siren", how="left")
    lap("explain")
    replace_table_from_frame(
        con,
        "scoring.score_reasons",
        reasons.sort("siren", "direction", "reason_rank", descending=[False, True, False]),
    )
    replace_table_from_frame(
        con, "scoring.company_scores", scores.select(COMPANY_SCORE_COLUMNS).sort("siren")
    )
    served = pl.DataFrame(
        {
            "model_version": [str(model.version)],
            "model_kind": [model.kind],
            "run_id": [model.run_id],
            "model_bytes": [model.to_bytes()],
            "as_of_date": [as_of],
            "scored_at": [scored_at],
            "scored_companies": [scores.height],
        }
    )
    replace_table_from_frame(con, "scoring.served_model", served)
    lap("write")
    return ScoringRun(
        as_of=as_of,
        scored_at=scored_at,
        companies=scores.height,
        eligible=int(scores.get_column("is_eligible").sum()),
        exact=exact.len(),
        reasons=reasons.height,
        seconds=seconds,
    )
