"""Read one landed file into a DuckDB staging table, whatever its format and encoding.

A file is fingerprinted in one streaming pass (SHA-256 of its bytes, UTF-8 validity, BOM), then scanned
by DuckDB (never loaded into Python objects): CSV (`,` `;` tab or `|`, detected on the header line),
JSON Lines, a JSON array or document (`{"results": [...]}` pages are expanded), or Parquet.
Files that are not UTF-8 are decoded as cp1252 (a superset of latin-1) into a temporary UTF-8 copy.

The staging result is on the connection (drop_staging removes it):
- `stage_records(record_number, raw_record, <field>...)`: a temporary view, one row per record, every
  field VARCHAR
  (NULL when the file has no such column or key); `raw_record` is the JSON text of JSON records and
  NULL for CSV/Parquet rows (rebuilt from the fields when a row is quarantined).
- `stage_rejects(record_number, raw_record, reason_code, reason_detail)`: a temporary table of the
  records that could not be parsed (broken JSON line, CSV row with the wrong column count). A file that
  does not parse at all raises the reader's error (landing rejects the file).
The view reads the text staged once (CSV fields, JSON lines) or the Parquet file itself, so the checks
that read it are a single pass: staging never copies the records twice.
`record_number` is the line number for line-based files (header = line 1 in CSV), the position of the
record for JSON arrays, documents and Parquet files.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb

from ose_assets.ingestion.labels import label_key
from ose_assets.ingestion.memory import max_line_bytes
from ose_assets.ingestion.sql import quote_literal

CHUNK_BYTES = 16 * 1024 * 1024
BOM = codecs.BOM_UTF8
CSV_DELIMITERS = (",", ";", "\t", "|")
# Field -> alternative names (JSON paths with dots, or CSV headers compared by labels.label_key).
FieldMap = Mapping[str, tuple[str, ...]]
# Connection-local tables of a staged file: stage_rejects, and the text under the stage_records view.
STAGE_TABLES = (
    "stage_rejects",
    "stage_fields",
    "stage_numbered",
    "stage_lines",
    "stage_csv_rejects",
    "stage_csv_scans",
)


@dataclasses.dataclass(frozen=True)
class FileFingerprint:
    path: Path
    size_bytes: int
    modified_at: dt.datetime
    file_hash: str
    encoding: str  # 'utf-8' or 'cp1252' for text; 'binary' for Parquet
    has_bom: bool
    file_format: str  # 'csv', 'jsonl', 'json' or 'parquet'


def fingerprint(path: Path) -> FileFingerprint:
    """Hash the file and check its encoding in one streaming pass (constant memory)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_utf8 = True
    with path.open("rb") as handle:
        head = handle.read(CHUNK_BYTES)
        chunk = head
        while chunk:
            digest.update(chunk)
            if is_utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
            chunk = handle.read(CHUNK_BYTES)
    if is_utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    stat = path.stat()
    encoding = "utf-8" if is_utf8 else "cp1252"
    file_format = detect_format(path, head, encoding)
    return FileFingerprint(
        path=path,
        size_bytes=stat.st_size,
        modified_at=dt.datetime.fromtimestamp(stat.st_mtime),
        file_hash=digest.hexdigest(),
        encoding="binary" if file_format == "parquet" else encoding,
        has_bom=head.startswith(BOM),
        file_format=file_format,
    )


def detect_format(path: Path, head: bytes, encoding: str) -> str:
    if head.startswith(b"PAR1") or path.suffix.lower() == ".parquet":
        return "parquet"
    text = head.removeprefix(BOM).decode(encoding, errors="replace").lstrip()
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        first_line = text.split("\n", 1)[0]
        try:
            json.loads(first_line)
        except ValueError:
            # A pretty-printed document, or JSON Lines whose first line is broken.
            return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "json"
        return "jsonl"
    return "csv"


@contextlib.contextmanager
def utf8_path(fp: FileFingerprint) -> Iterator[Path]:
    """The file itself unless it is cp1252 text, else a temporary UTF-8 copy decoded chunk by chunk
    (Parquet is binary: decoding it as text would corrupt it)."""
    if fp.encoding != "cp1252":
        yield fp.path
        return
    with tempfile.TemporaryDirectory(prefix="ose_transcode_") as tmp:
        target = Path(tmp) / fp.path.name
        decoder = codecs.getincrementaldecoder("cp1252")(errors="replace")
        with fp.path.open("rb") as source, target.open("w", encoding="utf-8", newline="") as out:
            while chunk := source.read(CHUNK_BYTES):
                out.write(decoder.decode(chunk))
            out.write(decoder.decode(b"", final=True))
        yield target


