"""The scored table as a file for the sales team's spreadsheet (`ose export`), read from the serving copy.

Cells of CSV and XLSX exports are formula-safe (OWASP CSV injection): evidence, names and labels come from
outside, and a cell starting with `=`, `+`, `-`, `@`, tab or CR would run as a formula in a spreadsheet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FORMATS = ("csv", "parquet", "xlsx")
# A worksheet holds 1,048,576 rows, one of them the header.
XLSX_MAX_ROWS = 1_048_575
SCHEMA = "serving"


def formula_safe(value):
    """A spreadsheet cell that cannot run as a formula (OWASP CSV injection): prefix a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def formula_safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """formula_safe applied to every text column, column-wise (the same rule, for a million rows)."""
    pattern = "^[" + "".join("\\" + prefix if prefix in "-+" else prefix for prefix in FORMULA_PREFIXES) + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(pattern))
        .then("'" + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )


@contextlib.contextmanager
def read_only_serving(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The serving copy attached read-only as `serving` on a private in-memory database (nothing cached by
    path, and a publish can replace the file meanwhile)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no serving copy at {path}: run the pipeline (ose run) first")
    with duckdb.connect(":memory:") as con:
        quoted = str(path).replace("'", "''")
        con.execute(f"attach '{quoted}' as {SCHEMA} (read_only)")
        yield con


def scored_table(con: duckdb.DuckDBPyConnection, lang: str = "fr") -> pl.DataFrame:
    """Every row of company_scores (rank order, excluded companies last) with its reasons in `lang`: the
    positive and negative reasons joined with ' ; ', and the evidence of the top positive reason (JSON)."""
    reason = f"reason_{'en' if lang == 'en' else 'fr'}"
    return con.execute(
        f"""
        with reasons as (
            select siren,
                   string_agg({reason}, ' ; ' order by reason_rank) filter (where direction = 'up')
                       as reasons_for,
                   string_agg({reason}, ' ; ' order by reason_rank) filter (where direction = 'down')
                       as reasons_against,
                   arg_min(evidence, reason_rank) filter (where direction = 'up') as top_reason_evidence
            from {SCHEMA}.score_reasons group by siren
        )
        select c.*, r.reasons_for, r.reasons_against, r.top_reason_evidence
        from {SCHEMA}.company_scores c left join reasons r using (siren)
        order by c.rank nulls last, c.siren
        """
    ).pl()


def write_export(frame: pl.DataFrame, fmt: str, out: Path) -> None:
    """Write `frame` as csv, parquet or xlsx to `out` (through a temporary file, then renamed)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; accepted: {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.name}.part")
    if fmt == "parquet":
        frame.write_parquet(staged)
    elif fmt == "csv":
        formula_safe_frame(frame).write_csv(staged)
    else:
        _write_xlsx(frame, staged)
    staged.replace(out)


def _write_xlsx(frame: pl.DataFrame, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if frame.height > XLSX_MAX_ROWS:
        raise ValueError(
            f"{frame.height:,} rows do not fit in one worksheet ({XLSX_MAX_ROWS:,} at most): "
            "export as csv or parquet"
        )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("company_scores")
    sheet.append(frame.columns)
    for row in frame.iter_rows():
        # Control characters are not allowed in XLSX cells: removed, the rest kept.
        sheet.append(
            [formula_safe(ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v) for v in row]
        )
    workbook.save(path)
