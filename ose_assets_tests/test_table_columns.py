"""Every column of every table asset is described, from one source the data dictionary is generated from."""

from __future__ import annotations

import duckdb
import pytest

from ose_assets.definitions import build_definitions
from ose_assets.features.catalog import DATA_DICTIONARY_PATH
from ose_assets.settings import OSESettings
from ose_assets.table_columns import MARKER, render_data_dictionary, table_columns, table_of

NOT_TABLES = {"model/opportunity_model", "scoring/serving_copy"}  # an MLflow model, a DuckDB file
NOT_ASSETS = {"normalized.build_fingerprints"}  # bookkeeping of the normalized assets


def test_every_table_asset_publishes_a_described_column_schema(tmp_path):
    graph = build_definitions(OSESettings(data_dir=tmp_path)).resolve_asset_graph()
    tables = set()
    for key in graph.get_all_asset_keys():
        if key.to_user_string() in NOT_TABLES:
            continue
        schema = graph.get(key).metadata.get("dagster/column_schema")
        assert schema is not None, f"{key.to_user_string()}: no column schema (see table_columns.py)"
        undescribed = [c.name for c in schema.columns if not (c.description or "").strip()]
        assert not undescribed, f"{key.to_user_string()}: columns without description: {undescribed}"
        assert all(c.type for c in schema.columns), key
        tables.add(table_of(key))
    assert tables == set(table_columns()) - NOT_ASSETS, (
        "a described table has no asset, or an asset no description"
    )


def test_the_data_dictionary_is_generated_from_the_column_source():
    text = DATA_DICTIONARY_PATH.read_text(encoding="utf-8")
    assert render_data_dictionary(text) == text, "run python -m ose_assets.table_columns"
    documented = {m["table"] for m in MARKER.finditer(text)}
    # features.company_features has its own generated section (python -m ose_assets.features.catalog).
    assert documented == set(table_columns()) - {"features.company_features"}


@pytest.mark.slow
def test_every_materialized_column_is_declared_with_its_type(e2e_run):
    declared = {table: [(c.name, c.type) for c in columns] for table, columns in table_columns().items()}
    with duckdb.connect(str(e2e_run.settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name, data_type "
            "from information_schema.columns order by table_schema, table_name, ordinal_position"
        ).fetchall()
    actual: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        actual.setdefault(table, []).append((column, data_type))
    assert set(actual) == set(declared)
    for table, columns in actual.items():
        assert columns == declared[table], f"{table}: declare every column in ose_assets/table_columns.py"
