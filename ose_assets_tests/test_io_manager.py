"""The fixed DuckDB Polars IO manager: whole-table replace (schema may change) and `.pl()` loads."""

import dagster as dg
import duckdb
import polars as pl

from ose_assets.io_manager import OSEDuckDBIOManager


def _materialize(tmp_path, frame: pl.DataFrame) -> dg.ExecuteInProcessResult:
    @dg.asset(key_prefix=["scoring"], name="sample")
    def sample() -> pl.DataFrame:
        return frame

    @dg.asset(key_prefix=["scoring"], name="sample_width")
    def sample_width(sample: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame({"width": [sample.width], "height": [sample.height]})

    database = str(tmp_path / "io.duckdb")
    return dg.materialize(
        [sample, sample_width], resources={"io_manager": OSEDuckDBIOManager(database=database)}
    )


def test_second_materialization_with_added_column_replaces_the_table(tmp_path):
    assert _materialize(tmp_path, pl.DataFrame({"siren": ["732829320"]})).success
    result = _materialize(tmp_path, pl.DataFrame({"siren": ["732829320", "552100554"], "score": [1.5, 2.5]}))
    assert result.success
    with duckdb.connect(str(tmp_path / "io.duckdb"), read_only=True) as con:
        assert con.execute("select * from scoring.sample order by siren").fetchall() == [
            ("552100554", 2.5),
            ("732829320", 1.5),
        ]
        # The downstream asset loaded the new two-column frame through the IO manager.
        assert con.execute("select width, height from scoring.sample_width").fetchall() == [(2, 2)]


def test_rematerialization_does_not_duplicate_rows(tmp_path):
    frame = pl.DataFrame({"siren": ["732829320"], "score": [3.0]})
    for _ in range(2):
        assert _materialize(tmp_path, frame).success
    with duckdb.connect(str(tmp_path / "io.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from scoring.sample").fetchone()[0] == 1


class _ConnectionWithoutArrow:
    """A DuckDB connection as DuckDB 2.0 shapes it: results have no `.arrow()`."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args):
        return _ResultWithoutArrow(self._con.execute(sql, *args))


class _ResultWithoutArrow:
    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        if name == "arrow":
            raise AttributeError("'DuckDBPyConnection' object has no attribute 'arrow'")
        return getattr(self._result, name)


def test_loader_works_without_the_removed_arrow_method(tmp_path):
    from dagster._core.storage.db_io_manager import TableSlice

    from ose_assets.io_manager import ReplacingPolarsTypeHandler

    con = duckdb.connect(str(tmp_path / "io.duckdb"))
    con.execute(
        "create schema scoring; create table scoring.sample as select '732829320' as siren, 1.5 as score"
    )
    table_slice = TableSlice(table="sample", schema="scoring", database="io")
    loaded = ReplacingPolarsTypeHandler().load_input(
        dg.build_input_context(), table_slice, _ConnectionWithoutArrow(con)
    )
    assert loaded.to_dicts() == [{"siren": "732829320", "score": 1.5}]


def test_replace_table_from_frame_replaces_schema_and_rows(tmp_path):
    from ose_assets.warehouse import replace_table_from_frame

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert replace_table_from_frame(con, "scoring.sample", pl.DataFrame({"siren": ["732829320"]})) == 1
    frame = pl.DataFrame({"siren": ["732829320", "552100554"], "score": [1.0, 2.0]})
    assert replace_table_from_frame(con, "scoring.sample", frame) == 2
    assert con.execute("select * from scoring.sample order by siren").fetchall() == [
        ("552100554", 2.0),
        ("732829320", 1.0),
    ]
    # Written in parallel record batches, the rows keep the frame's order; an empty frame keeps its schema.
    many = pl.DataFrame({"n": range(1_000_000, 0, -1), "text": [str(i % 977) for i in range(1_000_000)]})
    assert replace_table_from_frame(con, "scoring.many", many) == many.height
    stored = con.execute("select n, text from scoring.many order by rowid").pl()
    assert stored.equals(many)
    assert replace_table_from_frame(con, "scoring.empty", many.head(0)) == 0
    assert [c[:2] for c in con.execute("describe scoring.empty").fetchall()] == [
        ("n", "BIGINT"),
        ("text", "VARCHAR"),
    ]
