"""scoring.score_history: one set of rows per as-of date; score change and trend read from it."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from ose_assets.settings import model_config
from ose_assets.warehouse import table_exists

HISTORY_TABLE = "scoring.score_history"
# Trend over the last `trend_runs` scoring runs (as-of dates), this one included: the least-squares slope
# of the score against the run index (1, 2, …), in points per run; |slope| < `trend_slope_points` is steady.
TREND_RUNS = model_config()["scoring"]["trend_runs"]
TREND_SLOPE_POINTS = model_config()["scoring"]["trend_slope_points"]
HISTORY_RANKING_COLUMNS = {
    "is_eligible": "boolean",
    "exclusion_reason": "varchar",
    "rank": "bigint",
    "region_code": "varchar",
    "naf_section": "varchar",
}


def append_history(con: duckdb.DuckDBPyConnection) -> int:
    """Add this run's scores (scoring.company_scores) to score_history, replacing the rows of the same
    as-of date, in one transaction. The table stays in as-of order: a replay of an earlier date rewrites
    it sorted (as_of_date, siren) instead of appending after later dates. Returns the rows written."""
    con.execute("create schema if not exists scoring")
    con.execute("begin transaction")
    try:
        con.execute(
            f"""create table if not exists {HISTORY_TABLE} (
                siren varchar, scored_at timestamp, as_of_date date, score double, band varchar,
                model_version varchar)"""
        )
        # What the ranking was that day (eligibility, why not, rank, segments): the track record judges
        # the published lists with them.
        for column, sql_type in HISTORY_RANKING_COLUMNS.items():
            con.execute(f"alter table {HISTORY_TABLE} add column if not exists {column} {sql_type}")
        columns = ", ".join(["siren", "scored_at", "as_of_date", "score", "band", "model_version",
                             *HISTORY_RANKING_COLUMNS])  # fmt: skip
        new_rows = f"select {columns} from scoring.company_scores"
        kept = f"""select * from {HISTORY_TABLE}
            where as_of_date not in (select distinct as_of_date from scoring.company_scores)"""
        earlier = con.execute(
            f"select (select min(as_of_date) from scoring.company_scores) < max(as_of_date) from ({kept})"
        ).fetchone()[0]
        if earlier:
            con.execute(
                f"""create or replace table {HISTORY_TABLE} as
                select * from ({kept} union all by name {new_rows}) order by as_of_date, siren"""
            )
        else:
            con.execute(
                f"delete from {HISTORY_TABLE} "
                "where as_of_date in (select distinct as_of_date from scoring.company_scores)"
            )
            con.execute(f"insert into {HISTORY_TABLE} by name {new_rows} order by siren")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return con.execute("select count(*) from scoring.company_scores").fetchone()[0]


def history_context(con: duckdb.DuckDBPyConnection, scores: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """score_change (against the latest earlier run) and trend per siren, from scoring.score_history.

    Runs are as-of dates (one set of rows per as-of date); the current run's scores come from `scores`
    (siren, score), so re-scoring an as-of date never compares it with itself.
    """
    current = scores.select("siren", "score").to_arrow()  # noqa: F841  (DuckDB reads it by name)
    history = (
        f"""select siren, as_of_date, score from scoring.score_history
        where as_of_date in (select distinct as_of_date from scoring.score_history where as_of_date < $as_of
                             order by as_of_date desc limit {TREND_RUNS - 1})"""
        if table_exists(con, HISTORY_TABLE)
        else "select null::varchar as siren, null::date as as_of_date, null::double as score where false"
    )
    return con.execute(
        f"""
        with past as ({history}),
        runs as (
            select as_of_date, row_number() over (order by as_of_date) as run_index
            from (select distinct as_of_date from past union select $as_of::date)
        ),
        points as (
            select siren, as_of_date, score from past
            union all select siren, $as_of::date, score from current
        ),
        previous as (
            select siren, score as previous_score from past
            where as_of_date = (select max(as_of_date) from past)
        ),
        slopes as (
            select p.siren, regr_slope(p.score, r.run_index) as slope, count(*) as points
            from points p join runs r using (as_of_date) group by p.siren
        )
        select c.siren,
            round(c.score - v.previous_score, 1) as score_change,
            case when s.points < 2 or abs(s.slope) < {TREND_SLOPE_POINTS} then 'steady'
                 when s.slope > 0 then 'improving' else 'declining' end as trend
        from current c
        left join previous v using (siren)
        left join slopes s using (siren)
        """,
        {"as_of": as_of},
    ).pl()
