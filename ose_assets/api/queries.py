"""The API's reads of one serving version: set-wise SQL with bound parameters, one cursor per request.

Every function takes the SIRENs of a request together (one statement per table, never one per SIREN)
and returns plain dicts shaped like the response models of ose_assets.api.schemas.
"""

from __future__ import annotations

import json

import duckdb

from ose_assets.api.reader import SCHEMA, ServingVersion, siren_filter
from ose_assets.scoring.scores import COMPANY_SCORE_COLUMNS

# Recent runs of score_history returned with a company.
HISTORY_RUNS = 12

# Columns of scoring.score_reasons the API returns, besides the reason in the requested language.
REASON_COLUMNS = (
    "siren",
    "direction",
    "reason_rank",
    "feature",
    "feature_value",
    "contribution_points",
    "evidence",
)
HISTORY_COLUMNS = ("siren", "as_of_date", "scored_at", "score", "band", "model_version")


def _rows(
    cursor: duckdb.DuckDBPyConnection,
    columns: tuple[str, ...],
    table: str,
    sirens: list[str],
    suffix: str = "",
) -> list[dict]:
    where, params = siren_filter(sirens)
    sql = f"select {', '.join(columns)} from {SCHEMA}.{table} where {where} {suffix}"
    return [dict(zip(columns, row, strict=True)) for row in cursor.execute(sql, params).fetchall()]


def companies(cursor, sirens: list[str]) -> dict[str, dict]:
    return {row["siren"]: row for row in _rows(cursor, COMPANY_SCORE_COLUMNS, "company_scores", sirens)}


def history(cursor, sirens: list[str]) -> dict[str, list[dict]]:
    """The HISTORY_RUNS latest runs per company, newest first.

    Cut in Python: ORDER BY ... LIMIT (and QUALIFY) make DuckDB 1.5 plan a late-materialised top-N that
    scans the whole table instead of the index lookup.
    """
    rows = _rows(cursor, HISTORY_COLUMNS, "score_history", sirens, "order by siren, as_of_date desc")
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        runs = grouped.setdefault(row.pop("siren"), [])
        if len(runs) < HISTORY_RUNS:
            runs.append(row)
    return grouped


def reasons(version: ServingVersion, cursor, company_rows: dict[str, dict], lang: str) -> dict[str, dict]:
    """Top positive and negative reasons per company, always exact.

    Stored reasons are used when the scoring run explained the company exactly; the others are explained
    now by the version's explainer (or taken from its cache), in one explain call (one TreeSHAP pass)
    shared with concurrent requests.
    """
    stored_sirens = [s for s, row in company_rows.items() if row["explanation_method"] == "exact"]
    missing = [s for s, row in company_rows.items() if row["explanation_method"] != "exact"]
    text = f"reason_{lang}"
    # Only the requested language: every column read costs a fetch from its compressed segment.
    columns = (*REASON_COLUMNS, text)
    rows = _rows(cursor, columns, "score_reasons", stored_sirens) if stored_sirens else []
    if missing:
        rows += [row for explained in version.explainer.reasons(missing).values() for row in explained]
    grouped: dict[str, dict] = {siren: {"positive": [], "negative": []} for siren in company_rows}
    for row in sorted(rows, key=lambda r: (r["siren"], r["direction"], r["reason_rank"])):
        direction = "positive" if row["direction"] == "up" else "negative"
        grouped[row["siren"]][direction].append(
            {
                "rank": row["reason_rank"],
                "feature": row["feature"],
                "feature_value": None if row["feature_value"] is None else str(row["feature_value"]),
                "contribution_points": round(float(row["contribution_points"]), 2),
                "text": row[text],
                "evidence": json.loads(row["evidence"] or "[]"),
            }
        )
    return grouped


def score_payloads(version: ServingVersion, sirens: list[str], lang: str) -> tuple[list[dict], list[str]]:
    """Full payloads of the scored SIRENs (request order) and the SIRENs that are not scored."""
    cursor = version.cursor()
    found = companies(cursor, sirens)
    if not found:
        return [], sirens
    company_reasons = reasons(version, cursor, found, lang)
    company_history = history(cursor, list(found))
    payloads = [
        found[siren] | {"reasons": company_reasons[siren], "history": company_history.get(siren, [])}
        for siren in sirens
        if siren in found
    ]
    return payloads, [siren for siren in sirens if siren not in found]


