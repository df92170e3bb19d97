"""`ose top` (the current ranking from the serving copy) and `ose export` (the whole scored table as a file).

One language per output: French by default, English with `--lang en` (headers, reasons, evidence labels;
NAF labels and région names are INSEE's French names in both).
"""

from __future__ import annotations

import argparse
import json
import sys

import polars as pl

from ose_assets.cli.common import settings_for
from ose_assets.settings import OSESettings

TOP_FORMATS = ("table", "csv", "json")
HEADERS = {
    "fr": {
        "title": "Top {n} des opportunités{segment} — au {as_of}, modèle v{version} ({kind})",
        "rank": "#",
        "company": "Entreprise",
        "score": "Score",
        "where": "Région · Activité",
        "reason": "Raison principale (preuve)",
        "no_evidence": "sans preuve datée",
        "empty": "Aucune entreprise classée pour ces filtres.",
    },
    "en": {
        "title": "Top {n} opportunities{segment} — as of {as_of}, model v{version} ({kind})",
        "rank": "#",
        "company": "Company",
        "score": "Score",
        "where": "Region · Activity",
        "reason": "Top reason (evidence)",
        "no_evidence": "no dated evidence",
        "empty": "No ranked company for these filters.",
    },
}
EVIDENCE_KINDS = {"fr": {"signal": "signal", "bodacc": "BODACC", "article": "article"},
                  "en": {"signal": "signal", "bodacc": "BODACC", "article": "article"}}  # fmt: skip


class UnknownFilter(ValueError):
    pass


def ranking(settings: OSESettings, region: str | None, naf_section: str | None, limit: int, lang: str):
    """(ranked rows with their top reason, serving info): eligible companies of the serving copy in rank
    order, filtered by région (code or name) and NAF section letter."""
    from ose_assets.api.export import SCHEMA, read_only_serving

    reason = f"reason_{lang}"
    with read_only_serving(settings.serving_path) as con:
        conditions, params = ["c.is_eligible", "c.rank is not null"], []
        if region is not None:
            regions = con.execute(
                f"select distinct region_code, region_name from {SCHEMA}.company_scores "
                "where region_code is not null order by region_code"
            ).fetchall()
            matched = [code for code, name in regions if region.casefold() in (code, (name or "").casefold())]
            if not matched:
                accepted = ", ".join(f"{code} ({name})" for code, name in regions)
                raise UnknownFilter(f"unknown région {region!r}; accepted: {accepted}")
            conditions.append("c.region_code = ?")
            params.append(matched[0])
        if naf_section is not None:
            sections = [row[0] for row in con.execute(
                f"select distinct naf_section from {SCHEMA}.company_scores where naf_section is not null "
                "order by 1").fetchall()]  # fmt: skip
            if naf_section.upper() not in sections:
                raise UnknownFilter(f"unknown NAF section {naf_section!r}; accepted: {', '.join(sections)}")
            conditions.append("c.naf_section = ?")
            params.append(naf_section.upper())
        frame = con.execute(
            f"""
            select c.rank, c.siren, c.name, c.score, c.band, c.region_code, c.region_name, c.naf_code,
                   trim(c.naf_label) as naf_label, c.naf_section,
                   r.{reason} as top_reason, r.evidence as top_reason_evidence
            from {SCHEMA}.company_scores c
            left join {SCHEMA}.score_reasons r
              on r.siren = c.siren and r.direction = 'up' and r.reason_rank = 1
            where {" and ".join(conditions)}
            order by c.rank limit ?
            """,
            [*params, limit],
        ).pl()
        names = ("as_of_date", "model_version", "model_kind")
        row = con.execute(f"select {', '.join(names)} from {SCHEMA}.served_model").fetchone()
        info = dict(zip(names, row, strict=True))
    return frame, info


def evidence_text(evidence_json: str | None, lang: str) -> str:
    """'2026-09-27 · recrutement · signal FT-000034062' for the most recent evidence item, or ''."""
    from ose_assets.scoring.reasons import SIGNAL_TYPE_LABELS

    items = json.loads(evidence_json or "[]")
    if not items:
        return ""
    item = max(items, key=lambda e: e.get("date") or "")
    position = 1 if lang == "en" else 0
    kind = EVIDENCE_KINDS[lang].get(item.get("kind"), item.get("kind") or "")
    label = SIGNAL_TYPE_LABELS.get(item.get("type"), (item.get("type"),) * 2)[position]
    parts = [item.get("date"), label, f"{kind} {item.get('id') or ''}".strip()]
    return " · ".join(part for part in parts if part)


