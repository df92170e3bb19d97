"""DuckDB IO manager for Polars frames, fixed for this stack (see docs/architecture.md).

dagster-duckdb-polars 0.29 has two defects here: its loader calls `.arrow()` on the DuckDB
connection (removed in DuckDB 2.0), and its store deletes rows then inserts into the existing table,
so an asset whose columns change fails. The handler below replaces whole tables atomically and loads
with `.pl()`, which every DuckDB release since 0.8 has.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from dagster import InputContext, OutputContext
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient, DuckDBIOManager
from dagster_duckdb_polars import DuckDBPolarsTypeHandler


class ReplacingPolarsTypeHandler(DuckDBPolarsTypeHandler):
    """Writes a whole (unpartitioned) table with CREATE OR REPLACE, so its schema may change."""

    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj: pl.DataFrame, connection):
        if table_slice.partition_dimensions:
            return super().handle_output(context, table_slice, obj, connection)
        frame = obj.to_arrow()  # noqa: F841  (DuckDB reads the local variable by name)
        connection.execute(f'create schema if not exists "{table_slice.schema}"')
        connection.execute(
            f'create or replace table "{table_slice.schema}"."{table_slice.table}" as select * from frame'
        )
        context.add_output_metadata({"dagster/row_count": obj.height})

    def load_input(self, context: InputContext, table_slice: TableSlice, connection) -> pl.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pl.DataFrame()
        return connection.execute(DuckDbClient.get_select_statement(table_slice)).pl()


class OSEDuckDBIOManager(DuckDBIOManager):
    """Stores Polars frames returned by assets in the warehouse, schema = asset key prefix."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [ReplacingPolarsTypeHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pl.DataFrame
