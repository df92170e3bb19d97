"""Rebuild a normalized table only when what it is built from changed.

A normalized build is a pure function of its inputs, so the nightly rescoring need not redo it when
nothing new was landed (at 1,000,000 companies the four builds take ~42 s; their fingerprints ~1.5 s).
The fingerprint of a build hashes everything its tables depend on, by content, never by name or time:
- each input table: row count, column names and types, and the sum of the rows' hashes (order does not
  matter; unlike XOR, a repeated row does not cancel out), over the columns the build reads;
- the model_config sections the build reads;
- the files it reads (reference data), by SHA-256 of their bytes;
- the source of the ingestion modules that define it (the build's module and every
  `ose_assets.ingestion` module it imports, directly or not): a code change rebuilds, including a
  change of the output columns;
- the versions of the libraries that compute it.

`normalized.build_fingerprints` keeps one row per output table: the fingerprint of its last successful
build, the build's counts (re-emitted as asset metadata when the build is reused), the table's row
count and when it was built. It lives in the warehouse file with the tables it describes. The rows are
deleted before a rebuild and written after it succeeded: a failed or partial rebuild is never taken as
up to date. A build is reused only when every output table still exists with the recorded row count.
To force a rebuild, delete the rows (`delete from normalized.build_fingerprints`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb

from ose_assets.ingestion import articles, bodacc, companies, outcomes, signals
from ose_assets.ingestion.spec import RawSpec, ensure_raw_table
from ose_assets.settings import model_config
from ose_assets.table_columns import TABLE_COLUMNS
from ose_assets.warehouse import digest, table_exists

FINGERPRINT_TABLE = "normalized.build_fingerprints"
CODE_PACKAGE = "ose_assets.ingestion."
LIBRARIES = ("duckdb", "polars", "rapidfuzz")


@dataclasses.dataclass(frozen=True)
class Build:
    """What one normalized build writes and reads."""

    outputs: tuple[str, ...]
    raw: tuple[RawSpec, ...]  # raw tables read in full (created empty when missing, as the build does)
    module: ModuleType  # defines the build; it and the ingestion modules it imports are its code
    tables: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # other table -> columns
    config_sections: tuple[str, ...] = ()


COMPANIES = Build(
    (companies.TABLE,),
    (companies.UNITE_LEGALE_SPEC, companies.ETABLISSEMENT_SPEC, companies.COMPANY_JSON_SPEC),
    companies,
)
SIGNALS = Build(
    (signals.TABLE,), (signals.FEED_SPEC, bodacc.BODACC_SPEC), signals, config_sections=("signal_types",)
)
# Article links read only the SIREN and name of each company: a new région does not relink articles.
ARTICLES = Build(
    (articles.ARTICLES_TABLE, articles.LINKS_TABLE),
    (articles.ARTICLE_SPEC,),
    articles,
    tables={companies.TABLE: ("siren", "name")},
    config_sections=("ingestion", "signal_types"),
)
OUTCOMES = Build((outcomes.TABLE,), (outcomes.OUTCOME_SPEC,), outcomes)


@dataclasses.dataclass(frozen=True)
class Built:
    """A build's outcome: rebuilt now or reused, its fingerprint, when it was built and its counts."""

    rebuilt: bool
    fingerprint: str
    built_at: dt.datetime  # UTC
    counts: dict[str, Any]
    reason: str | None = None  # why it was rebuilt

    @property
    def metadata(self) -> dict[str, Any]:
        reason = {"rebuild_reason": self.reason} if self.rebuilt else {}
        return {
            "rebuilt": self.rebuilt,
            "inputs_fingerprint": self.fingerprint,
            "built_at": self.built_at.replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
            **reason,
        }


