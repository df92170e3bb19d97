"""The serving copy: a separate DuckDB file the API and analysts read, replaced atomically.

A new file is built next to the published one under a temporary name (ATTACHed to the warehouse
connection, filled with CREATE TABLE … AS SELECT, indexed, checkpointed, DETACHed), then os.replace()d
onto ose_serving.duckdb. A reader that opened the old file keeps reading the old inode, a consistent
snapshot; the next open sees the new file whole. Nothing ever writes into the published file.

Physical design for the API's point lookups over 1,000,000 companies: every per-company table gets an
ART index on siren, unique where the table holds one row per company, and is written sorted by siren (a
lookup touches one row group, and zone maps skip the others), except company_scores, sorted by rank: a
ranking page (`order by rank limit`) stops reading once its rows are found, since the zone maps of rank
let DuckDB skip every later row group. company_scores also carries name_key, the normalised name
(ose_assets.ingestion.labels.label_key), and name_tokens lists the words of the names of the ranked
companies, sorted, for the pages' name search (ose_assets.api.page_data). Timestamps (scored_at, published_at)
are TIMESTAMP holding UTC without a zone; the API adds the zone when it answers.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import uuid
from pathlib import Path

import duckdb

from ose_assets.ingestion.labels import label_key_sql
from ose_assets.scoring.responses import TABLE as RESPONSES_TABLE
from ose_assets.scoring.responses import score_responses_query, top_reason_rank
from ose_assets.warehouse import table_exists

SERVING_HISTORY_RUNS = 12
TRACK_RECORD_TABLES = ("track_record", "track_record_groups")
SERVING_ALIAS = "serving_new"
# score_responses is built in SIREN ranges of about this many companies, so its memory stays bounded.
RESPONSE_PART_COMPANIES = 200_000
# Free space a publish needs: the new file is about the size of the published one, plus margin; at least
# MIN_FREE_MB for a first publish.
FREE_SPACE_FACTOR = 1.5
MIN_FREE_MB = 8
# Per-company serving tables -> whether they hold one row per siren (unique index) or several.
SIREN_INDEXES = {
    "company_scores": True,
    "company_features": True,
    "score_reasons": False,
    "score_history": False,
    "signal_evidence": False,
    RESPONSES_TABLE: True,
}


def index_serving_tables(con: duckdb.DuckDBPyConnection, database: str | None = None) -> None:
    """Create the ART indexes on siren of the per-company tables (of `database`, default the current one).
    A duplicated siren in a one-row-per-company table fails here, before anything is published."""
    prefix = f"{database}." if database else ""
    for table, unique in SIREN_INDEXES.items():
        kind = "unique index" if unique else "index"
        con.execute(f"create {kind} {table}_siren on {prefix}{table} (siren)")


def company_scores_query(source: str) -> str:
    """The serving company_scores from `source`: in rank order (the ineligible last), with name_key."""
    return f"""select *, {label_key_sql("name")} as name_key from {source}
        order by rank nulls last, siren"""


def name_tokens_query(database: str) -> str:
    """name_tokens from the serving company_scores of `database`: one row per word of a ranked company's
    normalised name, sorted by word, so a word prefix is a range the zone maps find."""
    return f"""select distinct token, siren
        from (select unnest(string_split(name_key, '_')) as token, siren from {database}.company_scores
              where is_eligible and rank is not null)
        where token <> '' order by token, siren"""


def serving_tables(feature_names: list[str], history_runs: int) -> dict[str, str]:
    """Serving table -> query over the warehouse (name_tokens: over the serving company_scores), in creation
    order (see the module's physical design); score_responses follows (build_score_responses)."""
    features = ", ".join(f'f."{name}"' for name in feature_names)
    return {
        "company_scores": company_scores_query("scoring.company_scores"),
        "score_reasons": "select * from scoring.score_reasons order by siren, direction desc, reason_rank",
        "top_opportunities": "select * from scoring.top_opportunities order by segment, segment_rank",
        "score_history": f"""select * from scoring.score_history
            where as_of_date in (select distinct as_of_date from scoring.score_history
                                 order by as_of_date desc limit {int(history_runs)})
            order by siren, as_of_date""",
        "company_features": f"""select f.siren, f.as_of_date, {features}
            from features.company_features f semi join scoring.company_scores s using (siren)
            order by f.siren""",
        "signal_evidence": "select * from scoring.signal_evidence order by siren, event_date desc",
        "served_model": """select model_version, model_kind, run_id, model_bytes, as_of_date, scored_at,
            $published_at::timestamp as published_at, scored_companies from scoring.served_model""",
        # Built from the serving company_scores above: the pages' name index.
        "name_tokens": name_tokens_query(SERVING_ALIAS),
    }


def response_parts(con: duckdb.DuckDBPyConnection) -> list[tuple[str | None, str | None]]:
    """SIREN ranges of about RESPONSE_PART_COMPANIES exactly explained companies each, in order."""
    companies = con.execute(
        f"select count(*) from {SERVING_ALIAS}.company_scores where explanation_method = 'exact'"
    ).fetchone()[0]
    parts = max(1, -(-companies // RESPONSE_PART_COMPANIES))
    if parts == 1:
        return [(None, None)]
    bounds = con.execute(
        f"""select quantile_disc(siren, [{", ".join(str(k / parts) for k in range(1, parts))}])
        from {SERVING_ALIAS}.company_scores where explanation_method = 'exact'"""
    ).fetchone()[0]
    edges = [None, *dict.fromkeys(bounds), None]
    return list(zip(edges[:-1], edges[1:], strict=True))


def build_score_responses(con: duckdb.DuckDBPyConnection) -> int:
    """The API's GET /score bodies (in pieces: responses.py), built last from the serving tables (their
    history cut included), in SIREN ranges appended in order: one statement over 1,000,000 companies
    aggregated every reason at once and ran out of a 4 GB DuckDB memory limit."""
    table = f"{SERVING_ALIAS}.{RESPONSES_TABLE}"
    top_rank = top_reason_rank(con, SERVING_ALIAS)
    rows = 0
    for number, sirens in enumerate(response_parts(con)):
        query = score_responses_query(SERVING_ALIAS, top_rank, sirens)
        statement = f"create table {table} as {query}" if number == 0 else f"insert into {table} {query}"
        rows += con.execute(statement).fetchone()[0]
    return rows


def served_as_of(serving_path: Path) -> dt.date | None:
    """The as-of date of the published serving copy, or None before the first publish."""
    if not serving_path.is_file():
        return None
    with duckdb.connect(str(serving_path), read_only=True) as con:
        return con.execute("select max(as_of_date) from served_model").fetchone()[0]


def temp_serving_path(serving_path: Path) -> Path:
    return serving_path.with_name(f".{serving_path.stem}.{uuid.uuid4().hex}.tmp.duckdb")


def remove_leftovers(serving_path: Path) -> list[Path]:
    """Delete temporary serving files (and their WALs) of publishes that were killed or ran out of space.
    Safe at the start of a publish: publishes run one at a time (the run slot)."""
    leftovers = sorted(serving_path.parent.glob(f".{serving_path.stem}.*.tmp.duckdb*"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def check_free_space(serving_path: Path) -> None:
    """Refuse to start a publish that would run out of disk space (the published copy stays)."""
    published = serving_path.stat().st_size if serving_path.is_file() else 0
    needed = max(published * FREE_SPACE_FACTOR, MIN_FREE_MB * 1e6)
    free = shutil.disk_usage(serving_path.parent).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"Not enough free disk space to publish the serving copy: about {needed / 1e6:,.1f} MB needed "
            f"({FREE_SPACE_FACTOR} x the published {published / 1e6:,.1f} MB), {free / 1e6:,.1f} MB free in "
            f"{serving_path.parent}; the published copy is unchanged",
        )


def publish_serving_copy(
    con: duckdb.DuckDBPyConnection,
    serving_path: Path,
    feature_names: list[str],
    history_runs: int = SERVING_HISTORY_RUNS,
    published_at: dt.datetime | None = None,
) -> dict[str, int]:
    """Build a new serving file from the warehouse tables and atomically replace `serving_path` with it.

    Removes the leftovers of earlier failed publishes and checks free space first; a failure leaves the
    published file as it was and removes its own temporary file. Returns the row count of each table.
    """
    published_at = published_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(serving_path)
    check_free_space(serving_path)
    temp_path = temp_serving_path(serving_path)
    quoted = str(temp_path).replace("'", "''")
    counts = {}
    con.execute(f"attach '{quoted}' as {SERVING_ALIAS}")
    try:
        for table, query in serving_tables(feature_names, history_runs).items():
            params = {"published_at": published_at} if "$published_at" in query else None
            counts[table] = con.execute(
                f"create table {SERVING_ALIAS}.{table} as {query}", params
            ).fetchone()[0]
        counts[RESPONSES_TABLE] = build_score_responses(con)
        # The track record, when monitoring has built one (monitoring.track_record, before the publish).
        for table in TRACK_RECORD_TABLES:
            if table_exists(con, f"monitoring.{table}"):
                counts[table] = con.execute(
                    f"create table {SERVING_ALIAS}.{table} as select * from monitoring.{table}"
                ).fetchone()[0]
        index_serving_tables(con, SERVING_ALIAS)
        # Everything in the main file, no WAL left behind: the file is complete on its own.
        con.execute(f"checkpoint {SERVING_ALIAS}")
        con.execute(f"detach {SERVING_ALIAS}")
        os.replace(temp_path, serving_path)
    except BaseException:
        try:
            if SERVING_ALIAS in {
                name for (name,) in con.execute("select database_name from duckdb_databases()").fetchall()
            }:
                con.execute(f"detach {SERVING_ALIAS}")
        except duckdb.Error:
            pass  # the original error matters; the files go below either way
        for leftover in (temp_path, temp_path.with_name(temp_path.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return counts
