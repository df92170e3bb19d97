"""Read-only access to the serving copy, following its atomic replacement without a restart.

Each published file version gets one read-only DuckDB connection, one parsed ServedModel and one
exact explainer. A request takes the current version once (a stat of the path, a few microseconds)
and reads through cursors of that version's connection only, so every response comes from one file
even while a new copy is moved over the path: the old connection keeps its open file until the last
request using it is done.

Why ATTACH on an in-memory database rather than duckdb.connect(path, read_only=True): DuckDB caches
database instances by path within a process, so connecting again to a replaced path would hand back
the instance still reading the old file.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.explain import TOP_REASONS, explain
from ose_assets.scoring.responses import COMPANY_COLUMN, HISTORY_COLUMN, reasons_column, stored_body
from ose_assets.scoring.responses import TABLE as RESPONSES_TABLE

SCHEMA = "serving"
# Rankings computed from one serving file never change: keep this many per file version.
RANKINGS_CACHED = 1_024
# Exact explanations kept per file version (per worker process; a few KB each).
EXPLANATIONS_CACHED = 20_000
# Serialised GET /score responses of companies explained on demand, kept per file version and language
# (per worker process; ~2.5 KB each).
RESPONSES_CACHED = 20_000
# `siren = any(list)` is ART index lookups for lists up to this long (DuckDB's default, 50, makes a longer
# list a scan of the whole table); the pages' name search looks up to page_data.SEARCH_CANDIDATES SIRENs.
IN_LIST_LOOKUPS = 256


class ServingUnavailable(RuntimeError):
    """No serving copy has been published at the configured path."""


def siren_filter(sirens: list[str]) -> tuple[str, list]:
    """`siren = ?` for one SIREN, `= any(list)` for several: both use the ART index on siren (up to
    IN_LIST_LOOKUPS SIRENs, and when siren is the only condition on the table), whereas
    `in (select unnest(?))` becomes a hash join over the whole table."""
    if len(sirens) == 1:
        return "siren = ?", [sirens[0]]
    return "siren = any(?::varchar[])", [sirens]


class BoundedCache:
    """Thread-safe least-recently-used mapping holding at most `size` entries.

    A serving file never changes, so what is computed from it stays right for the life of its version:
    only memory bounds what is kept.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def update(self, entries: dict) -> None:
        with self._lock:
            self._entries.update(entries)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class ExactExplainer:
    """Exact explanations on demand: kept per SIREN for this file version, coalesced across requests.

    Explaining one company is mostly fixed per-call work (Polars expressions over a few rows: evidence
    join, sentences rendered feature by feature), not per-row work. So the first request to arrive explains
    everything pending, and requests arriving meanwhile are explained together in the next call. A file
    never changes, so an explanation stays right for the life of its version: the EXPLANATIONS_CACHED most
    recently used are kept (the same companies are looked up again and again).
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, model: ServedModel) -> None:
        self._connection = connection
        self._model = model
        self._lock = threading.Lock()
        self._pending: list[tuple[list[str], Future]] = []
        self._running = False
        self._cache = BoundedCache(EXPLANATIONS_CACHED)
        # Frames are built from fetchall() rows with the tables' Polars schemas: on a few rows of 60
        # columns, .pl() (through Arrow) costs several times the query itself.
        self._schemas = {
            table: connection.execute(f"select * from {SCHEMA}.{table} limit 0").pl().schema
            for table in ("company_features", "signal_evidence")
        }

    def reasons(self, sirens: list[str]) -> dict[str, list[dict]]:
        """Exact reasons of these companies by SIREN: rows with the columns of scoring.score_reasons."""
        with self._lock:
            known = {}
            for siren in sirens:
                cached = self._cache.get(siren)
                if cached is not None:
                    known[siren] = cached
            missing = [siren for siren in sirens if siren not in known]
            if not missing:
                return known
            future: Future = Future()
            self._pending.append((missing, future))
            leader = not self._running
            self._running = True
        if leader:
            self._drain()
        return known | future.result()

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._running = False
                    return
            try:
                frame = self._explain(sorted({siren for sirens, _ in batch for siren in sirens}))
            except Exception as error:  # every waiting request gets the failure, none hangs
                for _, future in batch:
                    future.set_exception(error)
                continue
            explained: dict[str, list[dict]] = {siren: [] for sirens, _ in batch for siren in sirens}
            for row in frame.to_dicts():
                explained[row["siren"]].append(row)
            with self._lock:
                self._cache.update(explained)
            for sirens, future in batch:
                future.set_result({siren: explained[siren] for siren in sirens})

    def _frame(self, cursor: duckdb.DuckDBPyConnection, table: str, sirens: list[str]) -> pl.DataFrame:
        where, params = siren_filter(sirens)
        rows = cursor.execute(f"select * from {SCHEMA}.{table} where {where}", params).fetchall()
        return pl.DataFrame(rows, schema=self._schemas[table], orient="row")

    def _explain(self, sirens: list[str]) -> pl.DataFrame:
        cursor = self._connection.cursor()
        try:
            features = self._frame(cursor, "company_features", sirens)
            evidence = self._frame(cursor, "signal_evidence", sirens)
        finally:
            cursor.close()
        return explain(self._model, features, evidence, exact=True, top_k=TOP_REASONS)


@dataclass(frozen=True)
class ServingVersion:
    """One published serving file: its connection, model, explainer and what /health reports."""

    stamp: tuple[int, int, int, int]
    modified_at: float
    connection: duckdb.DuckDBPyConnection
    model: ServedModel
    explainer: ExactExplainer
    info: dict
    regions: tuple[str, ...]
    naf_sections: tuple[str, ...]
    # Copies published before score_responses existed, or held one body per language, are answered by
    # the general path.
    has_stored_responses: bool
    rankings: dict = field(default_factory=dict)
    cursors: threading.local = field(default_factory=threading.local)
    # Responses explained on demand by (siren, lang): the same companies are looked up again and again.
    responses: BoundedCache = field(default_factory=lambda: BoundedCache(RESPONSES_CACHED))

    def cached_ranking(self, key: tuple, compute):
        """compute() once per key for this file (bounded: beyond RANKINGS_CACHED keys, compute each time)."""
        value = self.rankings.get(key)
        if value is None:
            value = compute()
            if len(self.rankings) < RANKINGS_CACHED:
                self.rankings[key] = value
        return value

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the version's connection: opening one costs more than a point lookup
        (~0.5 ms), so each thread keeps its own for the life of the version."""
        cursor = getattr(self.cursors, "cursor", None)
        if cursor is None:
            cursor = self.cursors.cursor = self.connection.cursor()
        return cursor

    def stored_response(self, siren: str, lang: str) -> bytes | None:
        """The precomputed GET /score body of `siren` (exact reasons stored at publish), else None."""
        if not self.has_stored_responses:
            return None
        row = (
            self.cursor()
            .execute(
                f"select {COMPANY_COLUMN}, {reasons_column(lang)}, {HISTORY_COLUMN} "
                f"from {SCHEMA}.{RESPONSES_TABLE} where siren = ?",
                [siren],
            )
            .fetchone()
        )
        return None if row is None else stored_body(*row).encode()


