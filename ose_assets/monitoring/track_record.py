"""Track record: every published ranking judged by what happened next.

For each as-of date in scoring.score_history (one ranking, one model version), on the companies that were
eligible that day (`is_eligible`: companies already in an open deal, closed or in a collective procedure
are left out, as in training), the label is training's: a won opportunity closed within
(as_of, as_of + horizon]. A window is `closed` once as_of + horizon <= the known-until date (the run's
as-of date: outcomes are known up to it); before that it is `in_progress` and reports the wins so far.

A ranking is `in_sample` when the model that made it was trained on outcomes after that as-of date (its
training as-of is later), so its record is not an honest forecast; `out_of_sample` otherwise. Only
out-of-sample closed windows are judged by the check and logged to MLflow.

Two tables, rebuilt whole (they are derived from score_history and normalized.outcomes):
- monitoring.track_record: one row per (as_of_date, model_version), with realised metrics next to the
  model's test-time figures (model.model_versions);
- monitoring.track_record_groups: per band, score decile and published top list (overall top 10 and top
  100, each région's and NAF section's top 10): companies, expected wins (sum of the published
  probabilities) and realised wins.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import polars as pl

from ose_assets.model.evaluate import _auc, expected_calibration_error
from ose_assets.settings import model_config
from ose_assets.warehouse import replace_table, table_exists

TRACK_RECORD_TABLE = "monitoring.track_record"
GROUPS_TABLE = "monitoring.track_record_groups"
HISTORY_TABLE = "scoring.score_history"
OUTCOMES_TABLE = "normalized.outcomes"
MODEL_VERSIONS_TABLE = "model.model_versions"
TOP_LISTS = (10, 100)
SEGMENT_TOP = 10


def _history_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name, *_) in con.execute(f"describe {HISTORY_TABLE}").fetchall()}


def labelled_query(con: duckdb.DuckDBPyConnection, horizon_days: int) -> str:
    """Eligible published rows with their label so far (won within the horizon, up to $known_until).

    History rows written before score_history kept eligibility and ranks count as eligible and are
    ranked by score, then SIREN.
    """
    have = _history_columns(con)

    def column(name: str, fallback: str) -> str:
        return f"h.{name}" if name in have else f"{fallback} as {name}"

    wins = (
        f"""select siren, closed_date from {OUTCOMES_TABLE} where status = 'won'"""
        if table_exists(con, OUTCOMES_TABLE)
        else "select null::varchar as siren, null::date as closed_date where false"
    )
    return f"""
        with published as (
            select h.siren, h.as_of_date, h.model_version, h.score / 100.0 as probability, h.band,
                {column("rank", "null::bigint")}, {column("region_code", "null::varchar")},
                {column("naf_section", "null::varchar")}
            from {HISTORY_TABLE} h
            where {"coalesce(h.is_eligible, true)" if "is_eligible" in have else "true"}
        ),
        wins as ({wins}),
        labelled as (
            select p.*, exists (
                select 1 from wins w
                where w.siren = p.siren and w.closed_date > p.as_of_date
                  and w.closed_date <= least(p.as_of_date + {int(horizon_days)}, $known_until)
            )::tinyint as label
            from published p
        )
        select *, row_number() over (
            partition by as_of_date, model_version order by rank nulls last, probability desc, siren
        ) as position
        from labelled
    """


def _window(as_of: dt.date, horizon_days: int, known_until: dt.date) -> str:
    return "closed" if as_of + dt.timedelta(days=horizon_days) <= known_until else "in_progress"


def _model_versions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    columns = {
        "version": pl.String,
        "kind": pl.String,
        "trained_as_of": pl.Date,
        "test_roc_auc": pl.Float64,
        "test_brier": pl.Float64,
        "test_ece": pl.Float64,
        "test_top_decile_lift": pl.Float64,
    }
    if not table_exists(con, MODEL_VERSIONS_TABLE):
        return pl.DataFrame(schema=columns)
    return (
        con.execute(
            f"""select version::varchar as version, kind, as_of_date as trained_as_of, test_roc_auc,
                   test_brier, test_ece, test_top_decile_lift
            from {MODEL_VERSIONS_TABLE}"""
        )
        .pl()
        .cast(columns)
    )


def sample_of(scored_as_of: dt.date, kind: str | None, trained_as_of: dt.date | None) -> str:
    """in_sample when the model saw outcomes after the scored date (trained as of a later date)."""
    if kind is None:
        return "unknown"
    if kind == "rules_prior" or trained_as_of is None or trained_as_of <= scored_as_of:
        return "out_of_sample"
    return "in_sample"


def realised_metrics(y: np.ndarray, p: np.ndarray, ece_bins: int) -> dict[str, float | None]:
    """ROC-AUC, Brier score, ECE and top-decile lift of published probabilities against what happened."""
    if len(y) == 0:
        return {
            "realised_roc_auc": None,
            "realised_brier": None,
            "realised_ece": None,
            "realised_top_decile_lift": None,
        }
    base_rate = float(y.mean())
    top = np.argsort(-p, kind="stable")[: max(1, math.ceil(0.1 * len(y)))]
    return {
        "realised_roc_auc": _auc(y, p),
        "realised_brier": float(np.mean((p - y) ** 2)),
        "realised_ece": expected_calibration_error(y, p, ece_bins),
        "realised_top_decile_lift": float(y[top].mean()) / base_rate if base_rate else None,
    }


def calibration_interval(expected: float, variance: float, z: float) -> tuple[float, float]:
    """Expected wins ± z standard deviations of a sum of independent Bernoulli(p) (Poisson binomial)."""
    half = z * math.sqrt(variance)
    return max(0.0, expected - half), expected + half


def build_track_record(
    con: duckdb.DuckDBPyConnection, known_until: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(track_record, groups) frames over every as-of date of score_history."""
    horizon = int(model_config()["training"]["horizon_days"])
    ece_bins = int(model_config()["training"]["ece_bins"])
    z = float(model_config()["track_record"]["calibration_z"])
    con.execute(
        f"create or replace temp table track_labelled as {labelled_query(con, horizon)}",
        {"known_until": known_until},
    )
    try:
        groups = con.execute(
            f"""
            with deciles as (
                select *, ntile(10) over (
                    partition by as_of_date, model_version order by position) as decile
                from track_labelled
            ),
            segments as (
                select *, row_number() over (
                    partition by as_of_date, model_version, region_code order by position) as region_position,
                  row_number() over (
                    partition by as_of_date, model_version, naf_section order by position) as naf_position
                from track_labelled
            )
            select as_of_date, model_version, 'band' as grouping, band as group_value,
                count(*) as companies, sum(probability) as expected_wins, sum(label) as realised_wins
            from track_labelled group by all
            union all
            select as_of_date, model_version, 'decile', decile::varchar, count(*), sum(probability),
                sum(label)
            from deciles group by all
            union all
            {
                " union all ".join(
                    f'''select as_of_date, model_version, 'top', 'overall:top{n}', count(*), sum(probability),
                    sum(label) from track_labelled where position <= {n} group by all'''
                    for n in TOP_LISTS
                )
            }
            union all
            select as_of_date, model_version, 'top', 'region:' || region_code || ':top{SEGMENT_TOP}',
                count(*), sum(probability), sum(label)
            from segments where region_code is not null and region_position <= {SEGMENT_TOP} group by all
            union all
            select as_of_date, model_version, 'top', 'naf_section:' || naf_section || ':top{SEGMENT_TOP}',
                count(*), sum(probability), sum(label)
            from segments where naf_section is not null and naf_position <= {SEGMENT_TOP} group by all
            order by as_of_date, model_version, grouping, group_value
            """
        ).pl()
        versions = _model_versions(con)
        rows = []
        runs = con.execute(
            "select distinct as_of_date, model_version from track_labelled order by as_of_date, model_version"
        ).fetchall()
        for as_of, version in runs:
            frame = con.execute(
                "select label, probability from track_labelled where as_of_date = ? and model_version = ?",
                [as_of, version],
            ).pl()
            y = frame["label"].to_numpy().astype(float)
            p = frame["probability"].to_numpy().astype(float)
            model = versions.filter(pl.col("version") == version)
            info = model.row(0, named=True) if model.height else {}
            expected, variance = float(p.sum()), float((p * (1 - p)).sum())
            low, high = calibration_interval(expected, variance, z)
            top = groups.filter(
                pl.col("as_of_date") == as_of, pl.col("model_version") == version, pl.col("grouping") == "top"
            )
            top_wins = dict(zip(top["group_value"], top["realised_wins"], strict=True))
            rows.append(
                {
                    "as_of_date": as_of,
                    "model_version": version,
                    "window_status": _window(as_of, horizon, known_until),
                    "window_end": as_of + dt.timedelta(days=horizon),
                    "known_until": known_until,
                    "sample_type": sample_of(as_of, info.get("kind"), info.get("trained_as_of")),
                    "companies": len(y),
                    "expected_wins": expected,
                    "expected_wins_low": low,
                    "expected_wins_high": high,
                    "realised_wins": int(y.sum()),
                    "top10_wins": int(top_wins.get("overall:top10", 0)),
                    "top100_wins": int(top_wins.get("overall:top100", 0)),
                    **realised_metrics(y, p, ece_bins),
                    **{
                        key: info.get(key)
                        for key in ("test_roc_auc", "test_brier", "test_ece", "test_top_decile_lift")
                    },
                }
            )
    finally:
        con.execute("drop table if exists track_labelled")
    return pl.DataFrame(rows, schema=TRACK_RECORD_SCHEMA), groups.cast({"realised_wins": pl.Int64})


