"""Read-only access to the serving copy, following its atomic replacement without a restart.

Each published file version gets one read-only DuckDB connection and one parsed ServedModel. A request
takes the current version once (a stat of the path, a few microseconds) and reads through a cursor of
that version's connection only, so every response comes from one file even while a new copy is moved
over the path: the old connection keeps its open file until the last request using it is done.

Why ATTACH on an in-memory database rather than duckdb.connect(path, read_only=True): DuckDB caches
database instances by path within a process, so connecting again to a replaced path would hand back
the instance still reading the old file.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ose_assets.model.served_model import ServedModel

SCHEMA = "serving"


class ServingUnavailable(RuntimeError):
    """No serving copy has been published at the configured path."""


@dataclass(frozen=True)
class ServingVersion:
    """One published serving file: its connection, its model and what /health reports about it."""

    stamp: tuple[int, int, int, int]
    modified_at: float
    connection: duckdb.DuckDBPyConnection
    model: ServedModel
    info: dict
    regions: tuple[str, ...]
    naf_sections: tuple[str, ...]

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self.connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


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

    def current(self) -> ServingVersion:
        stamp, _ = _stamp(self.path)
        version = self._current
        if version is not None and version.stamp == stamp:
            return version
        with self._lock:
            if self._current is None or self._current.stamp != stamp:
                self._current = self._open()
            return self._current

    def _open(self) -> ServingVersion:
        # Stat before and after attaching: if a publish lands in between, the stamp would not describe the
        # attached file, so attach again.
        while True:
            stamp, modified_at = _stamp(self.path)
            connection = duckdb.connect(":memory:")
            quoted = str(self.path).replace("'", "''")
            connection.execute(f"attach '{quoted}' as {SCHEMA} (read_only)")
            if _stamp(self.path)[0] == stamp:
                break
            connection.close()
        row = connection.execute(
            f"select model_version, model_kind, run_id, model_bytes, as_of_date, scored_at, published_at, "
            f"scored_companies from {SCHEMA}.served_model"
        ).fetchone()
        names = (
            "model_version",
            "model_kind",
            "run_id",
            "model_bytes",
            "as_of_date",
            "scored_at",
            "published_at",
            "scored_companies",
        )
        info = dict(zip(names, row, strict=True))
        model = ServedModel.from_bytes(bytes(info.pop("model_bytes")))
        segments = connection.execute(
            f"select list(distinct region_code order by region_code) filter (region_code is not null), "
            f"list(distinct naf_section order by naf_section) filter (naf_section is not null) "
            f"from {SCHEMA}.company_scores"
        ).fetchone()
        _warm(connection, model)
        return ServingVersion(
            stamp, modified_at, connection, model, info, tuple(segments[0] or ()), tuple(segments[1] or ())
        )

    def file_age_seconds(self, version: ServingVersion) -> float:
        return max(0.0, dt.datetime.now().timestamp() - version.modified_at)


def _warm(connection: duckdb.DuckDBPyConnection, model: ServedModel) -> None:
    """Load the booster once now rather than in the first request that needs an exact explanation."""
    sample = connection.execute(f"select * from {SCHEMA}.company_features limit 1").pl()
    if sample.height:
        model.contributions(sample, exact=True)
