"""Bands, the red-flag gate, rankings per segment, and the score trend: plain functions over whole frames.

One ordering everywhere (company rank, segment ranks, the exact-explanation cut): score descending,
then the most recent positive signal (none last), then SIREN ascending, so ties are deterministic.
"""

from __future__ import annotations

import duckdb
import polars as pl

from ose_assets.settings import model_config
from ose_assets.warehouse import replace_table_from_frame

TOP_K = 10
# Red-flag features of the catalog that gate a company out of every ranking, with the reason recorded.
GATES = {
    "has_collective_procedure": "collective_procedure",
    "is_radiated": "radiated",
    "is_closed": "closed",
}

# A company in an open CRM opportunity at the as-of date (training's definition,
# ose_assets.training.snapshots.open_opportunity) is sales work under way: scored, never ranked.
OPEN_OPPORTUNITY = "open_opportunity"
# Every exclusion: boolean column of the scoring frame -> exclusion_reason.
EXCLUSIONS = {**GATES, OPEN_OPPORTUNITY: OPEN_OPPORTUNITY}

ORDER_BY = ["score", "last_positive_signal_date", "siren"]
ORDER_DESCENDING = [True, True, False]


def band_expr(score: pl.Expr | None = None) -> pl.Expr:
    """Band of a 0-100 score (default column `score`): the highest band whose lower bound
    (model_config `bands`) it reaches."""
    score = pl.col("score") if score is None else score
    bounds = sorted(model_config()["bands"].items(), key=lambda item: item[1], reverse=True)
    (first_band, first_bound), *rest = bounds
    expr = pl.when(score >= first_bound).then(pl.lit(first_band))
    for band, bound in rest:
        expr = expr.when(score >= bound).then(pl.lit(band))
    return expr.otherwise(pl.lit(bounds[-1][0]))


def exclusion_expr(exclusions: dict[str, str] = EXCLUSIONS) -> pl.Expr:
    """Comma-separated exclusion reasons (null when the company may be ranked)."""
    reasons = [
        pl.when(pl.col(column).fill_null(False)).then(pl.lit(reason)) for column, reason in exclusions.items()
    ]
    joined = pl.concat_str(reasons, separator=",", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def order_frame(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(ORDER_BY, descending=ORDER_DESCENDING, nulls_last=True)


def rank_segments(scores: pl.DataFrame, top_k: int = TOP_K) -> pl.DataFrame:
    """The top_k eligible companies overall, per région and per NAF section.

    scores: siren, score, is_eligible, region_code, naf_section, last_positive_signal_date.
    Returns segment ('overall' | 'region:<code>' | 'naf_section:<letter>'), segment_rank, siren.
    """
    eligible = order_frame(scores.filter(pl.col("is_eligible")))
    segments = [
        eligible.select(pl.lit("overall").alias("segment"), "siren").head(top_k),
        *(
            eligible.filter(pl.col(column).is_not_null())
            .select(pl.format(f"{prefix}:{{}}", pl.col(column)).alias("segment"), "siren")
            .group_by("segment", maintain_order=True)
            .head(top_k)
            for column, prefix in (("region_code", "region"), ("naf_section", "naf_section"))
        ),
    ]
    ranked = pl.concat(segments)
    return ranked.with_columns(
        segment_rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("segment")
    ).select("segment", "segment_rank", "siren")


TOP_OPPORTUNITY_COLUMNS = [
    "segment",
    "segment_rank",
    "siren",
    "name",
    "score",
    "band",
    "region_code",
    "naf_section",
    "model_version",
    "as_of_date",
    "top_reasons_fr",
    "top_reasons_en",
]
REASON_SUMMARY_SEPARATOR = " ; "


def top_opportunities_frame(
    scores: pl.DataFrame, up_reasons: pl.DataFrame, top_k: int = TOP_K
) -> pl.DataFrame:
    """Ranked segments with the company's columns and its 'up' reasons joined into one line per language.

    scores: scoring.company_scores columns; up_reasons: siren, reason_rank, reason_fr, reason_en.
    """
    summaries = (
        up_reasons.sort("siren", "reason_rank")
        .group_by("siren", maintain_order=True)
        .agg(
            top_reasons_fr=pl.col("reason_fr").str.join(REASON_SUMMARY_SEPARATOR),
            top_reasons_en=pl.col("reason_en").str.join(REASON_SUMMARY_SEPARATOR),
        )
    )
    return (
        rank_segments(scores, top_k)
        .join(scores, on="siren", how="left", maintain_order="left")
        .join(summaries, on="siren", how="left", maintain_order="left")
        .select(TOP_OPPORTUNITY_COLUMNS)
    )


def build_top_opportunities(con: duckdb.DuckDBPyConnection, top_k: int = TOP_K) -> int:
    """Write scoring.top_opportunities from company_scores and score_reasons; return its row count."""
    scores = con.execute(
        """select siren, name, score, band, region_code, naf_section, model_version, as_of_date, is_eligible,
            last_positive_signal_date from scoring.company_scores"""
    ).pl()
    ranked = rank_segments(scores, top_k).select("siren").unique().to_arrow()  # noqa: F841  (read by DuckDB)
    up_reasons = con.execute(
        """select siren, reason_rank, reason_fr, reason_en from scoring.score_reasons
        semi join ranked using (siren) where direction = 'up'"""
    ).pl()
    return replace_table_from_frame(
        con, "scoring.top_opportunities", top_opportunities_frame(scores, up_reasons, top_k)
    )


def segment_count_mismatches(con: duckdb.DuckDBPyConnection, top_k: int = TOP_K) -> pl.DataFrame:
    """Segments whose row count in top_opportunities is not min(top_k, eligible companies)."""
    return con.execute(
        f"""
        with eligible as (select * from scoring.company_scores where is_eligible),
        expected as (
            select 'overall' as segment, count(*) as eligible from eligible
            union all select 'region:' || region_code, count(*) from eligible
                where region_code is not null group by region_code
            union all select 'naf_section:' || naf_section, count(*) from eligible
                where naf_section is not null group by naf_section
        ),
        actual as (select segment, count(*) as ranked from scoring.top_opportunities group by segment)
        select segment, least(coalesce(eligible, 0), {int(top_k)}) as expected, coalesce(ranked, 0) as ranked
        from expected full join actual using (segment)
        where least(coalesce(eligible, 0), {int(top_k)}) <> coalesce(ranked, 0)
        order by segment
        """
    ).pl()