def top_opportunities(
    version: ServingVersion,
    limit: int,
    region: str | None,
    naf_section: str | None,
    band: str | None,
    lang: str,
) -> tuple[str, str, list[dict]]:
    """Eligible companies in rank order within the requested segment.

    A request for at most the stored segment size with at most one of region / naf_section and no band reads
    the precomputed segment of top_opportunities; anything else ranks company_scores of eligible companies.
    Returns (segment, source table, items).
    """
    segment = (
        "overall"
        if not (region or naf_section)
        else (f"region:{region}" if region else f"naf_section:{naf_section}")
    )
    cursor = version.cursor()
    sirens: list[str] = []
    source = "top_opportunities"
    if band is None and not (region and naf_section):
        sirens = [
            row[0]
            for row in cursor.execute(
                f"select siren from {SCHEMA}.top_opportunities where segment = ? "
                "order by segment_rank limit ?",
                [segment, limit],
            ).fetchall()
        ]
    if len(sirens) < limit:
        # The precomputed segment is shorter than asked for: rank from company_scores.
        source = "company_scores"
        conditions, params = ["is_eligible", "rank is not null"], []
        if not (region or naf_section or band):
            # Ranks are global among eligible companies: the overall top is rank <= limit, no full sort.
            conditions.append("rank <= ?")
            params.append(limit)
        for column, value in (("region_code", region), ("naf_section", naf_section), ("band", band)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        sirens = [
            row[0]
            for row in cursor.execute(
                f"select siren from {SCHEMA}.company_scores where {' and '.join(conditions)} "
                "order by rank limit ?",
                [*params, limit],
            ).fetchall()
        ]
    found = companies(cursor, sirens) if sirens else {}
    company_reasons = reasons(version, cursor, found, lang) if found else {}
    if region and naf_section:
        segment = f"region:{region},naf_section:{naf_section}"
    if band:
        segment = f"{segment},band:{band}"
    items = [
        found[s] | {"reasons": company_reasons[s]} for s in sirens if s in found and found[s]["is_eligible"]
    ]
    return segment, source, items


TRACK_RECORD_WINDOWS = 24


def track_record(version: ServingVersion, as_of, lang: str) -> dict | None:
    """The published track record (newest windows first; one as-of date when `as_of` is given), or None
    when the serving copy has none."""
    from ose_assets.monitoring.track_record import sentence

    cursor = version.cursor()
    present = cursor.execute(
        "select count(*) from duckdb_tables() where database_name = ? and table_name = 'track_record'",
        [SCHEMA],
    ).fetchone()[0]
    if not present:
        return None
    where, params = ("where as_of_date = ?", [as_of]) if as_of else ("", [])
    windows = cursor.execute(
        f"select * from {SCHEMA}.track_record {where} order by as_of_date desc, model_version "
        f"limit {TRACK_RECORD_WINDOWS}",
        params,
    ).pl()
    groups = cursor.execute(
        f"""select as_of_date, model_version, grouping, group_value, companies, expected_wins, realised_wins
            from {SCHEMA}.track_record_groups {where}
            {"and" if as_of else "where"} (grouping = 'band' or ?)
            order by grouping, group_value""",
        [*params, as_of is not None],
    ).pl()
    known_until = windows["known_until"].max() if windows.height else None
    if known_until is None:
        known_until = cursor.execute(f"select max(known_until) from {SCHEMA}.track_record").fetchone()[0]
    items = []
    for row in windows.iter_rows(named=True):
        mine = groups.filter(
            (groups["as_of_date"] == row["as_of_date"]) & (groups["model_version"] == row["model_version"])
        )
        items.append(
            row
            | {"summary": sentence(row, lang), "groups": mine.drop("as_of_date", "model_version").to_dicts()}
        )
    return {"known_until": known_until, "windows": items}
