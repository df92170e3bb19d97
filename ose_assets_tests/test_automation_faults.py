"""A run that dies halfway leaves warehouse tables as they were, and the next run needs no cleanup."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from ose_assets.warehouse import replace_table

TABLE = "scoring.company_scores"

# A stage rewriting the table with a query long enough to be killed while it runs.
KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import duckdb
    from ose_assets.warehouse import replace_table

    con = duckdb.connect(sys.argv[1], config={"threads": 1})
    print("writing", flush=True)
    replace_table(
        con,
        "scoring.company_scores",
        "select a.range % 1000 as siren, count(*)::double as score"
        " from range(100000) a, range(100000) b group by 1",
    )
    """
)


def previous_run(database) -> None:
    with duckdb.connect(str(database)) as con:
        replace_table(con, TABLE, "select range as siren, 50.0 as score from range(10)")


def assert_previous_table(database) -> None:
    with duckdb.connect(str(database)) as con:
        assert con.execute(f"select count(*), avg(score) from {TABLE}").fetchone() == (10, 50.0)


def test_killed_writer_leaves_the_previous_table_and_releases_the_file(tmp_path):
    database = tmp_path / "ose.duckdb"
    previous_run(database)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(database)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        try:
            writer.wait(timeout=1.0)  # the transaction is running
        except subprocess.TimeoutExpired:
            pass
        assert writer.poll() is None, "the writer finished before it could be killed"
    finally:
        writer.kill()  # SIGKILL: no rollback, no cleanup, like a killed run worker
        writer.wait()

    # No lock left behind and no half-written table; the next run just writes.
    assert_previous_table(database)
    with duckdb.connect(str(database)) as con:
        assert replace_table(con, TABLE, "select range as siren, 70.0 as score from range(3)") == 3


def test_failing_query_rolls_back_to_the_previous_table(tmp_path):
    database = tmp_path / "ose.duckdb"
    previous_run(database)
    with duckdb.connect(str(database)) as con, pytest.raises(duckdb.ConversionException):
        replace_table(con, TABLE, "select range as siren, 'not a score'::double as score from range(5)")
    assert_previous_table(database)