def score_text(score: float, band: str, lang: str) -> str:
    number = f"{score:.1f}"
    return f"{number.replace('.', ',') if lang == 'fr' else number} ({band})"


def print_ranking(frame: pl.DataFrame, info: dict, lang: str, segment: str = "", file=None) -> None:
    """The ranking as a table that fits the terminal (rich wraps long cells instead of cutting them)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    words = HEADERS[lang]
    console = Console(file=file or sys.stdout, highlight=False)
    title = words["title"].format(
        n=frame.height, segment=segment, as_of=info["as_of_date"], version=info["model_version"],
        kind=info["model_kind"],
    )  # fmt: skip
    if frame.is_empty():
        console.print(f"{title}\n{words['empty']}")
        return
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False, expand=True)
    table.add_column(words["rank"], justify="right", no_wrap=True)
    table.add_column(words["company"], ratio=3, overflow="fold")
    table.add_column(words["score"], justify="right", no_wrap=True)
    table.add_column(words["where"], ratio=4, overflow="fold")
    table.add_column(words["reason"], ratio=5, overflow="fold")
    for row in frame.iter_rows(named=True):
        evidence = evidence_text(row["top_reason_evidence"], lang) or words["no_evidence"]
        table.add_row(
            str(row["rank"]),
            f"{row['name']}\n[dim]{row['siren']}[/dim]",
            score_text(row["score"], row["band"], lang),
            f"{row['region_name'] or row['region_code']}\n{row['naf_label'] or row['naf_code']}",
            f"{row['top_reason'] or ''}\n[dim]{evidence}[/dim]",
        )
    console.print(table)


def print_top_opportunities(settings: OSESettings, lang: str = "fr", limit: int = 10) -> None:
    """The demo's closing top 10 (what `ose top` prints)."""
    frame, info = ranking(settings, None, None, limit, lang)
    print_ranking(frame, info, lang)


def top(args: argparse.Namespace) -> bool:
    settings = settings_for(args)
    try:
        frame, info = ranking(settings, args.region, args.naf_section, args.limit, args.lang)
    except (UnknownFilter, FileNotFoundError) as error:
        print(f"ose top: {error}", file=sys.stderr)
        return False
    if args.format == "json":
        document = {key: str(value) for key, value in info.items()} | {"items": frame.to_dicts()}
        print(json.dumps(document, ensure_ascii=False, default=str, indent=2))
    elif args.format == "csv":
        from ose_assets.api.export import formula_safe_frame

        sys.stdout.write(formula_safe_frame(frame).write_csv())
    else:
        segment = "".join(
            f" · {value}" for value in (args.region, args.naf_section and args.naf_section.upper()) if value
        )
        print_ranking(frame, info, args.lang, segment)
    return True


def export(args: argparse.Namespace) -> bool:
    from ose_assets.api.export import read_only_serving, scored_table, write_export

    settings = settings_for(args)
    try:
        with read_only_serving(settings.serving_path) as con:
            frame = scored_table(con, args.lang)
        write_export(frame, args.format, args.out)
    except (FileNotFoundError, ValueError) as error:
        print(f"ose export: {error}", file=sys.stderr)
        return False
    print(f"{frame.height:,} companies written to {args.out} ({args.format})")
    return True


def register(add_command) -> None:
    sub = add_command("top", top, "print the current ranking from the serving copy")
    sub.add_argument("--region", help="région code or name (e.g. 53 or Bretagne)")
    sub.add_argument("--naf-section", help="NAF section letter (e.g. J)")
    sub.add_argument("--limit", type=int, default=10)
    sub.add_argument("--format", choices=TOP_FORMATS, default="table")
    sub.add_argument("--lang", choices=("fr", "en"), default="fr")
    sub = add_command("export", export, "write the whole scored table with its reasons to a file")
    sub.add_argument("--format", choices=("csv", "parquet", "xlsx"), required=True)
    sub.add_argument("--out", required=True, help="file to write (replaced atomically)")
    sub.add_argument("--lang", choices=("fr", "en"), default="fr", help="language of the reasons")
