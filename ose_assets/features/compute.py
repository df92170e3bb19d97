"""features.company_features in one set-based DuckDB query, as of any date.

features_query(spine) is the only code path: scoring passes a spine with one as_of_date, training
passes monthly snapshots. Every record is joined to a spine row only when dated at or before that
row's as_of_date, so nothing known later can leak into a row, and after the start of its lookback
(features.lookback_months), so training and scoring see the same window of history. Signals are
aggregated once per (siren, as_of_date) over the lookback; only the two ranking gates read all history.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ose_assets.features.catalog import (
    COLLECTIVE_PROCEDURE_TYPES,
    COMPANIES,
    FEATURE_CATALOG,
    FEATURES_BY_NAME,
    RADIATION_TYPE,
    SIGNALS,
    WINDOW_MONTHS,
    Feature,
    lookback_months,
    signal_types,
)
from ose_assets.settings import model_config
from ose_assets.warehouse import replace_table

FEATURES_TABLE = "features.company_features"
SQL_TYPES = {"int": "integer", "float": "double", "bool": "boolean", "category": "varchar", "date": "date"}
# The ranking gates (scoring/ranking.py GATES) read every record up to the as-of date: a collective
# procedure or a removal does not expire with the lookback.
GATE_SIGNAL_TYPES = {"has_collective_procedure": COLLECTIVE_PROCEDURE_TYPES, "is_radiated": (RADIATION_TYPE,)}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _type_ids() -> dict[str, int]:
    return {name: i for i, name in enumerate(signal_types())}


def _type_id(column: str) -> str:
    """Position of the signal type in model_config signal_types, len(signal_types()) when unknown.
    A list lookup rather than a join to a vocabulary relation: cheaper per signal."""
    names = ", ".join(_literal(name) for name in signal_types())
    return f"coalesce(list_position([{names}], {column}), {len(signal_types()) + 1}) - 1"


def _type_filter(types: tuple[str, ...]) -> str:
    if set(types) >= set(signal_types()):
        return "true"  # every type, including any unknown to the vocabulary
    return f"type_id in ({', '.join(str(_type_ids()[t]) for t in types)})"


def _window_filter(window: str, date_column: str) -> str:
    """Record dated inside `window`, on rows already limited to the lookback ("true" when no narrower)."""
    if window == "lookback" or WINDOW_MONTHS.get(window) == lookback_months():
        return "true"
    return f"{date_column} > start_{window}"


def _on_or_before(date_column: str) -> str:
    """Record dated at or before the as-of date. Written as a difference, not a comparison: DuckDB
    then loops over the few as-of dates instead of sorting every record for a range join."""
    return f"d.as_of_date - {date_column} >= 0"


def _after(date_column: str, start_column: str) -> str:
    """Record dated after a window start, written as a difference for the same reason."""
    return f"{date_column} - d.{start_column} > 0"


def _is_signal_count(f: Feature) -> bool:
    return f.source == SIGNALS and f.dtype == "int" and f.family in ("volume", "positive", "red_flag")


def _count(f: Feature) -> str:
    """Count of f's signal types in f's window, over rows already limited to the lookback."""
    conditions = [_type_filter(f.evidence_signal_types), _window_filter(f.window, "event_date")]
    conditions = [c for c in conditions if c != "true"]
    # count_if, not count(*) FILTER: DuckDB slices every aggregate input per FILTER clause.
    return f"count_if({' and '.join(conditions)}) as {f.name}" if conditions else f"count(*) as {f.name}"


def _latest(name: str) -> str:
    condition = _type_filter(FEATURES_BY_NAME[name].evidence_signal_types)
    return f"max(case when {condition} then event_date end) as {name}"


def _signal_aggregates() -> list[str]:
    """Signal features over the lookback: recency, decayed intensity, red flags, window volumes, diversity."""
    types = signal_types().values()
    weight = f"[{', '.join(str(float(spec['weight'])) for spec in types)}][type_id + 1]"
    half_life = f"[{', '.join(str(float(spec['half_life_days'])) for spec in types)}][type_id + 1]"
    in_12m = _window_filter("12m", "event_date")
    return [
        "max(event_date) as last_signal_date",
        _latest("last_positive_signal_date"),
        _latest("last_red_flag_date"),
        # Unknown types index past the end of the lists: NULL, which sum() skips.
        f"sum({weight} * pow(0.5, (as_of_date - event_date) / {half_life})) as decayed_signal_intensity",
        # Bit sets instead of count(distinct): an order of magnitude cheaper per group.
        f"bit_count(bit_or(case when type_id < {len(signal_types())} and {in_12m} "
        "then 1::ubigint << type_id::ubigint end)) as distinct_signal_types_12m",
        f"bit_count(bit_or(case when {in_12m} "
        "then 1::ubigint << (list_position(v.sources, source) - 1)::ubigint end)) as distinct_sources_12m",
        *(_count(f) for f in FEATURE_CATALOG if _is_signal_count(f)),
    ]


def _gate_aggregates() -> list[str]:
    return [
        f"bool_or(signal_type in ({', '.join(_literal(t) for t in types)})) as {name}"
        for name, types in GATE_SIGNAL_TYPES.items()
    ]


def _momentum() -> str:
    recent, older = "s.signals_3m / 3.0", "(s.signals_12m - s.signals_3m) / 9.0"
    return f"case when s.signals_12m > 0 then ({recent} - {older}) / ({recent} + {older}) end"


def _expressions() -> dict[str, str]:
    """SQL of every catalog feature over the joined aggregates: s (signals of the lookback), g (ranking
    gates), p (press), c (company)."""
    days = "date_diff('day', {}, k.as_of_date)"
    exprs = {
        "days_since_last_signal": days.format("s.last_signal_date"),
        "days_since_last_positive_signal": days.format("s.last_positive_signal_date"),
        "days_since_last_red_flag": days.format("s.last_red_flag_date"),
        "days_since_last_article": days.format("p.last_article_date"),
        "distinct_signal_types_12m": "coalesce(s.distinct_signal_types_12m, 0)",
        "distinct_sources_12m": "coalesce(s.distinct_sources_12m, 0)",
        "decayed_signal_intensity": "coalesce(s.decayed_signal_intensity, 0)",
        "has_red_flag": "coalesce(s.red_flag_count > 0, false)",
        **{name: f"coalesce(g.{name}, false)" for name in GATE_SIGNAL_TYPES},
        "is_closed": "coalesce(c.closed_date <= k.as_of_date, "
        "not c.is_active and c.closed_date is null and c.record_date <= k.as_of_date, false)",
        "negative_press_count_12m": "coalesce(p.negative_press_count_12m, 0)",
        "last_signal_date": "s.last_signal_date",
        "last_positive_signal_date": "s.last_positive_signal_date",
        "last_red_flag_date": "s.last_red_flag_date",
        "momentum_3m_vs_9m": _momentum(),
        "articles_3m": "coalesce(p.articles_3m, 0)",
        "articles_12m": "coalesce(p.articles_12m, 0)",
        "press_positive_share_12m": "p.positive_articles_12m / nullif(p.articles_12m, 0)",
        "latest_article_event_type": "p.latest_article_event_type",
        "company_age_years": f"{days.format('c.creation_date')} / 365.25",
        "headcount_band_rank": "c.headcount_band_rank",
        "headcount_midpoint": "coalesce((c.headcount_min + c.headcount_max) / 2.0, c.headcount_min)",
        "category": "c.category",
        "legal_form_family": "c.legal_form_family",
        "naf_section": "c.naf_section",
        "naf_division": "c.naf_division",
        "region_code": "c.region_code",
        "establishment_count": "c.establishment_count",
        # Accounts of fiscal year Y are published during Y+1: unknown before then.
        "latest_revenue": "case when c.revenue_year < year(k.as_of_date) then c.revenue end",
    }
    exprs.update({f.name: f"coalesce(s.{f.name}, 0)" for f in FEATURE_CATALOG if _is_signal_count(f)})
    missing = [f.name for f in FEATURE_CATALOG if f.name not in exprs]
    if missing:
        raise ValueError(f"features without an SQL expression: {missing}")
    return exprs


def features_query(spine: str) -> str:
    """One row per row of `spine` (a relation or query with siren, as_of_date): siren, as_of_date, then
    FEATURE_CATALOG columns in order.

    Records are aggregated per (siren, as_of_date) for every distinct as_of_date of the spine, keeping
    only those dated in its lookback (the ranking gates: at or before it), then joined to the spine.
    The cost follows the number of records times the number of distinct dates, not the spine's size.
    """
    min_confidence = float(model_config()["press"]["min_link_confidence"])
    window_starts = ", ".join(
        f"(as_of_date - interval {months} month)::date as start_{window}"
        for window, months in {**WINDOW_MONTHS, "lookback": lookback_months()}.items()
    )
    exprs = _expressions()
    columns = ",\n    ".join(
        f"cast({exprs[f.name]} as {SQL_TYPES[f.dtype]}) as {f.name}" for f in FEATURE_CATALOG
    )
    in_lookback = _after("a.published_date", "start_lookback")
    in_3m, in_12m = (_window_filter(w, "a.published_date") for w in ("3m", "12m"))
    gate_types = ", ".join(_literal(t) for types in GATE_SIGNAL_TYPES.values() for t in types)
    return f"""