TRACK_RECORD_SCHEMA = {
    "as_of_date": pl.Date,
    "model_version": pl.String,
    "window_status": pl.String,
    "window_end": pl.Date,
    "known_until": pl.Date,
    "sample_type": pl.String,
    "companies": pl.Int64,
    "expected_wins": pl.Float64,
    "expected_wins_low": pl.Float64,
    "expected_wins_high": pl.Float64,
    "realised_wins": pl.Int64,
    "top10_wins": pl.Int64,
    "top100_wins": pl.Int64,
    "realised_roc_auc": pl.Float64,
    "realised_brier": pl.Float64,
    "realised_ece": pl.Float64,
    "realised_top_decile_lift": pl.Float64,
    "test_roc_auc": pl.Float64,
    "test_brier": pl.Float64,
    "test_ece": pl.Float64,
    "test_top_decile_lift": pl.Float64,
}


def write_track_record(con: duckdb.DuckDBPyConnection, record: pl.DataFrame, groups: pl.DataFrame) -> None:
    con.execute("create schema if not exists monitoring")
    for table, frame in ((TRACK_RECORD_TABLE, record), (GROUPS_TABLE, groups)):
        con.register("track_frame", frame.to_arrow())
        try:
            replace_table(con, table, "select * from track_frame order by all")
        finally:
            con.unregister("track_frame")


