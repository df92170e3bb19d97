"""The REST API against a real uvicorn server on a loopback port, over synthetic serving copies."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import duckdb
import httpx
import polars as pl
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from stdnum import luhn

from ose_assets.api import queries
from ose_assets.api.reader import SCHEMA, BoundedCache, ServingStore
from ose_assets.api.schemas import ScoreResponse
from ose_assets.benchmarks.synthetic_serving import build_serving_copy
from ose_assets.model.served_model import ServedModel
from ose_assets.scoring.explain import explain
from ose_assets.settings import OSESettings
from ose_assets_tests.api_server import SERVED_COMPANIES as COMPANIES
from ose_assets_tests.api_server import live_server

API_KEY = "s3cret-key"


@pytest.fixture(scope="module")
def client(base_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


def unscored_siren(scores: pl.DataFrame) -> str:
    """A Luhn-valid SIREN absent from the serving copy."""
    for base in range(10_000_000, 10_001_000):
        candidate = f"{base:08d}" + luhn.calc_check_digit(f"{base:08d}")
        if candidate not in set(scores.get_column("siren")):
            return candidate
    raise AssertionError("no free SIREN")


def company(scores: pl.DataFrame, **conditions) -> dict:
    frame = scores
    for column, value in conditions.items():
        frame = frame.filter(pl.col(column) == value)
    return frame.row(0, named=True)


def exact_reasons(settings: OSESettings, siren: str) -> pl.DataFrame:
    """The scoring helper's exact explanation of one company, computed directly from the serving file."""
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        model = ServedModel.from_bytes(con.execute("select model_bytes from served_model").fetchone()[0])
        features = con.execute("select * from company_features where siren = ?", [siren]).pl()
        evidence = con.execute("select * from signal_evidence where siren = ?", [siren]).pl()
    return explain(model, features, evidence, exact=True)


# ---- /health ------------------------------------------------------------------------------------
def test_health_reports_the_served_version(client, served):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert (body["model_version"], body["model_kind"], body["is_learned_model"]) == ("1", "xgboost", True)
    assert body["scored_companies"] == COMPANIES
    assert body["as_of_date"] == "2026-11-23"
    assert body["scored_at"].startswith("2026-11-23T06:00")
    assert 0 <= body["serving_file_age_seconds"] < 600
    assert body["serving_file"] == str(served[0].serving_path)


def test_health_is_503_without_serving_copy_and_recovers_when_published(tmp_path):
    settings = OSESettings(data_dir=tmp_path)
    with live_server(settings) as url, httpx.Client(base_url=url) as http:
        response = http.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        api = http.get("/api/v1/top-opportunities")
        assert api.status_code == 503 and api.json()["error"] == "serving_unavailable"
        build_serving_copy(settings.serving_path, companies=40, model_kind="rules_prior", model_version="0")
        body = http.get("/health").json()
        assert (body["status"], body["model_kind"], body["is_learned_model"]) == ("ok", "rules_prior", False)


# ---- GET /api/v1/score/{siren} -----------------------------------------------------------------------
def test_score_of_one_company(client, served):
    settings, scores = served
    row = company(scores, explanation_method="exact")
    response = client.get(f"/api/v1/score/{row['siren']}")
    assert response.status_code == 200
    body = response.json()
    assert body["siren"] == row["siren"]
    assert (body["score"], body["band"], body["rank"]) == (row["score"], row["band"], row["rank"])
    assert (body["model_version"], body["as_of_date"], body["trend"]) == ("1", "2026-11-23", row["trend"])
    assert [point["as_of_date"] for point in body["history"]] == ["2026-11-23", "2026-11-16", "2026-11-09"]
    assert body["reasons"]["positive"] and body["reasons"]["negative"]
    assert all(r["contribution_points"] > 0 for r in body["reasons"]["positive"])
    assert all(r["contribution_points"] < 0 for r in body["reasons"]["negative"])
    assert [r["rank"] for r in body["reasons"]["positive"]] == list(
        range(1, len(body["reasons"]["positive"]) + 1)
    )