with spine as (
    select siren, cast(as_of_date as date) as as_of_date from ({spine})
),
as_of_dates as (
    select as_of_date, {window_starts} from (select distinct as_of_date from spine)
),
source_vocabulary as (
    select case when count(distinct source) <= 64 then list(distinct source)
        else error('distinct_sources_12m supports at most 64 signal sources') end as sources
    from normalized.signals
),
signals_in_lookback as (
    select siren, as_of_date,
        {", ".join(_signal_aggregates())}
    from (
        select g.siren, d.as_of_date, g.event_date, g.source, {_type_id("g.signal_type")} as type_id,
            {", ".join(f"d.start_{w}" for w in WINDOW_MONTHS)}
        from normalized.signals g
        join as_of_dates d on {_on_or_before("g.event_date")} and {_after("g.event_date", "start_lookback")}
    )
    cross join source_vocabulary v
    group by siren, as_of_date
),
gates as (
    select g.siren, d.as_of_date, {", ".join(_gate_aggregates())}
    from (select siren, event_date, signal_type from normalized.signals
          where signal_type in ({gate_types})) g
    join as_of_dates d on {_on_or_before("g.event_date")}
    group by g.siren, d.as_of_date
),
-- one link per (article, company), when confident enough
links as (
    select article_id, siren from normalized.article_companies
    where confidence >= {min_confidence}
    group by article_id, siren
),
press as (
    select l.siren, d.as_of_date,
        max(a.published_date) as last_article_date,
        count(*) filter (where {in_3m}) as articles_3m,
        count(*) filter (where {in_12m}) as articles_12m,
        count(*) filter (where {in_12m} and a.polarity > 0) as positive_articles_12m,
        count(*) filter (where {in_12m} and a.polarity < 0) as negative_press_count_12m,
        arg_max(a.event_type, {{'at': a.published_at, 'id': a.article_id}}) as latest_article_event_type
    from links l
    join normalized.articles a on a.article_id = l.article_id
    join as_of_dates d on {_on_or_before("a.published_date")} and {in_lookback}
    group by l.siren, d.as_of_date
)
select k.siren, k.as_of_date,
    {columns}
from spine k
left join signals_in_lookback s on s.siren = k.siren and s.as_of_date = k.as_of_date
left join gates g on g.siren = k.siren and g.as_of_date = k.as_of_date
left join press p on p.siren = k.siren and p.as_of_date = k.as_of_date
left join normalized.companies c on c.siren = k.siren
"""


def company_spine_query(as_of: dt.date) -> str:
    """Every company existing at `as_of` (created on or before it, or creation date unknown)."""
    day = f"date '{as_of.isoformat()}'"
    return (
        f"select siren, {day} as as_of_date from {COMPANIES} "
        f"where creation_date <= {day} or creation_date is null"
    )


def build_company_features(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> int:
    """Write features.company_features as of `as_of`; return its row count."""
    return replace_table(con, FEATURES_TABLE, features_query(company_spine_query(as_of)))