def performance_failures(record: pl.DataFrame, auc_margin: float) -> list[str]:
    """What is wrong with each closed, out-of-sample window: realised AUC too far below the model's test
    AUC, or realised wins outside the calibration interval around the expected wins."""
    problems = []
    judged = record.filter(pl.col("window_status") == "closed", pl.col("sample_type") == "out_of_sample")
    for row in judged.iter_rows(named=True):
        where = f"model v{row['model_version']} as of {row['as_of_date']}"
        auc, test_auc = row["realised_roc_auc"], row["test_roc_auc"]
        if auc is not None and test_auc is not None and auc < test_auc - auc_margin:
            problems.append(
                f"{where}: realised ROC-AUC {auc:.3f} is more than {auc_margin} below its test ROC-AUC "
                f"{test_auc:.3f}"
            )
        if not row["expected_wins_low"] <= row["realised_wins"] <= row["expected_wins_high"]:
            problems.append(
                f"{where}: {row['realised_wins']} wins realised, {row['expected_wins']:.1f} expected "
                f"(interval {row['expected_wins_low']:.1f}–{row['expected_wins_high']:.1f})"
            )
    return problems


def retraining_reason(con: duckdb.DuckDBPyConnection, champion_version: str | None) -> str | None:
    """Why the track record asks for retraining: the champion's latest closed out-of-sample window fails
    the performance check. None when it holds, or nothing has been judged yet."""
    if champion_version is None or not table_exists(con, TRACK_RECORD_TABLE):
        return None
    latest = con.execute(
        f"""select * from {TRACK_RECORD_TABLE}
            where model_version = ? and window_status = 'closed' and sample_type = 'out_of_sample'
            order by as_of_date desc limit 1""",
        [str(champion_version)],
    ).pl()
    problems = performance_failures(latest, float(model_config()["track_record"]["auc_margin"]))
    return "; ".join(problems) if problems else None


def sentence(row: dict, lang: str = "en") -> str:
    """The sales-ops reading of one window: "of the 10 companies we ranked first on …, 4 signed"."""
    wins, companies = row["top10_wins"], min(10, row["companies"])
    expected = row["expected_wins"]
    so_far = row["window_status"] == "in_progress"
    horizon = (row["window_end"] - row["as_of_date"]).days
    if lang == "fr":
        verb = "ont signé jusqu'ici" if so_far else f"ont signé dans les {horizon} jours"
        # French number forms: 16 080 (narrow no-break space), 471,2.
        ranked = f"{row['companies']:,}".replace(",", "\u202f")
        announced = f"{expected:.1f}".replace(".", ",")
        return (
            f"Sur les {companies} entreprises classées en tête le {row['as_of_date']:%d/%m/%Y}, "
            f"{wins} {verb} ; sur {ranked} entreprises classées, {row['realised_wins']} gains "
            f"contre {announced} attendus"
        )
    verb = "have signed so far" if so_far else f"signed within {horizon} days"
    return (
        f"Of the {companies} companies we ranked first on {row['as_of_date']:%d %b %Y}, {wins} {verb}; "
        f"of {row['companies']:,} ranked companies, {row['realised_wins']} won "
        f"against {expected:.1f} expected"
    )