def test_stored_responses_are_the_payloads_assembled_from_the_serving_tables(client, served):
    """serving.score_responses (JSON built by DuckDB at publish) says exactly what the general path
    assembles from company_scores, score_reasons and score_history, for every company and language."""
    settings, scores = served
    version = ServingStore(settings.serving_path).current()
    exact = scores.filter(pl.col("explanation_method") == "exact")["siren"].to_list()
    assert version.has_stored_responses and len(exact) == 50
    for lang in ("fr", "en"):
        payloads, _ = queries.score_payloads(version, exact, lang)
        assert len(payloads) == len(exact)
        for payload in payloads:
            stored = version.stored_response(payload["siren"], lang)
            assembled = ScoreResponse.model_validate(payload).model_dump_json()
            assert json.loads(stored) == json.loads(assembled)
    approximate = scores.filter(pl.col("explanation_method") == "approximate")["siren"][0]
    assert version.stored_response(approximate, "fr") is None  # explained on request instead
    siren = exact[0]
    assert client.get(f"/api/v1/score/{siren}", params={"lang": "en"}).content == version.stored_response(
        siren, "en"
    )


@pytest.mark.parametrize(
    "change",
    [
        "drop table score_responses",  # a copy published before the table existed
        # A copy of the earlier layout, one body per language: not read (the bodies here are wrong).
        """create or replace table score_responses as
        select siren, '{}' as response_fr, '{}' as response_en from company_scores""",
    ],
)
def test_serving_copy_without_stored_responses_is_answered_by_the_general_path(tmp_path, change):
    settings = OSESettings(data_dir=tmp_path)
    scores = build_serving_copy(settings.serving_path, companies=30)
    with duckdb.connect(str(settings.serving_path)) as con:
        con.execute(change)
    siren = company(scores, explanation_method="exact")["siren"]
    with live_server(settings) as url, httpx.Client(base_url=url) as http:
        body = http.get(f"/api/v1/score/{siren}").json()
    assert body["siren"] == siren and body["reasons"]["positive"]


def test_approximate_explanation_is_replaced_by_the_exact_one(client, served):
    settings, scores = served
    row = company(scores, explanation_method="approximate")
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        assert not con.execute(
            "select bool_or(is_exact) from score_reasons where siren = ?", [row["siren"]]
        ).fetchone()[0]
    expected = exact_reasons(settings, row["siren"])
    body = client.get(f"/api/v1/score/{row['siren']}", params={"lang": "en"}).json()
    got = [(r["feature"], r["contribution_points"], r["text"]) for r in body["reasons"]["positive"]]
    want = expected.filter(pl.col("direction") == "up").sort("reason_rank")
    assert got == list(zip(want["feature"], want["contribution_points"], want["reason_en"], strict=True))
    with_evidence = [r for r in body["reasons"]["positive"] + body["reasons"]["negative"] if r["evidence"]]
    assert all({"kind", "id", "url", "date", "type"} <= set(e) for r in with_evidence for e in r["evidence"])


def test_reasons_are_french_by_default_and_english_on_request(client, served):
    siren = company(served[1], explanation_method="exact")["siren"]
    fr = client.get(f"/api/v1/score/{siren}").json()["reasons"]
    en = client.get(f"/api/v1/score/{siren}", params={"lang": "en"}).json()["reasons"]
    with duckdb.connect(str(served[0].serving_path), read_only=True) as con:
        stored = con.execute(
            "select reason_fr, reason_en from score_reasons "
            "where siren = ? and direction = 'up' order by reason_rank",
            [siren],
        ).fetchall()
    assert [r["text"] for r in fr["positive"]] == [s[0] for s in stored]
    assert [r["text"] for r in en["positive"]] == [s[1] for s in stored]
    assert client.get(f"/api/v1/score/{siren}", params={"lang": "de"}).status_code == 422


def test_siren_with_spaces_is_normalised(client, served):
    siren = served[1]["siren"][0]
    response = client.get(f"/api/v1/score/{siren[:3]} {siren[3:6]} {siren[6:]}")
    assert response.status_code == 200 and response.json()["siren"] == siren


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12345678A", "only digits"),
        ("12345678", "9 digits"),
        ("1234567890", "9 digits"),
        ("123456789", "Luhn"),
    ],
)
def test_malformed_siren_is_422_saying_what_is_wrong(client, value, fragment):
    response = client.get(f"/api/v1/score/{value}")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_siren" and fragment in response.json()["message"]