def stage_file(con: duckdb.DuckDBPyConnection, fp: FileFingerprint, fields: FieldMap, labels=None) -> None:
    """Fill `stage_records` and `stage_rejects` for this file (see the module docstring)."""
    con.execute(
        "create or replace temp table stage_rejects (record_number BIGINT, raw_record VARCHAR, "
        "reason_code VARCHAR, reason_detail VARCHAR)"
    )
    with utf8_path(fp) as path:
        if fp.file_format == "csv":
            _stage_csv(con, path, fields, labels or {})
        elif fp.file_format == "parquet":
            _stage_parquet(con, path, fields)
        else:
            _stage_json(con, path, fp.file_format, fields)


def drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("drop view if exists stage_records")
    for table in STAGE_TABLES:
        con.execute(f"drop table if exists {table}")


def csv_header(path: Path, encoding: str = "utf-8") -> tuple[str, list[str]]:
    """Delimiter (the most frequent candidate on the header line) and column names."""
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        line = handle.readline()
    delimiter = max(CSV_DELIMITERS, key=line.count)
    return delimiter, next(csv.reader([line], delimiter=delimiter), [])


def _field_columns(columns: list[str], fields: FieldMap, labels: Mapping[str, str]) -> dict[str, str | None]:
    """Field -> source column, names compared by label_key (`labels` maps exported header labels to names)."""
    label_names = {label_key(label): name for label, name in labels.items()}
    by_name: dict[str, str] = {}
    for column in columns:
        key = label_key(column)
        by_name.setdefault(label_key(label_names.get(key, key)), column)
    return {
        field: next((by_name[key] for a in alternatives if (key := label_key(a)) in by_name), None)
        for field, alternatives in fields.items()
    }


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select_fields(mapping: dict[str, str | None], cast: bool = False) -> str:
    def column(source: str) -> str:
        return f"cast({_ident(source)} as varchar)" if cast else _ident(source)

    return ", ".join(
        f"{column(source) if source else 'cast(null as varchar)'} as {_ident(field)}"
        for field, source in mapping.items()
    )


def _stage_csv(con, path: Path, fields: FieldMap, labels: Mapping[str, str]) -> None:
    delimiter, columns = csv_header(path)
    # DuckDB renames repeated headers; keep the first occurrence of each name.
    unique = list(dict.fromkeys(columns))
    if len(unique) != len(columns):
        columns = [c if i == columns.index(c) else f"{c}_{i}" for i, c in enumerate(columns)]
    mapping = _field_columns(columns, fields, labels)
    column_types = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in columns) + "}"
    con.execute("drop table if exists stage_csv_rejects; drop table if exists stage_csv_scans")
    # One pass into stage_fields, without numbering: DuckDB keeps the file's order, so a row's rowid is
    # its position among the valid rows (a row_number() window here halved the scan's speed).
    con.execute(
        f"""create or replace temp table stage_fields as
        select {_select_fields(mapping)}
        from read_csv({quote_literal(str(path))}, header=true, auto_detect=false,
            delim={quote_literal(delimiter)}, quote='"', escape='"', columns={column_types},
            max_line_size={max_line_bytes(con)}, store_rejects=true,
            rejects_table='stage_csv_rejects', rejects_scan='stage_csv_scans')"""
    )
    con.execute(
        """insert into stage_rejects
        select line, csv_line,
            case when error_type in ('MISSING COLUMNS', 'TOO MANY COLUMNS') then 'bad_column_count'
                 when error_type = 'INVALID UNICODE' then 'invalid_encoding' else 'bad_csv_row' end,
            error_message
        from (
            -- DuckDB reports one error per missing column: keep the first error of each line.
            select line, arg_min(csv_line, column_idx) as csv_line,
                arg_min(error_type, column_idx) as error_type,
                arg_min(error_message, column_idx) as error_message
            from stage_csv_rejects group by line)"""
    )
    # A valid row's position among the valid rows, and its fields.
    staged = "(select rowid as position, * from stage_fields) f"
    staged_fields = "f.* exclude (position)"
    if not con.execute("select count(*) from stage_rejects").fetchone()[0]:
        # Line 1 is the header.
        con.execute(
            f"""create or replace temp view stage_records as
            select position + 2 as record_number, cast(null as varchar) as raw_record, {staged_fields}
            from {staged}"""
        )
        return
    # Add the rejected lines before each valid row (reject i at line r_i comes after r_i - 1 - i valid
    # rows) to get its line number. Rare: materialized in line order.
    con.execute(
        f"""create or replace temp table stage_numbered as
        with rejects as (
            select max(rank) as shift, threshold from (
                select row_number() over (order by record_number) as rank,
                       record_number - 1 - row_number() over (order by record_number) as threshold
                from stage_rejects) group by threshold)
        select f.position + 2 + coalesce(j.shift, 0) as record_number, cast(null as varchar) as raw_record,
            {staged_fields}
        from {staged}
        asof left join rejects j on f.position + 1 > j.threshold
        order by record_number"""
    )
    con.execute("create or replace temp view stage_records as select * from stage_numbered")


