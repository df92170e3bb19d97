"""Writing Polars frames to warehouse tables atomically."""

from __future__ import annotations

import uuid

import duckdb
import polars as pl

from ose_assets.warehouse import replace_table


def write_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Atomically replace `table` with `frame`; return its row count.

    Registered explicitly: warehouse.replace_table_from_frame's replacement scan looks for the frame in
    the wrong Python frame (DuckDB resolves names in the caller of execute).
    """
    view = f"frame_{uuid.uuid4().hex}"
    con.register(view, frame.to_arrow())
    try:
        return replace_table(con, table, f"select * from {view}")
    finally:
        con.unregister(view)
