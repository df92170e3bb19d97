"""CRM outcomes: one row per opportunity (the newest record of each opportunity_id)."""

from __future__ import annotations

import duckdb

from ose_assets.ingestion.labels import label_key_sql
from ose_assets.ingestion.spec import Check, RawSpec, date_checks, ensure_raw_table, siren_checks
from ose_assets.ingestion.sql import clean_text, parse_date, siren_digits
from ose_assets.warehouse import replace_table

TABLE = "normalized.outcomes"
STATUS_KEY = label_key_sql(clean_text("f.status"))

OUTCOME_SPEC = RawSpec(
    table="raw.outcome_records",
    fields={
        "opportunity_id": ("opportunity_id", "id"),
        "siren": ("siren",),
        "opportunity_date": ("opportunity_date", "created_date", "date"),
        "closed_date": ("closed_date", "close_date"),
        "status": ("status", "outcome", "stage"),
    },
    columns={
        "siren": siren_digits("f.siren"),
        "opportunity_id": f"coalesce({clean_text('f.opportunity_id')}, "
        f"md5(concat_ws('|', {siren_digits('f.siren')}, {clean_text('f.opportunity_date')})))",
        "opportunity_date": parse_date("f.opportunity_date"),
        "closed_date": parse_date("f.closed_date"),
        "status": f"""case when {STATUS_KEY} in ('won', 'gagne', 'gagnee', 'closed_won', 'win') then 'won'
            when {STATUS_KEY} in ('lost', 'perdu', 'perdue', 'closed_lost', 'loss') then 'lost'
            when {STATUS_KEY} in ('open', 'ouvert', 'ouverte', 'en_cours', 'pending') then 'open'
            when {STATUS_KEY} is null and {clean_text("f.closed_date")} is null then 'open' end""",
    },
    checks=(
        *siren_checks("siren", "siren"),
        *date_checks("opportunity_date", "opportunity_date", required=True, event=True),
        *date_checks("closed_date", "closed_date", required=False, event=True),
        Check("status is null", "bad_status", "'status: ' || coalesce(src.status, '<empty>')"),
        Check("closed_date < opportunity_date", "inconsistent_dates", "'closed before the opportunity date'"),
    ),
    formats=("csv", "jsonl", "json", "parquet"),
)

OUTCOMES_QUERY = f"""
select opportunity_id, siren::varchar(9) as siren, opportunity_date, closed_date, status
from {OUTCOME_SPEC.table}
qualify row_number() over (partition by opportunity_id order by ingested_at desc, record_number desc) = 1
order by opportunity_date, opportunity_id
"""


def build_outcomes(con: duckdb.DuckDBPyConnection) -> int:
    ensure_raw_table(con, OUTCOME_SPEC)
    return replace_table(con, TABLE, OUTCOMES_QUERY)
