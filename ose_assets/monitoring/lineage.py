"""Lineage of a scoring run: scores -> model version -> MLflow run -> training data fingerprint.

monitoring.runs keeps one row per scoring run (what was scored, with which model, from which input
files); `lineage_chain` renders the chain as markdown for the Dagster UI and for `ose explain-run`
(`explain_run`, which opens the warehouse read-only).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

import duckdb
import polars as pl

from ose_assets.model.registry import FINGERPRINT_ARTIFACT
from ose_assets.monitoring.reference import read_fingerprint
from ose_assets.resources import REGISTERED_MODEL_NAME
from ose_assets.settings import OSESettings
from ose_assets.warehouse import table_exists

RUNS_TABLE = "monitoring.runs"
DRIFT_TABLE = "monitoring.drift"
SCORES_TABLE = "scoring.company_scores"
MANIFEST_TABLE = "raw.manifest"
# Tables whose row counts are recorded with each scoring run: every stage feeding the scores.
COUNTED_SCHEMAS = ("raw", "normalized", "features", "training", "model", "scoring")
# Long lists of values in the fingerprint (snapshot dates) are shortened in the chain past this length.
LIST_PREVIEW = 12


def registered_run_id(
    client, version: str | None, registered_model_name: str = REGISTERED_MODEL_NAME
) -> str | None:
    """MLflow run behind a registered model version, or None when the version is not registered."""
    if client is None or not version:
        return None
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(registered_model_name, str(version)).run_id
    except MlflowException:
        return None


def input_manifest_json(con: duckdb.DuckDBPyConnection) -> str:
    """raw.manifest as JSON: [{file_path, file_hash}] ordered by path ('[]' before any ingestion)."""
    if not table_exists(con, MANIFEST_TABLE):
        return "[]"
    value = con.execute(
        f"""select to_json(coalesce(list({{'file_path': file_path, 'file_hash': file_hash}}
                                          order by file_path, file_hash), []))::varchar
            from {MANIFEST_TABLE}"""
    ).fetchone()[0]
    return value or "[]"


def row_counts_json(con: duckdb.DuckDBPyConnection) -> str:
    """{"schema.table": rows} for every table of the stages feeding the scores."""
    tables = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where database_name = current_database() and schema_name in (select unnest(?::varchar[])) "
        "order by 1",
        [list(COUNTED_SCHEMAS)],
    ).fetchall()
    counts = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for (name,) in tables}
    return json.dumps(counts, sort_keys=True)


def scoring_run(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dict[str, Any] | None:
    """The latest scoring run of an as-of date in scoring.company_scores, or None."""
    if not table_exists(con, SCORES_TABLE):
        return None
    row = con.execute(
        f"""select as_of_date, max(scored_at), arg_max(model_version, scored_at),
                   arg_max(model_kind, scored_at), count(*)
            from {SCORES_TABLE} where as_of_date = ? group by as_of_date""",
        [as_of],
    ).fetchone()
    if row is None:
        return None
    keys = ("as_of_date", "scored_at", "model_version", "model_kind", "scored_companies")
    return dict(zip(keys, row, strict=True))


def drift_status(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> str | None:
    """Worst PSI status recorded for an as-of date, or None when drift was not computed."""
    if not table_exists(con, DRIFT_TABLE):
        return None
    return con.execute(
        f"""select case max(case status when 'alert' then 2 when 'warn' then 1 else 0 end)
                   when 2 then 'alert' when 1 then 'warn' when 0 then 'ok' end
            from {DRIFT_TABLE} where as_of_date = ? and metric = 'psi'""",
        [as_of],
    ).fetchone()[0]


def runs_row(
    con: duckdb.DuckDBPyConnection,
    run: dict[str, Any],
    model_run_id: str | None,
    duration_seconds: float | None,
    dagster_run_id: str,
    recorded_at: dt.datetime,
) -> pl.DataFrame:
    """The monitoring.runs row of one scoring run."""
    return pl.DataFrame(
        [
            {
                "as_of_date": run["as_of_date"],
                "scored_at": run["scored_at"],
                "model_version": None if run["model_version"] is None else str(run["model_version"]),
                "model_kind": run["model_kind"],
                "model_run_id": model_run_id,
                "scored_companies": run["scored_companies"],
                "input_manifest": input_manifest_json(con),
                "row_counts": row_counts_json(con),
                "drift_status": drift_status(con, run["as_of_date"]),
                "duration_seconds": duration_seconds,
                "dagster_run_id": dagster_run_id,
                "recorded_at": recorded_at,
            }
        ],
        schema={
            "as_of_date": pl.Date,
            "scored_at": pl.Datetime("us"),
            "model_version": pl.String,
            "model_kind": pl.String,
            "model_run_id": pl.String,
            "scored_companies": pl.Int64,
            "input_manifest": pl.String,
            "row_counts": pl.String,
            "drift_status": pl.String,
            "duration_seconds": pl.Float64,
            "dagster_run_id": pl.String,
            "recorded_at": pl.Datetime("us"),
        },
    )


def _scalars(values: list) -> bool:
    return all(not isinstance(item, dict | list) for item in values)


def _inline(values: list) -> str:
    shown = values if len(values) <= LIST_PREVIEW else [*values[:3], "…", *values[-3:]]
    return f"{', '.join(map(str, shown))} ({len(values)})"


def _render(value: Any, indent: str) -> list[str]:
    """Markdown bullets of any JSON value (the fingerprint's layout belongs to the model stage)."""
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict) and item or isinstance(item, list) and not _scalars(item):
                lines += [f"{indent}- {key}:", *_render(item, indent + "  ")]
            else:
                lines.append(f"{indent}- {key}: {_inline(item) if isinstance(item, list) else item}")
        return lines
    if isinstance(value, list):
        if _scalars(value):
            return [f"{indent}- {_inline(value)}"]
        # Records (input files) are listed in full: the hashes are the point of the chain.
        lines = []
        for item in value:
            if isinstance(item, dict):
                lines.append(f"{indent}- " + " · ".join(f"{k}: {v}" for k, v in item.items()))
            else:
                lines += _render(item, indent)
        return lines
    return [f"{indent}- {value}"]


