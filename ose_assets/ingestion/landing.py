"""Land inbox files into the raw tables, once each, reconciling every record.

For each inbox entry: skip it when its content was already seen under its inbox path (same size and
mtime to the second, else same SHA-256: a restored or touched file is not landed again); reject it as
a file when it cannot be landed at all (ose_assets.ingestion.preflight: links, special files, size,
empty, binary, unreadable); record it as `duplicate_file` when that content was landed under another
name; else stage it (ose_assets.ingestion.readers), type and validate it set-wise in one pass (each
record gets the reason of its first failing check), find exact duplicates with hash aggregates (same
record content earlier in the file or already in the raw table), append the valid records to the
source's raw table and the others to `raw.quarantine_records`, and write one `raw.manifest` row with
records_read = records_loaded + records_quarantined + duplicates_dropped. Staging and checks fill
connection-local temporary tables; the writes are one transaction per file: a crash leaves the file
either fully landed or not at all; a parser error rejects it (`unparsable_file`) with nothing written.
A rejected file never stops the other files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import polars as pl

from ose_assets.ingestion import articles, bodacc, companies, outcomes, preflight, signals
from ose_assets.ingestion.preflight import Limits
from ose_assets.ingestion.readers import FileFingerprint, drop_staging, fingerprint, stage_file
from ose_assets.ingestion.spec import RawSpec, ensure_raw_table
from ose_assets.ingestion.sql import quote_literal
from ose_assets.settings import INBOX_SOURCES, model_config
from ose_assets.table_columns import TABLE_COLUMNS
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
# Connection-local tables of the checks of the file being landed (after readers.stage_file).
CHECK_TABLES = ("stage_checked", "stage_duplicates")
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
    file_hash: str | None  # None for a file rejected unopened
    status: str  # 'loaded', 'duplicate_file' or 'rejected'
    records_read: int = 0
    records_loaded: int = 0
    records_quarantined: int = 0
    duplicates_dropped: int = 0
    reason_code: str | None = None  # why a file was rejected (ose_assets.ingestion.preflight)
    reason_detail: str | None = None


MANIFEST_COLUMNS = {name: kind for name, kind, _ in TABLE_COLUMNS[MANIFEST_TABLE]}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    columns = ", ".join(f"{name} {kind}" for name, kind in MANIFEST_COLUMNS.items())
    con.execute(f"create table if not exists {MANIFEST_TABLE} ({columns})")
    # Warehouses from before reason_code / inbox_path: add them, inbox_path taken from the old paths.
    present = {row[0] for row in con.execute(f"describe {MANIFEST_TABLE}").fetchall()}
    for name in MANIFEST_COLUMNS.keys() - present:
        con.execute(f"alter table {MANIFEST_TABLE} add column {name} {MANIFEST_COLUMNS[name]}")
    if "inbox_path" not in present:
        con.execute(f"update {MANIFEST_TABLE} set inbox_path = regexp_extract(file_path, '/inbox/(.*)$', 1)")
    con.execute(
        f"""create table if not exists {QUARANTINE_TABLE} (
            source VARCHAR, source_file VARCHAR, file_hash VARCHAR, record_number BIGINT, raw_record VARCHAR,
            reason_code VARCHAR, reason_detail VARCHAR, ingested_at TIMESTAMP)"""
    )


def inbox_files(inbox_dir: Path) -> list[tuple[str, Path]]:
    """(source, path) of every entry of the inbox but folders, in path order per source.

    Hidden names and in-progress names (`.part`, `.tmp`, see model_config automation) are skipped.
    Symlinks (to files or folders), FIFOs and devices are listed, never followed: landing rejects them.
    """
    in_progress = tuple(
        model_config().get("automation", {}).get("inbox_in_progress_suffixes", [".part", ".tmp"])
    )

    def walk(folder: str):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or entry.name.endswith(in_progress):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from walk(entry.path)
            else:
                yield Path(entry.path)

    return [
        (source, path)
        for source in INBOX_SOURCES
        if (inbox_dir / source).is_dir()
        for path in sorted(walk(str(inbox_dir / source)))
    ]


def land_inbox(
    con: duckdb.DuckDBPyConnection, inbox_dir: Path, today: dt.date, limits: Limits | None = None
) -> list[LandingResult]:
    """Land every new inbox file; a file whose content was already seen under its name is skipped."""
    ensure_tables(con)
    limits = limits or Limits.from_settings()
    return [
        result
        for source, path in inbox_files(inbox_dir)
        if (result := land_file(con, path, source, today, inbox_dir, limits)) is not None
    ]


def land_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    source: str,
    today: dt.date,
    inbox_dir: Path | None = None,
    limits: Limits | None = None,
) -> LandingResult | None:
    """Land one inbox entry (or reject it, see ose_assets.ingestion.preflight); None when already seen.

    Seen, and not opened: a manifest row for the same inbox path with the same size and mtime (only to
    the second when the mtime has no fraction: a tar restore keeps whole seconds). Seen after hashing: a
    landed (not rejected) row for the same inbox path and content; its new mtime is recorded so that the
    next run does not re-read it. A rejected file is tried again when its mtime changes (touch it).
    """
    ensure_tables(con)
    inbox_dir = inbox_dir or path.parent.parent
    limits = limits or Limits.from_settings()
    try:
        info = path.lstat()
    except FileNotFoundError:  # removed or renamed since the listing: the next run sees its new name
        return None
    entry = _Entry(
        path, source, path.relative_to(inbox_dir).as_posix(), info.st_size, info.st_mtime, time.perf_counter()
    )
    if con.execute(
        f"select count(*) from {MANIFEST_TABLE} where inbox_path = ? and size_bytes = ? and "
        "(file_modified_at = ? or (? and date_trunc('second', file_modified_at) = ?))",
        [entry.inbox_path, entry.size_bytes, entry.modified_at, entry.mtime.is_integer(), entry.modified_at],
    ).fetchone()[0]:
        return None
    if rejection := preflight.check_path(path, inbox_dir, limits):
        return _record(con, entry, _rejected(entry, None, rejection))
    try:
        fp = fingerprint(path)
    except OSError as error:
        rejection = preflight.Rejection("unreadable_file", preflight.error_detail(error))
        return _record(con, entry, _rejected(entry, None, rejection))
    seen = con.execute(
        f"select count(*) from {MANIFEST_TABLE} "
        "where inbox_path = ? and file_hash = ? and status <> 'rejected'",
        [entry.inbox_path, fp.file_hash],
    ).fetchone()[0]
    if seen:
        con.execute(
            f"update {MANIFEST_TABLE} set file_modified_at = ? "
            "where inbox_path = ? and file_hash = ? and status <> 'rejected'",
            [entry.modified_at, entry.inbox_path, fp.file_hash],
        )
        return None
    if rejection := preflight.check_content(path, fp.file_format):
        return _record(con, entry, _rejected(entry, fp.file_hash, rejection), fp)
    previous = con.execute(
        f"select file_path from {MANIFEST_TABLE} where file_hash = ? and status = 'loaded' limit 1",
        [fp.file_hash],
    ).fetchone()
    if previous:
        result = LandingResult(str(path), source, fp.file_hash, "duplicate_file")
        return _record(con, entry, result, fp, duplicate_of=previous[0])
    try:
        spec = SPEC_RESOLVERS[source](fp)
        rejection = (
            preflight.Rejection("unsupported_file", f"unrecognised {fp.file_format} file for source {source}")
            if spec is None or fp.file_format not in spec.formats
            else preflight.check_columns(fp, spec)
        )
    except Exception as error:
        if not preflight.is_file_error(error):
            raise
        rejection = preflight.Rejection("unparsable_file", preflight.error_detail(error))
    if rejection:
        return _record(con, entry, _rejected(entry, fp.file_hash, rejection), fp)
    ingested_at = dt.datetime.now()
    spec = preflight.with_limits(spec, limits)
    try:
        # Staging and checks fill connection-local temporary tables before the transaction: DuckDB scans
        # a table written in the open transaction 2-3x slower (measured on a SIRENE stock).
        stage_file(con, fp, spec.fields, spec.labels)
        _check_staged(con, spec, today)
        con.execute("begin transaction")
        try:
            result = _land_checked(con, fp, source, spec, ingested_at)
            _insert_manifest(con, entry, result, fp, ingested_at, raw_table=spec.table)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    except Exception as error:
        if not preflight.is_file_error(error):
            raise
        rejection = preflight.Rejection("unparsable_file", preflight.error_detail(error))
        return _record(con, entry, _rejected(entry, fp.file_hash, rejection), fp, raw_table=spec.table)
    finally:
        con.execute(f"drop table if exists {'; drop table if exists '.join(CHECK_TABLES)}")
        drop_staging(con)
    return result


@dataclasses.dataclass(frozen=True)
class _Entry:
    path: Path
    source: str
    inbox_path: str  # relative to the inbox: what identifies the file across copies and restores
    size_bytes: int
    mtime: float
    started: float  # time.perf_counter() when landing began: the manifest's landing_seconds

    @property
    def modified_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.mtime)


def _rejected(entry: _Entry, file_hash: str | None, rejection: preflight.Rejection) -> LandingResult:
    return LandingResult(
        str(entry.path),
        entry.source,
        file_hash,
        "rejected",
        reason_code=rejection.reason_code,
        reason_detail=rejection.reason_detail,
    )


def _record(con, entry: _Entry, result: LandingResult, fp=None, **extra) -> LandingResult:
    """Write the manifest row of a file that lands no record (rejected, duplicate_file)."""
    con.execute("begin transaction")
    try:
        _insert_manifest(con, entry, result, fp, dt.datetime.now(), **extra)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result


def _insert_manifest(
    con, entry: _Entry, result: LandingResult, fp, ingested_at, raw_table=None, duplicate_of=None
) -> None:
    row = {
        "file_path": str(entry.path),
        "source": entry.source,
        "file_hash": result.file_hash,
        "size_bytes": entry.size_bytes,
        "records_read": result.records_read,
        "records_loaded": result.records_loaded,
        "records_quarantined": result.records_quarantined,
        "duplicates_dropped": result.duplicates_dropped,
        "ingested_at": ingested_at,
        "file_modified_at": entry.modified_at,
        "file_format": fp.file_format if fp else None,
        "encoding": fp.encoding if fp else None,
        "raw_table": raw_table,
        "status": result.status,
        "duplicate_of": duplicate_of,
        "reason_code": result.reason_code,
        "reason_detail": result.reason_detail,
        "inbox_path": entry.inbox_path,
        "landing_seconds": time.perf_counter() - entry.started,
    }
    con.execute(
        f"insert into {MANIFEST_TABLE} ({', '.join(row)}) values ({', '.join('?' for _ in row)})",
        list(row.values()),
    )


def _check_staged(con, spec: RawSpec, today: dt.date) -> None:
    """Type and check the staged records (`stage_checked`), find the duplicates (`stage_duplicates`)."""
    fields = ", ".join(f'f."{name}"' for name in spec.fields)
    source_struct = "struct_pack(" + ", ".join(f'"{name}" := f."{name}"' for name in spec.fields) + ")"
    typed = ", ".join(f'{expression} as "{column}"' for column, expression in spec.columns.items())
    # The index of the first failing check: each condition is evaluated once per record; the reason
    # detail and the raw record of a CSV/Parquet row are built only for the records that fail.
    checks = list(enumerate(spec.checks))
    failed = " ".join(f"when {check.condition} then {i}" for i, check in checks)
    codes = " ".join(f"when {i} then {quote_literal(check.reason_code)}" for i, check in checks)
    details = " ".join(f"when {i} then {check.detail}" for i, check in checks)
    ensure_raw_table(con, spec)
    columns = ", ".join(f'"{column}"' for column in spec.columns)
    con.execute(
        f"""create or replace temp table stage_checked as
        select record_number, record_hash, {columns}, case failed_check {codes} end as reason_code,
            cast(case failed_check {details} end as varchar) as reason_detail,
            case when failed_check is not null then coalesce(raw_record, to_json(src)::varchar) end
                as raw_record
        from (
            select *, case {failed} end as failed_check
            from (
                select f.record_number, f.raw_record,
                    md5_number(coalesce(f.raw_record, to_json([{fields}])::varchar)) as record_hash,
                    {source_struct} as src, t.today, {typed}
                from stage_records f, (select cast(? as date) as today) t))""",
        [today],
    )
    # Duplicates by hash aggregates (no sort): a record whose content came earlier in the file, or is
    # already in the raw table. Few rows: the inserts below leave them out with an anti join.
    con.execute(
        f"""create or replace temp table stage_duplicates as
        select c.record_number from stage_checked c
        join (select record_hash, min(record_number) as first_number from stage_checked
              group by record_hash having count(*) > 1) r
            on c.record_hash = r.record_hash and c.record_number > r.first_number
        union
        select record_number from stage_checked where record_hash in (select record_hash from {spec.table})"""
    )


def _land_checked(con, fp: FileFingerprint, source: str, spec: RawSpec, ingested_at) -> LandingResult:
    """Append the checked records to the raw table and the quarantine, leaving the duplicates out."""
    columns = ", ".join(f'"{column}"' for column in spec.columns)
    # A plain hash anti join on the few duplicates (NOT EXISTS would be decorrelated into a costlier plan).
    kept = "stage_checked anti join stage_duplicates using (record_number)"
    # Without ORDER BY: DuckDB keeps insertion order, so rows stay in file order.
    loaded = con.execute(
        f"""insert into {spec.table} (file_hash, record_number, record_hash, ingested_at, {columns})
        select ?, record_number, record_hash, ?, {columns} from {kept} where reason_code is null""",
        [fp.file_hash, ingested_at],
    ).fetchone()[0]
    # Quarantined raw records are cut to QUARANTINE_RECORD_CHARS (an over-long field can be megabytes;
    # the reason detail names it and its length).
    cap = preflight.QUARANTINE_RECORD_CHARS
    quarantined = con.execute(
        f"""insert into {QUARANTINE_TABLE}
        select ?, ?, ?, record_number,
            case when length(raw_record) > {cap}
                 then left(raw_record, {cap}) || ' [cut at {cap} characters]' else raw_record end,
            reason_code, reason_detail, ?
        from (
            select record_number, raw_record, reason_code, reason_detail from stage_rejects
            union all
            select record_number, raw_record, reason_code, reason_detail from {kept}
            where reason_code is not null)
        order by record_number""",
        [source, str(fp.path), fp.file_hash, ingested_at],
    ).fetchone()[0]
    read, duplicates = con.execute(
        """select (select count(*) from stage_checked) + (select count(*) from stage_rejects),
            (select count(*) from stage_duplicates)"""
    ).fetchone()
    return LandingResult(
        str(fp.path),
        source,
        fp.file_hash,
        "loaded",
        records_read=read,
        records_loaded=loaded,
        records_quarantined=quarantined,
        duplicates_dropped=duplicates,
    )


def rejected_files(con: duckdb.DuckDBPyConnection, inbox_dir: Path) -> pl.DataFrame:
    """Inbox files whose latest manifest row is `rejected` and that are still in the inbox (a removed or
    corrected file no longer counts)."""
    ensure_tables(con)
    latest = con.execute(
        f"""select inbox_path, reason_code, reason_detail, ingested_at from {MANIFEST_TABLE}
        where inbox_path is not null
        qualify row_number() over (partition by inbox_path order by ingested_at desc) = 1
            and status = 'rejected'
        order by inbox_path"""
    ).pl()
    present = [os.path.lexists(inbox_dir / path) for path in latest["inbox_path"]]
    return latest.filter(pl.Series(present, dtype=pl.Boolean))


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
