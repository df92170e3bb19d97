"""What the sales pages read from one serving version, and the score-history chart they draw.

Every page costs one or two statements on the serving copy. The ranking is one read of company_scores,
stored in rank order: the unfiltered top reads a rank range, a filtered page stops once its rows are
found; each row carries its first reason, since reading score_reasons for a list of companies is a scan
of that table. A name search first reads the searched words' prefix ranges of name_tokens. The company
page is the stored score document (one index probe) plus its company_features row (another). The filter
choices are read once per file version.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

from ose_assets.api import queries
from ose_assets.api.reader import SCHEMA, ServingVersion
from ose_assets.ingestion.labels import label_key
from ose_assets.ingestion.reference import DEPARTEMENTS_FILE, HEADCOUNT_BANDS_FILE, naf_frame

PAGE_SIZES = (10, 25, 50, 100)
# A name search looks up its companies by SIREN (index lookups) when one of its words starts the name words
# of at most this many companies; otherwise it scans company_scores in rank order (a common word: the
# page's rows come early). DuckDB looks up that many SIRENs in about 25 ms (reader.IN_LIST_LOOKUPS).
SEARCH_CANDIDATES = 200
# Words of a search used (a longer search is pasted text rather than a name).
MAX_SEARCH_WORDS = 6
RANKING_COLUMNS = (
    "siren", "name", "score", "band", "rank", "score_change", "trend", "region_code", "region_name",
    "departement_code", "headcount_band", "naf_section", "explanation_method", "first_reason_date",
)  # fmt: skip
# Filters of the ranking: query parameter -> company_scores column.
FILTER_COLUMNS = {
    "region": "region_code",
    "departement": "departement_code",
    "naf_section": "naf_section",
    "band": "band",
    "size": "headcount_band",
}


@dataclass(frozen=True)
class Labels:
    """Names of codes, from the reference files the ingestion uses."""

    departements: dict[str, str]
    headcount_bands: dict[str, dict[str, str]]  # code -> {"fr": label, "en": label}
    headcount_order: dict[str, int]
    naf_sections: dict[str, str]

    def headcount(self, code: str | None, lang: str) -> str | None:
        return None if code is None else self.headcount_bands.get(code, {}).get(lang, code)


@cache
def labels(reference_dir: Path) -> Labels:
    with open(reference_dir / DEPARTEMENTS_FILE, encoding="utf-8", newline="") as handle:
        departements = {row["departement_code"]: row["departement_name"] for row in csv.DictReader(handle)}
    bands, order = {}, {}
    with open(reference_dir / HEADCOUNT_BANDS_FILE, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            low, high = row["headcount_min"], row["headcount_max"]
            code = row["headcount_band"]
            if code == "NN":
                english = "non-employer unit"
            elif high == "0":
                english = "no employee"
            else:
                low = f"{int(low):,}"
                english = f"{low} employees or more" if not high else f"{low} to {int(high):,} employees"
            bands[code] = {"fr": row["headcount_band_label"], "en": english}
            order[code] = int(row["headcount_band_rank"])
    sections = dict(naf_frame().select("naf_section", "naf_section_label").unique().iter_rows())
    return Labels(departements, bands, order, sections)


@dataclass
class Choices:
    """Values offered by the ranking's filters for one file version, with their display names."""

    regions: list[tuple[str, str]]
    departements: list[str]
    naf_sections: list[str]
    bands: list[str]
    sizes: list[str]
    has_age: bool

    def codes(self, name: str) -> list[str]:
        """The accepted values of filter `name` (a key of FILTER_COLUMNS)."""
        if name == "region":
            return [code for code, _ in self.regions]
        return {
            "departement": self.departements,
            "naf_section": self.naf_sections,
            "band": self.bands,
            "size": self.sizes,
        }[name]

    def options(self, name: str, labels: Labels, lang: str) -> list[tuple[str, str]]:
        """(value, text) of each choice of filter `name`, as the ranking's form shows them."""
        names = {
            "region": dict(self.regions),
            "departement": {
                code: f"{code} {labels.departements.get(code, '')}" for code in self.departements
            },
            "naf_section": {
                code: f"{code} · {labels.naf_sections.get(code, '').capitalize()}"
                for code in self.naf_sections
            },
            "size": {code: labels.headcount(code, lang) for code in self.sizes},
        }.get(name, {})
        return [(code, names.get(code, code)) for code in self.codes(name)]