def lineage_chain(
    con: duckdb.DuckDBPyConnection,
    client,
    as_of: dt.date | None = None,
    registered_model_name: str = REGISTERED_MODEL_NAME,
    run_state: Callable[[str], str | None] | None = None,
) -> str:
    """Markdown chain of the latest monitored scoring run (or the latest one of `as_of`).

    `run_state(dagster_run_id)` says how the Dagster run ended ("succeeded in 39.0 s"), when known;
    otherwise the chain gives the run's duration at the time its row was recorded."""
    if not table_exists(con, RUNS_TABLE):
        return "No scoring run recorded yet (monitoring.runs is missing): materialize the monitoring group."
    where, params = ("where as_of_date = ?", [as_of]) if as_of else ("", [])
    runs = con.execute(
        f"select * from {RUNS_TABLE} {where} order by scored_at desc, recorded_at desc limit 1", params
    ).pl()
    if runs.is_empty():
        return f"No scoring run recorded{f' as of {as_of}' if as_of else ''} in monitoring.runs."
    run = runs.row(0, named=True)
    manifest = json.loads(run["input_manifest"] or "[]")
    state = run_state(run["dagster_run_id"]) if run_state else None
    if state is not None:
        duration = f" ({state})"
    elif run["duration_seconds"] is not None:
        duration = f" ({run['duration_seconds']:.1f} s into the run when its scores were recorded)"
    else:
        duration = ""
    lines = [
        f"## Scoring run as of {run['as_of_date']}",
        f"- scores: {run['scored_companies']:,} companies in {SCORES_TABLE}, scored at {run['scored_at']}",
        f"- Dagster run: {run['dagster_run_id']}{duration}",
        f"- model version: {run['model_version']} ({run['model_kind']}) of {registered_model_name}"
        + _champion_note(client, registered_model_name, run["model_version"]),
        f"- MLflow run: {run['model_run_id'] or 'unknown (version not in the registry)'}"
        + _run_note(client, run),
    ]
    fingerprint = read_fingerprint(client, run["model_run_id"]) if client is not None else None
    if fingerprint is None:
        lines.append(f"- training data fingerprint: none ({FINGERPRINT_ARTIFACT} not found on the run)")
    else:
        lines += [
            f"- training data fingerprint ({FINGERPRINT_ARTIFACT}):",
            *_render(fingerprint, "  "),
        ]
    lines.append(f"- scoring inputs (raw.manifest at scoring time): {len(manifest)} files")
    lines += _render(manifest, "  ")
    if fingerprint is not None:
        trained_on = {f.get("file_hash") for f in fingerprint.get("input_files") or []}
        since = [m["file_path"] for m in manifest if m["file_hash"] not in trained_on]
        lines.append(
            f"- input files landed since the model's training: {len(since)}"
            + (f" ({_inline(since)})" if since else "")
        )
    lines.append(f"- row counts: {run['row_counts']}")
    lines.append(f"- drift: {run['drift_status'] or 'not computed'}" + _top_drift(con, run["as_of_date"]))
    return "\n".join(lines)


