"""Business-event signals: the JSON Lines / CSV feed plus BODACC, rebuilt set-wise into normalized.signals."""

from __future__ import annotations

import duckdb

from ose_assets.ingestion import bodacc
from ose_assets.ingestion.spec import Check, RawSpec, date_checks, ensure_raw_table, siren_checks
from ose_assets.ingestion.sql import clean_text, parse_date, parse_number, siren_digits
from ose_assets.ingestion.vocabulary import signal_type_sql, vocabulary_values
from ose_assets.warehouse import replace_table

TABLE = "normalized.signals"

FEED_SPEC = RawSpec(
    table="raw.signal_records",
    fields={
        "siren": ("siren",),
        "date": ("date", "event_date"),
        "type": ("type", "signal_type"),
        "amount": ("amount",),
        "count": ("count",),
        "source": ("source",),
        "source_ref": ("source_ref", "id"),
        "url": ("url", "source_url"),
    },
    columns={
        "siren": siren_digits("f.siren"),
        "event_date": parse_date("f.date"),
        "raw_type": clean_text("f.type"),
        "signal_type": signal_type_sql("f.type"),
        "amount": parse_number("f.amount"),
        "count": parse_number("f.count"),
        "source": f"coalesce({clean_text('f.source')}, 'feed')",
        "source_ref": clean_text("f.source_ref"),
        "source_url": clean_text("f.url"),
    },
    checks=(
        *siren_checks("siren", "siren"),
        *date_checks("event_date", "date", required=True, event=True),
        Check("raw_type is null", "missing_signal_type", "'no type'"),
        Check("signal_type is null", "unknown_signal_type", "'type: ' || raw_type"),
        Check(
            f"(amount is null and {clean_text('src.amount')} is not null)"
            f" or (count is null and {clean_text('src.count')} is not null)",
            "bad_number",
            "'amount: ' || coalesce(src.amount, '') || ', count: ' || coalesce(src.count, '')",
        ),
    ),
    formats=("csv", "jsonl", "json", "parquet"),
)

# Feed events are identified by (source, source_ref, siren, type, date): a re-delivered event with
# changed content replaces the previous one (newest landing wins).
SIGNALS_QUERY = f"""
with feed as (
    select md5(concat_ws('|', 'feed', source, coalesce(source_ref, ''), siren, signal_type,
            event_date::varchar))
            as signal_id,
        siren, event_date, signal_type, coalesce(amount, count) as magnitude, source, source_ref, source_url,
        cast(null as varchar) as description, file_hash, ingested_at
    from {FEED_SPEC.table}
    qualify row_number() over (
        partition by signal_id order by ingested_at desc, record_number desc) = 1
), events as (
    select * from feed union all by name ({bodacc.BODACC_SIGNALS_QUERY})
)
select e.signal_id, e.siren::varchar(9) as siren, e.event_date, e.signal_type, v.signal_family,
    cast(v.polarity as tinyint) as polarity, e.magnitude, e.source, e.source_ref, e.source_url,
    coalesce(e.description, v.label_fr) as description, e.file_hash, e.ingested_at
from events e join {vocabulary_values()} v using (signal_type)
order by e.event_date, e.siren, e.signal_id
"""


def build_signals(con: duckdb.DuckDBPyConnection) -> dict:
    ensure_raw_table(con, FEED_SPEC)
    ensure_raw_table(con, bodacc.BODACC_SPEC)
    con.execute(f"create or replace temp table {bodacc.TYPED_TABLE} as {bodacc.TYPED_QUERY}")
    rows = replace_table(con, TABLE, SIGNALS_QUERY)
    rectificatifs, annulations, without_type = con.execute(bodacc.CORRECTION_COUNTS_QUERY).fetchone()
    con.execute(f"drop table {bodacc.TYPED_TABLE}")
    return {
        "signals": rows,
        "bodacc_rectificatifs": rectificatifs,
        "bodacc_annulations": annulations,
        "bodacc_announcements_without_signal_type": without_type,
    }
