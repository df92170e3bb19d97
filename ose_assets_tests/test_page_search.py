"""The pages' name search over a real synthetic serving copy: accents, case, punctuation and partial words
do not matter, results keep the ranking order and its paging, a SIREN opens its company."""

from __future__ import annotations

import re

import httpx
import polars as pl
import pytest

from ose_assets.api import page_data
from ose_assets.api.reader import ServingStore
from ose_assets.ingestion.labels import label_key


@pytest.fixture(scope="module")
def version(served):
    return ServingStore(served[0].serving_path).current()


def expected(scores: pl.DataFrame, search: str, region: str | None = None) -> list[str]:
    """SIRENs of the ranked companies, in rank order, with a name word starting with every searched word."""
    words = [word for word in label_key(search).split("_") if word]
    ranked = scores.filter(pl.col("is_eligible") & pl.col("rank").is_not_null()).sort("rank")
    if region:
        ranked = ranked.filter(pl.col("region_code") == region)
    return [
        siren
        for siren, name in ranked.select("siren", "name").iter_rows()
        if all(any(token.startswith(word) for token in label_key(name).split("_")) for word in words)
    ]


def searched(version, search: str, limit: int = 100, page: int = 1, **filters) -> tuple[list[str], bool]:
    rows, more = page_data.ranking(version, filters, search, limit, (page - 1) * limit, "fr")
    return [row["siren"] for row in rows], more


@pytest.fixture(params=["lookup", "together", "scan"])
def path(request, monkeypatch):
    """The ways a search reads: SIREN lookups from name_tokens (a rare word; with a cap of 1, common words
    rare together), or the ranked scan."""
    cap = {"lookup": page_data.SEARCH_CANDIDATES, "together": 1, "scan": 0}[request.param]
    monkeypatch.setattr(page_data, "SEARCH_CANDIDATES", cap)
    return request.param


def test_accents_case_and_partial_words_find_the_same_companies(version, served, path):
    _, scores = served
    ranked = scores.filter(pl.col("rank").is_not_null()).sort("rank").get_column("name")
    name = next(n for n in ranked if re.search("[éèêàâôûïç]", n.lower()))
    activity, surname, brand = name.split()
    plain = label_key(name).replace("_", " ")
    variants = [name, name.upper(), plain, f"{activity[:4]} {brand[:5]}", f"  {brand.lower()}!", brand]
    found = {variant: searched(version, variant)[0] for variant in variants}
    siren = scores.filter(pl.col("name") == name).get_column("siren")[0]
    for variant, sirens in found.items():
        assert siren in sirens, variant
        assert sirens == expected(scores, variant), variant
    # One partial word: every company with a name word starting with it, in rank order.
    assert searched(version, surname[:3].upper())[0] == expected(scores, surname[:3])
    assert searched(version, "zzzz")[0] == []


def test_search_keeps_rank_order_filters_and_paging(version, served, path):
    _, scores = served
    everyone = expected(scores, "a")
    assert len(everyone) > 25
    pages, page, more = [], 1, True
    while more:
        sirens, more = searched(version, "A", limit=10, page=page)
        pages += sirens
        page += 1
    assert pages == everyone
    region = scores.get_column("region_code")[0]
    assert searched(version, "a", region=region)[0] == expected(scores, "a", region)


def test_elided_articles_and_hyphens_are_ignored(version, served, path):
    _, scores = served
    for search in ("d'Arcy", "D’ARCY arc", "saint just", "Saint-Just", "auto-ecole", "Auto école"):
        assert searched(version, search)[0] == expected(scores, search), search
    assert searched(version, "arcy")[0] == expected(scores, "d'Arcy") != []


def test_search_box_over_http(base_url, served):
    _, scores = served
    top = scores.filter(pl.col("rank") == 1).row(0, named=True)
    with httpx.Client(base_url=base_url) as http:
        page = http.get("/", params={"q": label_key(top["name"]).upper().replace("_", " ")})
        assert page.status_code == 200
        assert re.findall(r'data-siren="(\d{9})"', page.text) == expected(scores, top["name"])[:10]
        # A SIREN, with spaces or dots, opens its company page: exact, not a name search.
        siren = top["siren"]
        opened = http.get("/", params={"q": f"{siren[:3]}.{siren[3:6]} {siren[6:]}"}, follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == f"/entreprise/{siren}"


def test_common_words_rare_together_are_looked_up(version, served, monkeypatch):
    """Two words each in several ranked names but together in few: found by intersecting their name_tokens
    ranges, the same companies in the same order as the ranked scan finds."""
    _, scores = served
    ranked = scores.filter(pl.col("is_eligible") & pl.col("rank").is_not_null())
    names = [label_key(name).split("_") for name in ranked.get_column("name")]
    counts: dict[str, int] = {}
    for words in names:
        for word in set(words):
            counts[word] = counts.get(word, 0) + 1
    pair = next(
        (first, second)
        for words in names
        for first in words
        for second in words
        if first < second and counts[first] > 2 and counts[second] > 2
    )
    search = " ".join(pair)
    wanted = expected(scores, search)
    assert 0 < len(wanted) < min(counts[pair[0]], counts[pair[1]])
    monkeypatch.setattr(page_data, "SEARCH_CANDIDATES", len(wanted))
    cursor = version.cursor()
    assert all(len(page_data.search_candidates(cursor, [word]) or []) == 0 for word in pair)
    assert page_data.search_candidates(cursor, list(pair)) == sorted(wanted)
    assert searched(version, search)[0] == wanted