@dataclass
class ChoicesCache:
    """The filter choices of the current file version (one entry: a new publish replaces it)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entry: tuple | None = None

    def get(self, version: ServingVersion, bands: list[str], labels: Labels) -> Choices:
        entry = self._entry
        if entry is not None and entry[0] == version.stamp:
            return entry[1]
        with self._lock:
            if self._entry is None or self._entry[0] != version.stamp:
                self._entry = (version.stamp, read_choices(version, bands, labels))
            return self._entry[1]


def read_choices(version: ServingVersion, bands: list[str], labels: Labels) -> Choices:
    cursor = version.cursor()
    rows = cursor.execute(
        f"select distinct region_code, region_name, departement_code, headcount_band "
        f"from {SCHEMA}.company_scores"
    ).fetchall()
    regions = sorted({(r[0], r[1] or r[0]) for r in rows if r[0]}, key=lambda item: item[1])
    departements = sorted({r[2] for r in rows if r[2]})
    sizes = sorted({r[3] for r in rows if r[3]}, key=lambda code: labels.headcount_order.get(code, 99))
    has_age = bool(
        cursor.execute(
            "select count(*) from duckdb_columns() where database_name = ? and table_name = "
            "'company_features' and column_name = 'company_age_years'",
            [SCHEMA],
        ).fetchone()[0]
    )
    return Choices(regions, departements, list(version.naf_sections), bands, sizes, has_age)


def search_words(search: str) -> list[str]:
    """The words of a name search, normalised like the names (accents, case, punctuation: label_key)."""
    return list(dict.fromkeys(word for word in label_key(search).split("_") if word))[:MAX_SEARCH_WORDS]


def search_candidates(cursor, words: list[str]) -> list[str] | None:
    """The SIRENs whose name has a word starting with each of `words`, read from name_tokens when one of
    the words starts at most SEARCH_CANDIDATES names' words, or when the words together do; None when
    they are that common (the rank-order scan then finds its rows early)."""
    # Words are [a-z0-9]+: the prefix range of `word` ends at its last letter plus one.
    bounds = [bound for word in words for bound in (word, word[:-1] + chr(ord(word[-1]) + 1))]

    def word_sirens(limit: str) -> str:
        """(word number, siren) of each word's prefix range of name_tokens, each range read up to `limit`."""
        return " union all ".join(
            f"(select {i} as word, siren from {SCHEMA}.name_tokens where token >= ? and token < ?{limit})"
            for i in range(len(words))
        )

    found: list[list[str]] = [[] for _ in words]
    for word, siren in cursor.execute(word_sirens(f" limit {SEARCH_CANDIDATES + 1}"), bounds).fetchall():
        found[word].append(siren)
    # A word with more rows than that was cut by its LIMIT (a name can have two words with its prefix).
    rare = [set(sirens) for sirens in found if len(sirens) <= SEARCH_CANDIDATES]
    if rare:
        return sorted(set.intersection(*rare))
    if len(words) == 1:
        return None
    # Every word is common, but together they may be rare ("conseil gomes"): the rank-order scan would
    # read far to find them, so intersect the words' whole prefix ranges first (each a range read).
    sirens = cursor.execute(
        f"select siren from ({word_sirens('')}) group by siren having count(distinct word) = {len(words)} "
        f"limit {SEARCH_CANDIDATES + 1}",
        bounds,
    ).fetchall()
    return sorted(siren for (siren,) in sirens) if len(sirens) <= SEARCH_CANDIDATES else None