def test_valid_unscored_siren_is_404(client, served):
    siren = unscored_siren(served[1])
    response = client.get(f"/api/v1/score/{siren}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and siren in response.json()["message"]


# ---- POST /api/v1/score ----------------------------------------------------------------------------
def test_batch_returns_each_company_once_in_request_order_and_lists_not_found(client, served):
    settings, scores = served
    exact = company(scores, explanation_method="exact")["siren"]
    approximate = scores.filter(pl.col("explanation_method") == "approximate")["siren"].head(3).to_list()
    missing = unscored_siren(scores)
    sirens = [approximate[0], f"{exact[:3]} {exact[3:]}", missing, *approximate[1:], exact]
    response = client.post("/api/v1/score", json={"sirens": sirens}, params={"lang": "en"})
    assert response.status_code == 200
    body = response.json()
    assert [r["siren"] for r in body["results"]] == [approximate[0], exact, *approximate[1:]]
    assert body["not_found"] == [missing]
    assert body["model_version"] == "1"
    single = client.get(f"/api/v1/score/{approximate[1]}", params={"lang": "en"}).json()
    assert body["results"][2] == single


def test_batch_rejects_invalid_sirens_and_oversized_requests(client, served):
    good = served[1]["siren"][0]
    response = client.post("/api/v1/score", json={"sirens": [good, "123456789", "12 34"]})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_siren"
    assert [d["siren"] for d in body["details"]] == ["123456789", "12 34"]
    assert client.post("/api/v1/score", json={"sirens": [good] * 1001}).status_code == 422
    assert client.post("/api/v1/score", json={"sirens": []}).status_code == 422
    assert client.post("/api/v1/score", json={"siren": good}).status_code == 422
    full = client.post("/api/v1/score", json={"sirens": served[1]["siren"].to_list()})
    assert full.status_code == 200 and len(full.json()["results"]) == COMPANIES


# ---- GET /api/v1/top-opportunities -----------------------------------------------------------------
def test_top_opportunities_default_is_the_overall_segment(client, served):
    scores = served[1]
    body = client.get("/api/v1/top-opportunities").json()
    expected = scores.filter(pl.col("is_eligible")).sort("rank").head(10)
    assert body["segment"] == "overall" and body["source"] == "top_opportunities"
    assert [item["siren"] for item in body["items"]] == expected["siren"].to_list()
    assert [item["segment_rank"] for item in body["items"]] == list(range(1, 11))
    assert all(item["reasons"]["positive"] for item in body["items"])


def test_top_opportunities_beyond_the_stored_segment_rank_company_scores(client, served):
    scores = served[1]
    body = client.get("/api/v1/top-opportunities", params={"limit": 100}).json()
    assert body["source"] == "company_scores"
    expected = scores.filter(pl.col("is_eligible")).sort("rank").head(100)
    assert [item["siren"] for item in body["items"]] == expected["siren"].to_list()
    excluded = set(scores.filter(~pl.col("is_eligible"))["siren"])
    assert excluded, "the synthetic copy must hold excluded companies"
    everything = client.get("/api/v1/top-opportunities", params={"limit": 100, "band": "D"}).json()["items"]
    assert not excluded & {item["siren"] for item in body["items"] + everything}


@pytest.mark.parametrize(
    ("params", "column", "value"),
    [
        ({"region": "53"}, "region_code", "53"),
        ({"naf_section": "J", "limit": 40}, "naf_section", "J"),
        ({"band": "C", "limit": 5}, "band", "C"),
    ],
)
def test_top_opportunities_filters(client, served, params, column, value):
    scores = served[1]
    body = client.get("/api/v1/top-opportunities", params=params).json()
    expected = scores.filter(pl.col("is_eligible"), pl.col(column) == value).sort("rank")
    expected = expected.head(params.get("limit", 10))
    assert body["items"] and [item["siren"] for item in body["items"]] == expected["siren"].to_list()
    assert all(item[column] == value for item in body["items"])


def test_top_opportunities_combined_filters(client, served):
    scores = served[1]
    body = client.get("/api/v1/top-opportunities", params={"region": "11", "naf_section": "C"}).json()
    expected = scores.filter(
        pl.col("is_eligible"), pl.col("region_code") == "11", pl.col("naf_section") == "C"
    )
    assert body["source"] == "company_scores" and body["segment"] == "region:11,naf_section:C"
    assert [item["siren"] for item in body["items"]] == expected.sort("rank")["siren"].head(10).to_list()


@pytest.mark.parametrize(
    ("params", "error", "accepted"),
    [
        ({"region": "99"}, "unknown_region", ["11", "53", "84", "93"]),
        ({"naf_section": "Z"}, "unknown_naf_section", ["C", "F", "G", "J", "M"]),
        ({"band": "E"}, "unknown_band", ["A", "B", "C", "D"]),
        ({"region": "11' or '1'='1"}, "unknown_region", ["11", "53", "84", "93"]),
    ],
)
def test_unknown_query_values_are_422_listing_accepted_values(client, params, error, accepted):
    response = client.get("/api/v1/top-opportunities", params=params)
    assert response.status_code == 422
    assert response.json()["error"] == error and response.json()["accepted_values"] == accepted


@pytest.mark.parametrize("limit", [0, 101, "ten"])
def test_limit_out_of_range_is_422(client, limit):
    response = client.get("/api/v1/top-opportunities", params={"limit": limit})
    assert response.status_code == 422 and "limit" in response.json()["message"]


# ---- API key, read-only ---------------------------------------------------------------------------
def test_api_key_guards_api_routes_but_not_health(served):
    settings = served[0].model_copy(update={"api_key": API_KEY})
    siren = served[1]["siren"][0]
    with live_server(settings) as url, httpx.Client(base_url=url) as http:
        assert http.get("/health").status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}):
            for response in (
                http.get(f"/api/v1/score/{siren}", headers=headers),
                http.post("/api/v1/score", json={"sirens": [siren]}, headers=headers),
                http.get("/api/v1/top-opportunities", headers=headers),
            ):
                assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert http.get(f"/api/v1/score/{siren}", headers={"X-API-Key": API_KEY}).status_code == 200
        assert http.get("/api/v1/top-opportunities", headers={"X-API-Key": API_KEY}).status_code == 200


