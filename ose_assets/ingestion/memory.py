"""How long a line (or JSON object) DuckDB may read on a connection, from its memory limit.

DuckDB's CSV reader (also used for JSON Lines) allocates buffers of 16 x max_line_size, its JSON reader
2 x maximum_object_size: a 256 MB line size asks for 4 GiB blocks and fails under
OSE_DUCKDB_MEMORY_LIMIT=1GB. Lines and JSON objects (an array element, or a whole results page) are
capped to memory_limit / 64 (16 MB at 1 GB), between 1 MB and 256 MB; a longer one makes its file
rejected as unparsable_file.
"""

from __future__ import annotations

import re

import duckdb

MAX_LINE_BYTES = 256 * 1024 * 1024
MIN_LINE_BYTES = 1024 * 1024


def max_line_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """Longest CSV / JSON Lines line, or JSON object, DuckDB may read within the connection's memory."""
    setting = con.execute("select current_setting('memory_limit')").fetchone()[0]
    return max(MIN_LINE_BYTES, min(MAX_LINE_BYTES, parse_size(setting) // 64))


def parse_size(text: str) -> int:
    """DuckDB's sizes in bytes: '953.6 MiB', '18.6 GiB', '1GB', '512 bytes'."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]i?B|B|bytes)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"unreadable DuckDB size {text!r}")
    number, unit = float(match.group(1)), (match.group(2) or "B").upper()
    if unit in ("B", "BYTES"):
        return int(number)
    base = 1024 if "I" in unit else 1000
    return int(number * base ** ("KMGT".index(unit[0]) + 1))