def table_digest(con: duckdb.DuckDBPyConnection, table: str, columns: Iterable[str] | None = None) -> str:
    """Rows, column types and content of a table (of `columns` only, if given); 'missing' if absent."""
    schema, name = table.split(".")
    described = con.execute(
        """select column_name, data_type from duckdb_columns()
        where database_name = current_database() and schema_name = ? and table_name = ?
        order by column_index""",
        [schema, name],
    ).fetchall()
    if columns is not None:
        wanted = set(columns)
        described = [(column, kind) for column, kind in described if column in wanted]
    if not described:
        return "missing"
    hashed = ", ".join(f'"{column}"' for column, _ in described)
    rows, content = con.execute(f"select count(*), sum(hash({hashed})::hugeint) from {table}").fetchone()
    return digest([rows, described, str(content)])


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes; 'missing' if absent (the build then fails on it)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def code_modules(module: ModuleType) -> list[ModuleType]:
    """The module and every ose_assets.ingestion module it imports, directly or through another one."""
    found: dict[str, ModuleType] = {}
    todo = [module]
    while todo:
        current = todo.pop()
        if current.__name__ in found:
            continue
        found[current.__name__] = current
        for value in vars(current).values():
            name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
            if isinstance(name, str) and name.startswith(CODE_PACKAGE) and name in sys.modules:
                todo.append(sys.modules[name])
    return [found[name] for name in sorted(found)]


def input_digests(con: duckdb.DuckDBPyConnection, build: Build, files: Iterable[Path] = ()) -> dict[str, str]:
    """Digest of each thing the build depends on, by name: `table:`, `config:`, `file:`, code, libraries."""
    config = model_config()
    return {
        **{f"table:{spec.table}": table_digest(con, spec.table) for spec in build.raw},
        **{f"table:{table}": table_digest(con, table, columns) for table, columns in build.tables.items()},
        **{f"config:{section}": digest(config.get(section)) for section in build.config_sections},
        **{f"file:{path.name}": file_digest(path) for path in files},
        "code": digest(
            {
                m.__name__: hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest()
                for m in code_modules(build.module)
            }
        ),
        "libraries": digest({name: importlib.metadata.version(name) for name in LIBRARIES}),
    }


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists normalized")
    columns = ", ".join(f"{name} {kind}" for name, kind, _ in TABLE_COLUMNS[FINGERPRINT_TABLE])
    con.execute(f"create table if not exists {FINGERPRINT_TABLE} ({columns})")


def _recorded(con: duckdb.DuckDBPyConnection, build: Build) -> list[tuple]:
    return con.execute(
        f"""select table_name, inputs_fingerprint, inputs, counts, row_count, built_at
        from {FINGERPRINT_TABLE} where table_name in (select unnest(?::varchar[])) order by table_name""",
        [list(build.outputs)],
    ).fetchall()


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> int | None:
    return con.execute(f"select count(*) from {table}").fetchone()[0] if table_exists(con, table) else None


def reusable(con: duckdb.DuckDBPyConnection, build: Build, fingerprint: str) -> Built | None:
    """The last build, if it had this fingerprint and its tables are still there as it left them."""
    recorded = _recorded(con, build)
    if len(recorded) != len(build.outputs) or any(
        row[1] != fingerprint or _rows(con, row[0]) != row[4] for row in recorded
    ):
        return None
    return Built(False, fingerprint, recorded[0][5], json.loads(recorded[0][3]))


def rebuild_reason(recorded: list[tuple], current: dict[str, str], build: Build) -> str:
    """What changed since the recorded build ('first build' without one), for the asset metadata."""
    if len(recorded) != len(build.outputs):
        return "first build"
    previous = json.loads(recorded[0][2])
    changed = sorted(k for k in previous.keys() | current.keys() if previous.get(k) != current.get(k))
    return ", ".join(changed) or "output table changed or missing"


def build_or_reuse(
    con: duckdb.DuckDBPyConnection,
    build: Build,
    run: Callable[[], dict[str, Any]],
    files: Iterable[Path] = (),
) -> Built:
    """Reuse the build's tables when its fingerprint is the recorded one, else `run()` it (which returns
    its counts) and record the new fingerprint once it succeeded."""
    ensure_table(con)
    for spec in build.raw:
        ensure_raw_table(con, spec)
    current = input_digests(con, build, files)
    fingerprint = digest(current)
    if (kept := reusable(con, build, fingerprint)) is not None:
        return kept
    reason = rebuild_reason(_recorded(con, build), current, build)
    con.execute(
        f"delete from {FINGERPRINT_TABLE} where table_name in (select unnest(?::varchar[]))",
        [list(build.outputs)],
    )
    counts = run()
    built_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        for table in build.outputs:
            con.execute(
                f"insert into {FINGERPRINT_TABLE} values (?, ?, ?, ?, ?, ?)",
                [table, fingerprint, json.dumps(current), json.dumps(counts), _rows(con, table), built_at],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return Built(True, fingerprint, built_at, counts, reason)
