"""Keep a copied or moved data directory self-contained: MLflow artifact locations follow the data root.

MLflow's SQLite store records absolute artifact URIs (experiment, runs, model versions, logged models).
After `cp -a D D2` they still point into D: new artifacts would be written there and older models read
from there. relocate_artifact_root rewrites them to the store's own data root before the store is used.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

# Every column of MLflow's SQLite schema that holds an artifact location.
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def _path(uri: str) -> str:
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def relocate_artifact_root(database: Path, experiment_name: str, artifact_uri: str) -> str | None:
    """Rewrite locations under the experiment's recorded artifact root to `artifact_uri`.

    Returns the previous root when something was rewritten, else None (nothing to do, or no store yet).
    """
    if not database.exists():
        return None
    with sqlite3.connect(database, timeout=60) as con:
        tables = {name for (name,) in con.execute("select name from sqlite_master where type = 'table'")}
        if "experiments" not in tables:
            return None
        row = con.execute(
            "select artifact_location from experiments where name = ?", [experiment_name]
        ).fetchone()
        if row is None or row[0] == artifact_uri:
            return None
        old = row[0]
        for table, column in ARTIFACT_COLUMNS:
            if table not in tables:
                continue
            # URIs (file:///D/...) and plain paths (/D/...), matched as prefixes (no LIKE wildcards).
            for before, after in ((old, artifact_uri), (_path(old), _path(artifact_uri))):
                con.execute(
                    f"update {table} set {column} = ? || substr({column}, length(?) + 1) "
                    f"where substr({column}, 1, length(?)) = ?",
                    [after, before, before, before],
                )
    return old