def _champion_note(client, registered_model_name: str, version: str | None) -> str:
    if client is None or version is None:
        return ""
    from mlflow.exceptions import MlflowException

    from ose_assets.model.served_model import CHAMPION_ALIAS

    try:
        champion = client.get_model_version_by_alias(registered_model_name, CHAMPION_ALIAS).version
    except MlflowException:
        return ", no champion registered now"
    return ", the champion now" if str(champion) == str(version) else f", champion now is version {champion}"


def _run_note(client, run: dict[str, Any]) -> str:
    if client is None or not run["model_run_id"]:
        return ""
    from mlflow.exceptions import MlflowException

    try:
        info = client.get_run(run["model_run_id"]).info
    except MlflowException:
        return " (run not found in the tracking store)"
    started = dt.datetime.fromtimestamp(info.start_time / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f" (run name {info.run_name}, started {started}, artifacts {info.artifact_uri})"


def _top_drift(con: duckdb.DuckDBPyConnection, as_of: dt.date, limit: int = 5) -> str:
    if not table_exists(con, DRIFT_TABLE):
        return ""
    top = con.execute(
        f"""select feature, round(value, 3) from {DRIFT_TABLE}
            where as_of_date = ? and metric = 'psi' and status <> 'ok' order by value desc limit ?""",
        [as_of, limit],
    ).fetchall()
    return "; drifting: " + ", ".join(f"{f} (PSI {v})" for f, v in top) if top else ""


def explain_run(settings: OSESettings, as_of: dt.date | None = None) -> str:
    """The lineage chain of the latest (or a past) scoring run, read-only (`ose explain-run`)."""
    if not settings.warehouse_path.exists():
        return f"No warehouse at {settings.warehouse_path}: run `ose run` first."
    client = None
    if (settings.mlflow_dir / "mlflow.db").exists():
        from mlflow import MlflowClient

        client = MlflowClient(
            tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
        )
    with ExitStack() as stack:
        instance = None
        if (settings.dagster_home / "dagster.yaml").is_file():
            import dagster as dg

            instance = stack.enter_context(dg.DagsterInstance.from_config(str(settings.dagster_home)))
        con = stack.enter_context(duckdb.connect(str(settings.warehouse_path), read_only=True))
        return lineage_chain(con, client, as_of, run_state=instance and partial(dagster_run_state, instance))


def dagster_run_state(instance, run_id: str) -> str | None:
    """'succeeded in 39.0 s', 'failed after 12.3 s', 'started, running for 8.0 s' (None: run unknown)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    stats = instance.get_run_stats(run_id)
    status = run.status.value.lower()
    if stats.start_time is None:
        return status
    if run.is_finished and stats.end_time is not None:
        verb = {"success": "succeeded in", "failure": "failed after"}.get(status, f"{status} after")
        return f"{verb} {stats.end_time - stats.start_time:.1f} s"
    return f"{status}, running for {time.time() - stats.start_time:.1f} s"