def _stamp(path: Path) -> tuple[tuple[int, int, int, int], float]:
    try:
        stat = os.stat(path)
    except FileNotFoundError as error:
        raise ServingUnavailable(f"no serving copy at {path}: run the pipeline (ose run) first") from error
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size), stat.st_mtime


class ServingStore:
    """The current serving version, reopened when the file at `path` changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._current: ServingVersion | None = None
        self._lock = threading.Lock()

    def unchanged(self) -> ServingVersion | None:
        """The open version if the file has not changed since (a stat), else None."""
        stamp, _ = _stamp(self.path)
        version = self._current
        return version if version is not None and version.stamp == stamp else None

    def current(self) -> ServingVersion:
        version = self.unchanged()
        if version is not None:
            return version
        stamp, _ = _stamp(self.path)
        with self._lock:
            if self._current is None or self._current.stamp != stamp:
                self._current = self._open()
            return self._current

    def _open(self) -> ServingVersion:
        # Stat before and after attaching: if a publish lands in between, the stamp would not describe the
        # attached file, so attach again.
        while True:
            stamp, modified_at = _stamp(self.path)
            # One thread per connection: requests are point lookups, and the workers' request threads
            # are the parallelism (DuckDB's task scheduling would only add overhead).
            connection = duckdb.connect(
                ":memory:", config={"threads": 1, "dynamic_or_filter_threshold": IN_LIST_LOOKUPS}
            )
            quoted = str(self.path).replace("'", "''")
            connection.execute(f"attach '{quoted}' as {SCHEMA} (read_only)")
            if _stamp(self.path)[0] == stamp:
                break
            connection.close()
        names = ("model_version", "model_kind", "run_id", "as_of_date", "scored_at", "published_at",
                 "scored_companies")  # fmt: skip
        row = connection.execute(
            f"select {', '.join(names)}, model_bytes from {SCHEMA}.served_model"
        ).fetchone()
        info = dict(zip(names, row[:-1], strict=True))
        model = ServedModel.from_bytes(bytes(row[-1]))
        segments = connection.execute(
            f"select list(distinct region_code order by region_code) filter (region_code is not null), "
            f"list(distinct naf_section order by naf_section) filter (naf_section is not null) "
            f"from {SCHEMA}.company_scores"
        ).fetchone()
        has_stored_responses = connection.execute(
            "select count(*) > 0 from duckdb_columns() "
            "where database_name = ? and table_name = ? and column_name = ?",
            [SCHEMA, RESPONSES_TABLE, COMPANY_COLUMN],
        ).fetchone()[0]
        explainer = ExactExplainer(connection, model)
        # Load the booster now rather than in the first request that needs an exact explanation.
        sample = connection.execute(f"select siren from {SCHEMA}.company_features limit 1").fetchone()
        if sample:
            explainer._explain([sample[0]])
        return ServingVersion(
            stamp,
            modified_at,
            connection,
            model,
            explainer,
            info,
            tuple(segments[0] or ()),
            tuple(segments[1] or ()),
            has_stored_responses,
        )

    def file_age_seconds(self, version: ServingVersion) -> float:
        return max(0.0, dt.datetime.now().timestamp() - version.modified_at)