def test_serving_copy_is_opened_read_only_and_never_modified(client, served, base_url):
    path = served[0].serving_path
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    client.get("/api/v1/top-opportunities", params={"limit": 50})
    client.post("/api/v1/score", json={"sirens": served[1]["siren"].head(20).to_list()})
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    # The serving connection itself refuses writes.
    version = ServingStore(path).current()
    with pytest.raises(duckdb.Error):
        version.connection.execute(f"create table {SCHEMA}.intruder (x int)")


# ---- a publish while requests run -----------------------------------------------------------------
def test_new_serving_copy_is_picked_up_without_restart_and_every_response_is_consistent(tmp_path):
    settings = OSESettings(data_dir=tmp_path)
    first = build_serving_copy(settings.serving_path, companies=200, model_version="1")
    staging = tmp_path / "staging" / "next.duckdb"
    second = build_serving_copy(staging, companies=200, model_version="2", score_offset=5.0)
    expected = {
        version: dict(zip(frame["siren"], frame["score"], strict=True))
        for version, frame in (("1", first), ("2", second))
    }
    sirens = first["siren"].head(20).to_list()
    stop = threading.Event()
    seen: list[tuple[int, str | None, bool]] = []

    def hammer(http: httpx.Client, offset: int) -> None:
        i = offset
        while not stop.is_set():
            siren = sirens[i % len(sirens)]
            i += 1
            response = http.get(f"/api/v1/score/{siren}")
            body = response.json()
            version = body.get("model_version")
            consistent = (
                response.status_code == 200
                and body["score"] == expected[version][siren]
                and all(point["model_version"] == version for point in body["history"])
            )
            top = http.get("/api/v1/top-opportunities", params={"limit": 3})
            items = top.json().get("items", [])
            consistent &= top.status_code == 200 and all(
                item["model_version"] == top.json()["model_version"] for item in items
            )
            seen.append((min(response.status_code, top.status_code), version, consistent))

    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(hammer, http, k * 5) for k in range(4)]
            time.sleep(0.5)
            (settings.serving_path.parent / "incoming.duckdb").write_bytes(staging.read_bytes())
            os.replace(settings.serving_path.parent / "incoming.duckdb", settings.serving_path)
            deadline = time.monotonic() + 10
            while not any(v == "2" for _, v, _ in list(seen)) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            stop.set()
            for worker in workers:
                worker.result()
        health = http.get("/health").json()
    assert health["model_version"] == "2"
    assert all(status == 200 for status, _, _ in seen)
    assert all(consistent for _, _, consistent in seen)
    versions = [version for _, version, _ in seen]
    assert {"1", "2"} <= set(versions)