def ranking(
    version: ServingVersion, filters: dict[str, str], search: str | None, limit: int, offset: int, lang: str
) -> tuple[list[dict], bool]:
    """Eligible companies in rank order under the filters (and a name search), from `offset`: `limit` rows
    with their reasons, and whether more rows follow.

    A name search keeps the companies whose normalised name has a word starting with each searched word
    ("boulan dupont" finds "Boulangerie Dupont"; accents, case and punctuation do not matter).
    """
    cursor = version.cursor()
    conditions, params = ["is_eligible", "rank is not null"], []
    words = search_words(search or "")
    skip = offset
    if not filters and not words:
        # Ranks are 1..n among eligible companies: the page is a rank range.
        conditions.append("rank between ? and ?")
        params += [offset + 1, offset + limit + 1]
        skip = 0
    for name, value in filters.items():
        conditions.append(f"{FILTER_COLUMNS[name]} = ?")
        params.append(value)
    for word in words:
        conditions.append("(starts_with(name_key, ?) or contains(name_key, ?))")
        params += [word, f"_{word}"]
    candidates = search_candidates(cursor, words) if words else None
    columns = (*RANKING_COLUMNS, f"first_reason_{lang}")
    select = f"select {', '.join(columns)} from "
    where = f" where {' and '.join(conditions)} order by rank"
    if candidates is None:
        # company_scores is stored in rank order: the scan stops once the page's rows are found.
        sql, params = f"{select}{SCHEMA}.company_scores{where} limit ? offset ?", [*params, limit + 1, skip]
    else:
        # A few SIRENs: ART index lookups, the conditions on those rows, the page cut below. The inner
        # LIMIT (no more rows than SIRENs) keeps DuckDB from moving the conditions into the scan, and there
        # is no outer LIMIT: either would turn the lookups into a scan of the whole table.
        sql = (
            f"{select}(select * from {SCHEMA}.company_scores where siren = any(?::varchar[]) "
            f"limit {len(candidates)}){where}"
        )
        params = [candidates, *params]
    rows = [dict(zip(columns, row, strict=True)) for row in cursor.execute(sql, params).fetchall()]
    if candidates is not None:
        rows = rows[offset : offset + limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    for position, row in enumerate(rows, start=offset + 1):
        row["position"] = position
        row["reason"] = row.pop(f"first_reason_{lang}")
        row["evidence_date"] = row.pop("first_reason_date")
    # Reasons are exact on every page: companies the scoring run explained approximately (when
    # OSE_EXACT_EXPLANATIONS_TOP_N caps exact explanations) are explained now.
    approximate = {row["siren"]: row for row in rows if row["explanation_method"] != "exact"}
    if approximate:
        exact = queries.reasons(version, cursor, approximate, lang)
        for siren, row in approximate.items():
            first = (exact[siren]["positive"] or [None])[0]
            row["reason"] = first["text"] if first else None
            row["evidence_date"] = first["evidence"][0]["date"] if first and first["evidence"] else None
    return rows, more


def company_age_years(version: ServingVersion, siren: str) -> float | None:
    row = (
        version.cursor()
        .execute(f"select company_age_years from {SCHEMA}.company_features where siren = ?", [siren])
        .fetchone()
    )
    return None if row is None or row[0] is None else float(row[0])


def history_svg(points: list[dict], label: str, width: int = 320, height: int = 120) -> Markup:
    """The score history (newest first, as the score document lists it) as an inline SVG line chart."""
    points = sorted(points, key=lambda p: str(p["as_of_date"]))
    if not points:
        return Markup("")
    left, right, top, bottom = 34, 8, 10, 22
    scores = [float(p["score"]) for p in points]
    low = max(0.0, min(scores) - 5)
    high = min(100.0, max(scores) + 5)
    if high - low < 1:
        low, high = max(0.0, low - 1), min(100.0, high + 1)
    span_x = max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / span_x if len(points) > 1 else 0.5)

    def y(score: float) -> float:
        return top + (height - top - bottom) * (1 - (score - low) / (high - low))

    path = " ".join(f"{x(i):.1f},{y(s):.1f}" for i, s in enumerate(scores))
    dates = [escape(str(p["as_of_date"])) for p in points]
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(s):.1f}" r="3"><title>{dates[i]}: {s:.1f}</title></circle>'
        for i, s in enumerate(scores)
    )
    axis = (
        f'<text x="{left - 4}" y="{y(high):.1f}" text-anchor="end" dy="4">{high:.0f}</text>'
        f'<text x="{left - 4}" y="{y(low):.1f}" text-anchor="end" dy="4">{low:.0f}</text>'
        f'<text x="{x(0):.1f}" y="{height - 4}" text-anchor="start">{dates[0]}</text>'
    )
    if len(points) > 1:
        axis += f'<text x="{x(len(points) - 1):.1f}" y="{height - 4}" text-anchor="end">{dates[-1]}</text>'
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}"/>'
        f'<polyline points="{path}"/>{dots}{axis}</svg>'
    )
