"""What a raw table is made of: staged fields, typed columns and validation rules, with shared rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import duckdb

from ose_assets.ingestion.readers import FieldMap
from ose_assets.ingestion.sql import clean_text, siren_rules

# Business events (signals, BODACC, articles, CRM opportunities) dated earlier are data errors.
EARLIEST_DATE = "1900-01-01"


@dataclasses.dataclass(frozen=True)
class Check:
    """A validation rule: records where `condition` holds are quarantined with `reason_code`."""

    condition: str  # SQL over the typed columns, `src.<field>` (staged text) and `today`
    reason_code: str
    detail: str = "null"  # SQL for reason_detail, e.g. the offending value


@dataclasses.dataclass(frozen=True)
class RawSpec:
    """How one kind of file lands in its raw table."""

    table: str  # raw.<name>
    fields: FieldMap  # staged text fields and their alternative names (JSON paths or CSV headers)
    columns: Mapping[str, str]  # raw table column -> SQL over `f.<field>` (the staged fields)
    checks: tuple[Check, ...]  # in order; the first failing rule gives the reason
    formats: tuple[str, ...] = ("csv", "jsonl", "json", "parquet")
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)  # CSV header label -> field
    # Fields holding a body or a JSON sub-document: limited by OSE_MAX_DOCUMENT_CHARS, not the field limit.
    document_fields: tuple[str, ...] = ()


def siren_checks(column: str, field: str) -> tuple[Check, ...]:
    """Missing, non-digit, wrong length and bad Luhn SIRENs (`column` is the cleaned SIREN); in this
    order, as a record gets the reason of its first failing check."""
    detail = f"'siren: ' || coalesce(src.\"{field}\", '<empty>')"
    return tuple(Check(condition, code, detail) for condition, code in siren_rules(column))


def date_checks(column: str, field: str, *, required: bool, event: bool) -> tuple[Check, ...]:
    """Unparsable dates; missing ones if `required`; for events, dates after the ingestion day or before
    EARLIEST_DATE (company dates are not bounded: a few real companies are older)."""
    detail = f"'{field}: ' || coalesce(src.\"{field}\", '<empty>')"
    given = clean_text(f'src."{field}"')
    checks = [Check(f"{column} is null and {given} is not null", "bad_date", detail)]
    if required:
        checks.append(Check(f"{column} is null", "missing_date", detail))
    if event:
        checks.append(Check(f"cast({column} as date) > today", "future_date", detail))
        checks.append(Check(f"cast({column} as date) < date '{EARLIEST_DATE}'", "implausible_date", detail))
    return tuple(checks)


def ensure_raw_table(con: duckdb.DuckDBPyConnection, spec: RawSpec) -> None:
    """Create the spec's raw table (empty) if missing: landing metadata columns, then the typed columns."""
    staged = ", ".join(f'cast(null as varchar) as "{field}"' for field in spec.fields)
    typed = ", ".join(f'{expression} as "{column}"' for column, expression in spec.columns.items())
    con.execute("create schema if not exists raw")
    con.execute(
        f"""create table if not exists {spec.table} as select cast(null as varchar) as file_hash,
            cast(null as bigint) as record_number, cast(null as uhugeint) as record_hash,
            cast(null as timestamp) as ingested_at, {typed}
        from (select {staged}) f where false"""
    )