# ---- property-based run of the OpenAPI schema -----------------------------------------------------
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_openapi_schema_property_run_finds_no_server_error(base_url):
    """Schemathesis generates requests from the live OpenAPI document, operation by operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5  # health, score, batch score, top opportunities, track record
    calls = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            response = case.call_and_validate(checks=CHECKS, timeout=30)
            calls.append(response.status_code)

        run()
    assert len(calls) >= 40 and max(calls) < 500


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/health",
        "/api/v1/score/{siren}",
        "/api/v1/score",
        "/api/v1/top-opportunities",
        "/api/v1/track-record",
    } <= set(paths)


def test_concurrent_exact_explanations_are_coalesced_and_each_request_gets_its_own(served):
    settings, scores = served
    version = ServingStore(settings.serving_path).current()
    sirens = scores.filter(pl.col("explanation_method") == "approximate")["siren"].head(24).to_list()
    calls = []
    explain_one = version.explainer._explain

    def counted(batch):
        calls.append(len(batch))
        time.sleep(0.05)  # a slow call lets the other requests queue up behind it
        return explain_one(batch)

    version.explainer._explain = counted
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: version.explainer.reasons([s]), sirens))
    assert sum(calls) == len(sirens) and len(calls) < len(sirens)
    for siren, result in zip(sirens, results, strict=True):
        assert list(result) == [siren]
        assert result[siren] == exact_reasons(settings, siren).to_dicts()
    # Explained once per file version: asking again reads the cache.
    again = version.explainer.reasons(sirens[:5])
    assert sum(calls) == len(sirens)
    assert again == {siren: result[siren] for siren, result in zip(sirens[:5], results[:5], strict=True)}


def test_ose_api_command_serves_on_loopback(served):
    """`ose api --data-dir DIR --port P` (the CLI's entry to server.serve) answers /health."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "ose_assets.cli",
        "api",
        "--data-dir",
        str(served[0].data_dir),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ose api did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["scored_companies"] == COMPANIES
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_score_responses_are_cached_per_siren_and_language_within_a_file_version(client, served, monkeypatch):

    calls = []
    payloads = queries.score_payloads
    monkeypatch.setattr(
        queries,
        "score_payloads",
        lambda version, sirens, lang: calls.append(lang) or payloads(version, sirens, lang),
    )
    # A company no other test asks for: its first lookup in each language is not cached yet.
    siren = served[1].filter(pl.col("explanation_method") == "approximate")["siren"][-1]
    first = client.get(f"/api/v1/score/{siren}", params={"lang": "en"})
    again = client.get(f"/api/v1/score/{siren[:3]} {siren[3:]}", params={"lang": "en"})
    french = client.get(f"/api/v1/score/{siren}")
    assert first.status_code == again.status_code == french.status_code == 200
    assert again.content == first.content and calls == ["en", "fr"]
    assert french.json()["reasons"] != first.json()["reasons"]
    missing = unscored_siren(served[1])
    assert [client.get(f"/api/v1/score/{missing}").status_code for _ in range(2)] == [404, 404]


def test_bounded_cache_keeps_the_most_recently_used_entries():
    cache = BoundedCache(2)
    cache.update({"a": 1, "b": 2})
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.update({"c": 3})
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
