"""Land inbox files into the raw tables, once each, reconciling every record.

For each new file: fingerprint (SHA-256 of the content), skip it if that content was already landed
under any name, stage it (ose_assets.ingestion.readers), validate set-wise, drop exact duplicates
(same record content earlier in the file or already in the raw table), append the valid records to
the source's raw table and the others to `raw.quarantine_records`, and write one `raw.manifest` row with
records_read = records_loaded + records_quarantined + duplicates_dropped. One transaction per file: a
crash leaves the file either fully landed or not at all. Old files are never re-read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb

from ose_assets.ingestion import articles, bodacc, companies, outcomes, signals
from ose_assets.ingestion.readers import FileFingerprint, fingerprint, stage_file
from ose_assets.ingestion.spec import RawSpec, ensure_raw_table
from ose_assets.ingestion.sql import first_reason
from ose_assets.settings import INBOX_SOURCES, model_config
from ose_assets.warehouse import table_exists

MANIFEST_TABLE = "raw.manifest"
QUARANTINE_TABLE = "raw.quarantine_records"

# Source (inbox folder) -> the raw spec of a fingerprinted file, None if the file is not recognised.
SPEC_RESOLVERS: Mapping[str, Callable[[FileFingerprint], RawSpec | None]] = {
    "companies": companies.raw_spec,
    "signals": lambda fp: signals.FEED_SPEC,
    "bodacc": lambda fp: bodacc.BODACC_SPEC,
    "articles": lambda fp: articles.ARTICLE_SPEC,
    "outcomes": lambda fp: outcomes.OUTCOME_SPEC,
}
RAW_TABLES = (
    companies.UNITE_LEGALE_SPEC.table,
    companies.ETABLISSEMENT_SPEC.table,
    companies.COMPANY_JSON_SPEC.table,
    signals.FEED_SPEC.table,
    bodacc.BODACC_SPEC.table,
    articles.ARTICLE_SPEC.table,
    outcomes.OUTCOME_SPEC.table,
)


@dataclasses.dataclass
class LandingResult:
    file_path: str
    source: str
    file_hash: str
    status: str  # 'loaded', 'duplicate_file' or 'unsupported'
    records_read: int = 0
    records_loaded: int = 0
    records_quarantined: int = 0
    duplicates_dropped: int = 0


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    con.execute(
        f"""create table if not exists {MANIFEST_TABLE} (
            file_path VARCHAR, source VARCHAR, file_hash VARCHAR, size_bytes BIGINT, records_read BIGINT,
            records_loaded BIGINT, records_quarantined BIGINT, duplicates_dropped BIGINT,
            ingested_at TIMESTAMP, file_modified_at TIMESTAMP, file_format VARCHAR, encoding VARCHAR,
            raw_table VARCHAR, status VARCHAR, duplicate_of VARCHAR)"""
    )
    con.execute(
        f"""create table if not exists {QUARANTINE_TABLE} (
            source VARCHAR, source_file VARCHAR, file_hash VARCHAR, record_number BIGINT, raw_record VARCHAR,
            reason_code VARCHAR, reason_detail VARCHAR, ingested_at TIMESTAMP)"""
    )


def inbox_files(inbox_dir: Path) -> list[tuple[str, Path]]:
    """(source, path) of every complete file in the inbox, in name order per source.

    Hidden files and in-progress names (`.part`, `.tmp`, see model_config automation) are skipped.
    """
    in_progress = tuple(
        model_config().get("automation", {}).get("inbox_in_progress_suffixes", [".part", ".tmp"])
    )
    return [
        (source, path)
        for source in INBOX_SOURCES
        if (inbox_dir / source).is_dir()
        for path in sorted((inbox_dir / source).rglob("*"))
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith(in_progress)
    ]


def land_inbox(con: duckdb.DuckDBPyConnection, inbox_dir: Path, today: dt.date) -> list[LandingResult]:
    """Land every new inbox file; files already in the manifest (same path, size and mtime) are skipped."""
    ensure_tables(con)
    return [
        result
        for source, path in inbox_files(inbox_dir)
        if (result := land_file(con, path, source, today)) is not None
    ]


def land_file(
    con: duckdb.DuckDBPyConnection, path: Path, source: str, today: dt.date
) -> LandingResult | None:
    ensure_tables(con)
    stat = path.stat()
    modified_at = dt.datetime.fromtimestamp(stat.st_mtime)
    if con.execute(
        f"select count(*) from {MANIFEST_TABLE} "
        "where file_path = ? and size_bytes = ? and file_modified_at = ?",
        [str(path), stat.st_size, modified_at],
    ).fetchone()[0]:
        return None
    fp = fingerprint(path)
    ingested_at = dt.datetime.now()
    spec = SPEC_RESOLVERS[source](fp)
    con.execute("begin transaction")
    try:
        previous = con.execute(
            f"select file_path from {MANIFEST_TABLE} where file_hash = ? and status = 'loaded' limit 1",
            [fp.file_hash],
        ).fetchone()
        if previous:
            result = LandingResult(str(path), source, fp.file_hash, "duplicate_file")
        elif spec is None or fp.file_format not in spec.formats:
            result = _quarantine_whole_file(con, fp, source, ingested_at)
        else:
            stage_file(con, fp, spec.fields, spec.labels)
            result = _land_staged(con, fp, source, spec, today, ingested_at)
        con.execute(
            f"insert into {MANIFEST_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                str(path),
                source,
                fp.file_hash,
                fp.size_bytes,
                result.records_read,
                result.records_loaded,
                result.records_quarantined,
                result.duplicates_dropped,
                ingested_at,
                modified_at,
                fp.file_format,
                fp.encoding,
                spec.table if spec else None,
                result.status,
                previous[0] if previous else None,
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result


def _quarantine_whole_file(con, fp: FileFingerprint, source: str, ingested_at) -> LandingResult:
    con.execute(
        f"insert into {QUARANTINE_TABLE} values (?, ?, ?, 0, null, 'unsupported_file', ?, ?)",
        [
            source,
            str(fp.path),
            fp.file_hash,
            f"unrecognised {fp.file_format} file for source {source}",
            ingested_at,
        ],
    )
    return LandingResult(str(fp.path), source, fp.file_hash, "unsupported", 1, 0, 1, 0)


def _land_staged(con, fp: FileFingerprint, source: str, spec: RawSpec, today: dt.date, ingested_at):
    fields = ", ".join(f'f."{name}"' for name in spec.fields)
    source_struct = "struct_pack(" + ", ".join(f'"{name}" := f."{name}"' for name in spec.fields) + ")"
    typed = ", ".join(f'{expression} as "{column}"' for column, expression in spec.columns.items())
    reasons = first_reason(*((check.condition, check.reason_code) for check in spec.checks))
    details = " ".join(f"when {c.condition} then {c.detail}" for c in spec.checks)
    ensure_raw_table(con, spec)
    columns = ", ".join(f'"{column}"' for column in spec.columns)
    record_hash = f"md5_number(coalesce(f.raw_record, to_json([{fields}])::varchar))"
    # One materialised pass: typed columns, duplicate flag, first failing rule. Duplicates by hash
    # aggregates (no sort): `repeated` holds the first record of each content seen more than once in
    # the file (few rows); a record is a duplicate after that first one, or when already in the table.
    con.execute(
        f"""create or replace temp table stage_checked as
        with repeated as (
            select record_hash, min(record_number) as first_number
            from (select f.record_number, {record_hash} as record_hash from stage_records f)
            group by record_hash having count(*) > 1)
        select record_number, record_hash, {columns},
            coalesce(record_number > r.first_number, false)
                or record_hash in (select record_hash from {spec.table}) as is_duplicate,
            {reasons} as reason_code, cast(case {details} end as varchar) as reason_detail
        from (
            select f.record_number, {record_hash} as record_hash, {source_struct} as src, t.today, {typed}
            from stage_records f, (select cast(? as date) as today) t) c
        left join repeated r using (record_hash)""",
        [today],
    )
    con.execute(
        f"""insert into {spec.table} (file_hash, record_number, record_hash, ingested_at, {columns})
        select ?, record_number, record_hash, ?, {columns} from stage_checked
        where not is_duplicate and reason_code is null order by record_number""",
        [fp.file_hash, ingested_at],
    )
    con.execute(
        f"""insert into {QUARANTINE_TABLE}
        select ?, ?, ?, record_number, raw_record, reason_code, reason_detail, ? from (
            select record_number, raw_record, reason_code, reason_detail from stage_rejects
            union all
            select c.record_number, coalesce(f.raw_record, to_json({source_struct})::varchar), c.reason_code,
                c.reason_detail
            from stage_checked c join stage_records f using (record_number)
            where not c.is_duplicate and c.reason_code is not null)
        order by record_number""",
        [source, str(fp.path), fp.file_hash, ingested_at],
    )
    rejected, loaded, quarantined, duplicates = con.execute(
        """select (select count(*) from stage_rejects),
            count(*) filter (where not is_duplicate and reason_code is null),
            count(*) filter (where not is_duplicate and reason_code is not null),
            count(*) filter (where is_duplicate)
        from stage_checked"""
    ).fetchone()
    con.execute("drop table stage_records; drop table stage_checked")
    return LandingResult(
        str(fp.path),
        source,
        fp.file_hash,
        "loaded",
        records_read=rejected + loaded + quarantined + duplicates,
        records_loaded=loaded,
        records_quarantined=rejected + quarantined,
        duplicates_dropped=duplicates,
    )


def reconciliation(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Manifest rows whose counts do not add up, or disagree with the raw and quarantine tables."""
    ensure_tables(con)
    loaded = (
        " union all ".join(
            f"select file_hash, count(*) as n from {t} group by file_hash"
            for t in RAW_TABLES
            if table_exists(con, t)
        )
        or "select null::varchar as file_hash, 0 as n where false"
    )
    return con.execute(
        f"""with loaded as (select file_hash, sum(n) as n from ({loaded}) group by file_hash),
        quarantined as (select file_hash, count(*) as n from {QUARANTINE_TABLE} group by file_hash)
        select m.file_path, m.records_read, m.records_loaded, m.records_quarantined, m.duplicates_dropped,
               coalesce(l.n, 0) as rows_in_raw, coalesce(q.n, 0) as rows_in_quarantine
        from (select file_hash, any_value(file_path) as file_path, sum(records_read) as records_read,
                     sum(records_loaded) as records_loaded, sum(records_quarantined) as records_quarantined,
                     sum(duplicates_dropped) as duplicates_dropped
              from {MANIFEST_TABLE} group by file_hash) m
        left join loaded l using (file_hash) left join quarantined q using (file_hash)
        where m.records_read <> m.records_loaded + m.records_quarantined + m.duplicates_dropped
           or m.records_loaded <> coalesce(l.n, 0) or m.records_quarantined <> coalesce(q.n, 0)"""
    ).fetchall()