def parquet_columns(path: Path) -> list[str]:
    """Column names of a Parquet file. The path is a literal, not a bound parameter: DuckDB cannot
    prepare DESCRIBE with one ("don't know what type")."""
    query = f"describe select * from read_parquet({quote_literal(str(path))})"
    return [row[0] for row in duckdb.sql(query).fetchall()]


def _stage_parquet(con, path: Path, fields: FieldMap) -> None:
    mapping = _field_columns(parquet_columns(path), fields, {})
    # A view: the checks read the file once, in parallel.
    con.execute(
        f"""create or replace temp view stage_records as
        select file_row_number + 1 as record_number, cast(null as varchar) as raw_record,
               {_select_fields(mapping, cast=True)}
        from read_parquet({quote_literal(str(path))}, file_row_number=true)"""
    )


def _json_fields(fields: FieldMap) -> tuple[str, str]:
    """(list of JSON paths, field columns over `vals`): each record is parsed once for all fields."""
    paths: list[str] = []
    columns = []
    for field, alternatives in fields.items():
        indexes = []
        for alternative in alternatives:
            paths.append(quote_literal("$." + alternative))
            indexes.append(f"vals[{len(paths)}]")
        value = indexes[0] if len(indexes) == 1 else f"coalesce({', '.join(indexes)})"
        columns.append(f"{value} as {_ident(field)}")
    return "[" + ", ".join(paths) + "]", ", ".join(columns)


def _stage_json(con, path: Path, file_format: str, fields: FieldMap) -> None:
    source = quote_literal(str(path))
    if file_format == "jsonl":
        lines = f"""select ltrim(line, chr(65279)) as line
            from read_csv({source}, columns={{'line': 'VARCHAR'}}, header=false, auto_detect=false,
                delim=chr(1), quote='', escape='', max_line_size={max_line_bytes(con)})"""
    else:
        # A whole document: an array of records, or one object (a results page) per top-level value.
        # A document that does not parse fails here: landing rejects the file (unparsable_file).
        json_format = "array" if _first_char(path) == "[" else "unstructured"
        lines = f"""select json::varchar as line from read_json_objects({source}, format='{json_format}',
                maximum_object_size={max_line_bytes(con)})"""
    # The lines, read once and kept in file order (line number = rowid + 1), with what makes a line
    # unusable (its JSON parsed once more to tell which). A line starting with `{` is not blank, without
    # trimming it whole.
    con.execute(
        f"""create or replace temp table stage_lines as
        select line,
            case when not coalesce(starts_with(line, '{{'), false) and trim(coalesce(line, '')) = ''
                    then 'blank'
                 when not json_valid(line) then 'broken_json'
                 when json_type(line) <> 'OBJECT' then 'not_an_object' end as problem
        from ({lines})"""
    )
    con.execute(
        """insert into stage_rejects
        select rowid + 1, line, problem,
            case problem when 'broken_json' then 'line is not valid JSON'
                 else 'a ' || json_type(line) || ', not an object' end
        from stage_lines where problem <> 'blank'"""
    )
    objects = "(select rowid + 1 as line_number, line from stage_lines where problem is null)"
    # Result pages ({{"results": [...]}}): a file holds pages or records, told by its first lines.
    has_pages = con.execute(
        f"""select coalesce(bool_or(json_type(line, '$.results') = 'ARRAY'
                and json_type(line, '$.siren') is null),
            false) from (select line from {objects} limit 100)"""
    ).fetchone()[0]
    if has_pages:
        records = f"""(select row_number() over (order by line_number, position) as record_number, raw_record
            from (select line_number,
                    unnest(range(1, cast(json_array_length(line, '$.results') as bigint) + 1))
                    as position, unnest(json_extract(line, '$.results[*]'))::varchar as raw_record
                  from {objects}))"""
    else:
        records = f"(select line_number as record_number, line as raw_record from {objects})"
    paths, columns = _json_fields(fields)
    # A view: each record's JSON is parsed once more, by the checks that read it.
    con.execute(
        f"""create or replace temp view stage_records as
        select record_number, raw_record, {columns}
        from (select *, json_extract_string(raw_record, {paths}) as vals from {records})"""
    )


def _head_text(path: Path, size: int = 2000) -> str:
    with path.open("rb") as handle:
        return handle.read(size).removeprefix(BOM).decode("utf-8", errors="replace")


def _first_char(path: Path) -> str:
    return _head_text(path, 4096).lstrip()[:1]
