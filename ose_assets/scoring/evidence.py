"""Evidence behind signal-based reasons: the most recent records (signals, BODACC, press) per company.

scoring.signal_evidence keeps, per company, the EVIDENCE_PER_REASON most recent records of each
(signal type, polarity) dated at or before the as-of date. That is enough to find the most recent
records behind any feature (a union of signal types, a window ending at the as-of date, optionally a
polarity), so the asset and the API attach evidence with the same Polars code from this small table.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ose_assets.features.catalog import ARTICLES_EVIDENCE, FEATURE_CATALOG, WINDOW_MONTHS, Feature
from ose_assets.settings import model_config

EVIDENCE_PER_REASON = 3
ARTICLES_KEY = ARTICLES_EVIDENCE[0]
# Features counting only part of the linked articles: their evidence keeps that polarity only.
EVIDENCE_POLARITY = {"negative_press_count_12m": -1}

EVIDENCE_COLUMNS = {
    "siren": pl.String,
    "signal_type": pl.String,
    "signal_family": pl.String,
    "polarity": pl.Int8,
    "event_date": pl.Date,
    "kind": pl.String,
    "source": pl.String,
    "source_ref": pl.String,
    "source_url": pl.String,
    "title": pl.String,
}


def signal_evidence_query(as_of: dt.date) -> str:
    """Evidence records of the companies in features.company_features, dated at or before `as_of`.

    kind: 'bodacc' (source_ref = BODACC announcement id), 'signal' (the feed's reference) or
    'article' (source_ref = article_id, source_url = the article URL, title = its title; signal_type = its
    event type). title is null for signals and BODACC.
    """
    families = ", ".join(
        f"('{name}', '{spec['family']}')" for name, spec in model_config()["signal_types"].items()
    )
    min_confidence = float(model_config()["press"]["min_link_confidence"])
    day = f"date '{as_of.isoformat()}'"
    return f"""
    with scored as (select distinct siren from features.company_features),
    family_of(signal_type, signal_family) as (values {families}),
    links as (
        select article_id, siren from normalized.article_companies
        where confidence >= {min_confidence} group by article_id, siren
    ),
    records as (
        select s.siren, s.signal_type, s.signal_family, s.polarity::tinyint as polarity, s.event_date,
            case when s.source = 'bodacc' then 'bodacc' else 'signal' end as kind,
            s.source, coalesce(s.source_ref, s.signal_id) as source_ref, s.source_url,
            null::varchar as title, null::timestamp as published_at
        from normalized.signals s semi join scored using (siren)
        where s.event_date <= {day}
        union all
        select l.siren, a.event_type, f.signal_family, a.polarity::tinyint, a.published_date,
            'article', a.source, a.article_id, a.url, a.title, a.published_at
        from links l semi join scored using (siren)
        join normalized.articles a using (article_id)
        left join family_of f on f.signal_type = a.event_type
        where a.published_date <= {day}
    )
    select siren, signal_type, signal_family, polarity, event_date, kind, source, source_ref, source_url,
        title
    from records
    qualify row_number() over (
        partition by siren, kind = 'article', signal_type, polarity
        order by event_date desc, published_at desc nulls last, source_ref desc
    ) <= {EVIDENCE_PER_REASON}
    order by siren, event_date desc
    """


def evidence_map(catalog: list[Feature] = FEATURE_CATALOG) -> tuple[dict[str, int], pl.DataFrame]:
    """Evidence keys (signal types and the articles marker) numbered, and per feature the bit mask of
    its keys, its window in months (null: every record up to the as-of date) and its polarity filter."""
    keys = sorted({key for f in catalog for key in f.evidence_signal_types})
    index = {key: position for position, key in enumerate(keys)}
    rows = [
        (
            f.name,
            sum(1 << index[key] for key in f.evidence_signal_types),
            WINDOW_MONTHS.get(f.window),
            EVIDENCE_POLARITY.get(f.name),
        )
        for f in catalog
        if f.evidence_signal_types
    ]
    schema = {
        "feature": pl.String,
        "key_mask": pl.UInt64,
        "window_months": pl.Int32,
        "only_polarity": pl.Int8,
    }
    return index, pl.DataFrame(rows, schema=schema, orient="row")


def attach_evidence(reasons: pl.DataFrame, evidence: pl.DataFrame, catalog: list[Feature] = FEATURE_CATALOG):
    """Add evidence (JSON list of {kind, id, url, date, type, source, title}), evidence_date and
    evidence_type (of the most recent record) to reasons (reason_id, siren, as_of_date, feature): only
    records dated at or before the as-of date and inside the feature's window, most recent first, at most
    EVIDENCE_PER_REASON.
    """
    if "title" not in evidence.columns:  # serving copies published before titles were kept
        evidence = evidence.with_columns(title=pl.lit(None, pl.String))
    index, features = evidence_map(catalog)
    # Join on siren only (a company has few evidence rows), then keep the feature's keys by bit mask.
    keyed = evidence.with_columns(
        key_bit=pl.when(pl.col("kind") == "article")
        .then(pl.lit(ARTICLES_KEY))
        .otherwise("signal_type")
        .replace_strict({key: 1 << bit for key, bit in index.items()}, default=None, return_dtype=pl.UInt64)
    ).filter(pl.col("key_bit").is_not_null())
    # One literal offset per window (a per-row offset string is slow).
    window_start = pl.when(pl.lit(False)).then(pl.lit(None, pl.Date))
    for months in sorted(set(WINDOW_MONTHS.values())):
        window_start = window_start.when(pl.col("window_months") == months).then(
            pl.col("as_of_date").dt.offset_by(f"-{months}mo")
        )
    matched = (
        reasons.select("reason_id", "siren", "as_of_date", "feature")
        .join(features, on="feature")
        .join(keyed, on="siren")
        .filter(
            (pl.col("key_mask") & pl.col("key_bit")) != 0,
            pl.col("event_date") <= pl.col("as_of_date"),
            pl.col("window_months").is_null() | (pl.col("event_date") > window_start),
            pl.col("only_polarity").is_null() | (pl.col("polarity") == pl.col("only_polarity")),
        )
        .sort(["reason_id", "event_date", "source_ref"], descending=[False, True, True])
        .group_by("reason_id", maintain_order=True)
        .head(EVIDENCE_PER_REASON)
    )
    record = pl.struct(
        "kind",
        pl.col("source_ref").alias("id"),
        pl.col("source_url").alias("url"),
        pl.col("event_date").dt.to_string("%Y-%m-%d").alias("date"),
        pl.col("signal_type").alias("type"),
        "source",
        "title",
    ).struct.json_encode()
    summary = matched.group_by("reason_id").agg(
        evidence=pl.format("[{}]", record.str.join(",")),
        evidence_date=pl.col("event_date").first(),
        evidence_type=pl.col("signal_type").first(),
    )
    return reasons.join(summary, on="reason_id", how="left").with_columns(pl.col("evidence").fill_null("[]"))
