"""The sales pages in a real browser (Debian's chromium driven by Playwright) against a real uvicorn server
over a synthetic serving copy. Every request a page makes is recorded and must go to that server."""

from __future__ import annotations

import csv
import html
import json
import shutil
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from ose_assets.api.pages import SESSION_COOKIE
from ose_assets.scoring.responses import stored_body
from ose_assets.settings import OSESettings
from ose_assets_tests.api_server import live_server

CHROMIUM = Path("/usr/bin/chromium")
FORMULA_NAME = '=HYPERLINK("http://evil.example","x")'
API_KEY = "pages-s3cret"


@pytest.fixture(scope="module")
def served(served):
    """The shared synthetic copy, with the name of the rank-1 company turned into a spreadsheet formula."""
    settings, scores = served
    with duckdb.connect(str(settings.serving_path)) as con:
        con.execute("update company_scores set name = ? where rank = 1", [FORMULA_NAME])
    return settings, scores.with_columns(
        name=pl.when(pl.col("rank") == 1).then(pl.lit(FORMULA_NAME)).otherwise(pl.col("name"))
    )


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def requests_seen() -> list[str]:
    return []


@pytest.fixture
def page(browser, requests_seen, base_url):
    """A fresh browser context recording every request; at the end, all of them went to the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.on("request", lambda request: requests_seen.append(request.url))
    yield tab
    context.close()
    outside = [url for url in requests_seen if not url.startswith(base_url + "/")]
    assert not outside, f"pages requested outside the server: {outside}"


def table_sirens(page) -> list[str]:
    return page.locator("table.ranking tbody tr").evaluate_all("rows => rows.map(r => r.dataset.siren)")


def test_ranking_shows_the_top_10_in_rank_order(page, base_url, served):
    _, scores = served
    response = page.goto(base_url + "/")
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "fr"
    expected = scores.filter("is_eligible").sort("rank").head(10).get_column("siren").to_list()
    assert table_sirens(page) == expected
    first = page.locator("table.ranking tbody tr").first
    public_record = f"https://annuaire-entreprises.data.gouv.fr/entreprise/{expected[0]}"
    assert first.locator(f'a[href="{public_record}"]').inner_text() == expected[0]
    # The formula-like name is shown as text, not interpreted.
    assert first.get_by_role("link", name=FORMULA_NAME).count() == 1
    header = page.locator("header.site").inner_text()
    assert "2026-11-23" in header and "modèle 1" in header


def test_region_filter_changes_rows_and_keeps_only_that_region(page, base_url, served):
    _, scores = served
    page.goto(base_url + "/")
    unfiltered = table_sirens(page)
    region = "53"
    page.get_by_label("Région").select_option(region)
    page.get_by_role("button", name="Afficher").click()
    page.wait_for_url(f"**/?*region={region}*")
    sirens = table_sirens(page)
    in_region = scores.filter(pl.col("is_eligible"), pl.col("region_code") == region).sort("rank")
    assert sirens != unfiltered
    assert sirens == in_region.head(10).get_column("siren").to_list()
    regions = dict(scores.select("siren", "region_code").iter_rows())
    assert {regions[siren] for siren in sirens} == {region}


def test_csv_download_has_the_rows_of_the_filtered_ranking(page, base_url, tmp_path):
    page.goto(base_url + "/?band=A&limit=25")
    shown = table_sirens(page)
    assert 10 < len(shown) <= 25
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger le CSV").click()
    path = tmp_path / "ranking.csv"
    download.value.save_as(path)
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines(), delimiter=";"))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Rang", "Rang national", "Entreprise", "SIREN"]
    assert [row[3] for row in body] == shown
    # OWASP CSV injection: the formula-like name starts with a quote.
    assert body[0][2] == "'" + FORMULA_NAME


def test_company_page_shows_three_reasons_with_their_evidence(page, base_url, served):
    settings, _ = served
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        bodies = [
            json.loads(stored_body(*row))
            for row in con.execute("select company, reasons_fr, history from score_responses").fetchall()
        ]
    # A company whose three positive reasons all carry evidence.
    company = next(
        body
        for body in bodies
        if len(body["reasons"]["positive"]) == 3 and all(r["evidence"] for r in body["reasons"]["positive"])
    )
    response = page.goto(f"{base_url}/entreprise/{company['siren']}")
    assert response.status == 200
    reasons = page.locator("section.reasons.up li.reason-item")
    assert reasons.count() == 3
    for position, reason in enumerate(company["reasons"]["positive"]):
        item = reasons.nth(position)
        assert reason["text"] in item.locator(".sentence").inner_text()
        links = item.locator("ul.evidence a").evaluate_all("links => links.map(a => a.href)")
        assert links == [evidence["url"] for evidence in reason["evidence"]]
        assert reason["evidence"][0]["date"] in item.inner_text()
    assert page.locator("section.reasons.down li.reason-item").count() == len(company["reasons"]["negative"])
    assert page.locator("svg.chart polyline").count() == 1
    assert page.get_by_role("heading", level=1).inner_text() == company["name"]


def test_english_switch_and_pages_at_360px(page, base_url, requests_seen):
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(base_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Companies to call this week"
    for path in ("/", "/entreprise/" + table_sirens(page)[0], "/bilan", "/connexion"):
        page.goto(base_url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, f"{path} is wider than 360 px"
    assert any(url.endswith("/static/pages.css") for url in requests_seen)


def test_with_api_key_pages_need_a_login(browser, tmp_path_factory, served):
    source, _ = served
    settings = OSESettings(data_dir=tmp_path_factory.mktemp("pages_key"), api_key=API_KEY)
    settings.serving_path.parent.mkdir(parents=True)
    shutil.copy(source.serving_path, settings.serving_path)
    with live_server(settings) as url:
        context = browser.new_context()
        page = context.new_page()
        seen: list[str] = []
        page.on("request", lambda request: seen.append(request.url))
        refused = page.goto(url + "/?region=53")
        assert refused.status == 401
        assert page.locator("table.ranking").count() == 0
        assert context.request.get(url + "/classement.csv").status == 401
        page.get_by_label("Clé d'accès").fill("wrong")
        page.get_by_role("button", name="Se connecter").click()
        assert page.get_by_role("alert").inner_text() == "Clé incorrecte."
        page.get_by_label("Clé d'accès").fill(API_KEY)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(url + "/?region=53")
        assert page.locator("table.ranking tbody tr").count() == 10
        cookie = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
        assert cookie["httpOnly"] and API_KEY not in cookie["value"]
        assert not [u for u in seen if API_KEY in u or not u.startswith(url + "/")]
        # The JSON API still wants its header, the session cookie is not an API key.
        assert context.request.get(url + "/api/v1/top-opportunities").status == 401
        context.close()


def test_bad_parameters_get_a_clear_error_page(base_url):
    with httpx.Client(base_url=base_url) as http:
        unknown = http.get("/", params={"region": "99"})
        message = html.unescape(unknown.text).split("unknown region '99'; accepted: ")[1].split("<")[0]
        assert unknown.status_code == 422 and sorted(message.split(", ")) == ["11", "53", "84", "93"]
        assert http.get("/", params={"limit": "7"}).status_code == 422
        assert http.get("/", params={"page": "abc"}).status_code == 422
        assert http.get("/entreprise/12345").status_code == 422
        missing = http.get("/entreprise/000000000")
        assert missing.status_code == 404 and "000000000" in missing.text
        # A SIREN typed in the search box opens its page; a name search filters the ranking.
        searched = http.get("/", params={"q": "a"}, follow_redirects=False)
        assert searched.status_code == 200 and searched.text.count("<tr data-region") == 10
        siren = searched.text.split('data-siren="')[1][:9]
        opened = http.get("/", params={"q": f"{siren[:3]} {siren[3:6]} {siren[6:]}"}, follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == f"/entreprise/{siren}"
