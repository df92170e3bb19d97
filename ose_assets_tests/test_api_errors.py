"""Hostile and malformed requests against a real uvicorn server: always a 4xx in the one error shape, never
the input echoed back whole; unknown query parameters named; /docs and /redoc served without a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import polars as pl
import pytest

from ose_assets.benchmarks.synthetic_serving import build_serving_copy
from ose_assets.settings import OSESettings
from ose_assets_tests.test_api import live_server

SMALL_LIMIT = 4_096


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[OSESettings, pl.DataFrame]:
    settings = OSESettings(data_dir=tmp_path_factory.mktemp("api_errors"))
    return settings, build_serving_copy(settings.serving_path, companies=40, model_version="1")


@pytest.fixture(scope="module")
def client(served) -> Iterator[httpx.Client]:
    with live_server(served[0]) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def assert_error_shape(response: httpx.Response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) >= {"error", "message"} and "detail" not in body
    assert error is None or body["error"] == error, body
    return body


def post_raw(client: httpx.Client, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return client.post("/api/v1/score", content=content, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    "body",
    [
        b'{"sirens": NaN}',
        b'{"sirens": [Infinity]}',
        b'{"sirens": ["552100554", -Infinity]}',
        b'{"sirens": ["552100554"',
        b'{"sirens": ["\xff\xfe"]}',  # not UTF-8
        '{"sirens": ["552100554"]}'.encode("utf-16"),
        b'{"sirens": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than the parser's recursion
        b'{"sirens": ' + b"[" * 40 + b"]" * 40 + b"}",  # deeper than MAX_JSON_DEPTH
    ],
    ids=["nan", "infinity", "minus-infinity", "truncated", "latin1", "utf16", "deep-100000", "deep-40"],
)
def test_malformed_json_bodies_are_400_and_the_connection_keeps_working(client, served, body):
    response = post_raw(client, body)
    assert_error_shape(response, 400, "invalid_json")
    assert len(response.content) < 400
    # The same keep-alive connection answers the next request.
    siren = served[1]["siren"][0]
    assert client.get(f"/api/v1/score/{siren}").status_code == 200


def test_non_finite_numbers_inside_a_valid_schema_never_reach_the_validation_handler(client):
    """`{"sirens": [1e999]}` parses (as inf) in Python's json: the 422 must still be valid JSON."""
    body = assert_error_shape(post_raw(client, b'{"sirens": [1e999, 12]}'), 422, "invalid_request")
    assert body["details"][0]["loc"] == ["body", "sirens", 0]


def test_oversized_bodies_are_413_whether_declared_or_streamed(served, client):
    settings = served[0].model_copy(update={"api_max_body_bytes": SMALL_LIMIT})
    big = b'{"sirens": ["' + b"1" * (SMALL_LIMIT * 5) + b'"]}'
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        declared = post_raw(http, big)
        body = assert_error_shape(declared, 413, "body_too_large")
        assert "OSE_API_MAX_BODY_BYTES" in body["message"] and f"{SMALL_LIMIT:,}" in body["message"]

        def chunks():  # no Content-Length: chunked transfer encoding
            for start in range(0, len(big), 1_000):
                yield big[start : start + 1_000]

        streamed = http.post("/api/v1/score", content=chunks(), headers={"Content-Type": "application/json"})
        assert_error_shape(streamed, 413, "body_too_large")
        # Under the limit: parsed as usual.
        assert post_raw(http, b'{"sirens": ["123"]}').status_code == 422
    # The default limit (1 MB) refuses a 20 MB body without echoing it.
    response = post_raw(client, b'{"sirens": ["' + b"7" * 20_000_000 + b'"]}')
    assert_error_shape(response, 413, "body_too_large")
    assert len(response.content) < 400


@pytest.mark.parametrize(
    "body",
    [
        {"sirens": ["1" * 900_000]},  # one long SIREN
        {"sirens": ["2" * 900] * 1_000},  # many long SIRENs
        {"sirens": [{"nested": "x" * 500_000}]},  # the wrong type, long
        {"sirens": ["552100554"], "extra": "y" * 500_000},
        {"sirens": "z" * 900_000},
    ],
    ids=["long-siren", "many-long-sirens", "wrong-type", "extra-field", "string-not-list"],
)
def test_invalid_bodies_are_422_quoting_only_a_short_excerpt(client, body):
    response = client.post("/api/v1/score", json=body)
    assert response.status_code in (200, 404, 422)
    if response.status_code != 422:  # the extra field is ignored
        return
    assert_error_shape(response, 422)
    assert len(response.content) < 30_000, len(response.content)
    assert not re.search(r"(.)\1{200}", response.text), "a long run of the input was echoed"


def test_unknown_filter_values_are_quoted_as_an_excerpt(client):
    body = assert_error_shape(client.get("/api/v1/top-opportunities", params={"region": "9" * 5_000}), 422)
    assert body["error"] == "unknown_region" and "(5002 characters)" in body["message"]
    assert len(body["message"]) < 300


def test_every_error_status_has_the_documented_shape(served, client):
    siren = served[1]["siren"][0]
    assert_error_shape(client.get("/api/v1/nowhere"), 404, "not_found")
    assert_error_shape(client.get("/nowhere"), 404, "not_found")
    wrong_method = client.delete(f"/api/v1/score/{siren}")
    assert_error_shape(wrong_method, 405, "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]
    assert_error_shape(post_raw(client, b"{"), 400, "invalid_json")
    assert_error_shape(client.get("/api/v1/top-opportunities", params={"limit": 0}), 422, "invalid_request")
    settings = served[0].model_copy(update={"api_key": "k"})
    with live_server(settings) as url, httpx.Client(base_url=url) as http:
        assert_error_shape(http.get(f"/api/v1/score/{siren}"), 401, "unauthorized")
    empty = OSESettings(data_dir=served[0].data_dir / "empty")
    with live_server(empty) as url, httpx.Client(base_url=url) as http:
        assert_error_shape(http.get(f"/api/v1/score/{siren}"), 503, "serving_unavailable")


def test_siren_digits_ascii_after_documented_normalisation(client, served):
    siren = served[1]["siren"][0]
    full_width = siren.translate({ord("0") + d: 0xFF10 + d for d in range(10)})
    arabic_indic = siren.translate({ord("0") + d: 0x0660 + d for d in range(10)})
    accepted = [
        siren,
        f"{siren[:3]} {siren[3:6]} {siren[6:]}",
        f"{siren[:3]}.{siren[3:6]}.{siren[6:]}",
        f"{siren[:3]}\u00a0{siren[3:]}",  # no-break space
        full_width,
        f"{full_width[:3]}\u3000{full_width[3:]}",  # ideographic space
    ]
    for value in accepted:
        response = client.get(f"/api/v1/score/{value}")
        assert response.status_code == 200 and response.json()["siren"] == siren, value
    batch = client.post("/api/v1/score", json={"sirens": accepted})
    assert [r["siren"] for r in batch.json()["results"]] == [siren]
    for value in (arabic_indic, siren[:8] + "\u0669", siren[:8] + "\u00b9", siren[:8] + "x"):
        body = assert_error_shape(client.get(f"/api/v1/score/{value}"), 422, "invalid_siren")
        assert "only digits 0-9" in body["message"], value
        batch = assert_error_shape(
            client.post("/api/v1/score", json={"sirens": [value]}), 422, "invalid_siren"
        )
        assert batch["details"][0]["message"] == body["message"]


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/api/v1/top-opportunities", {"segment": "region:11"}, "segment"),
        ("/api/v1/top-opportunities", {"limit": 5, "regoin": "11", "sort": "x"}, "regoin"),
        ("/api/v1/score/{siren}", {"language": "en"}, "language"),
    ],
)
def test_unknown_query_parameters_are_422_naming_them(client, served, path, params, unknown):
    response = client.get(path.format(siren=served[1]["siren"][0]), params=params)
    body = assert_error_shape(response, 422, "unknown_parameter")
    assert repr(unknown) in body["message"] and "lang" in body["accepted_values"]
    for name in params:
        assert (repr(name) in body["message"]) == (name not in body["accepted_values"])


def test_unknown_query_parameter_on_the_batch_route(client, served):
    response = client.post("/api/v1/score", params={"lng": "en"}, json={"sirens": [served[1]["siren"][0]]})
    assert assert_error_shape(response, 422, "unknown_parameter")["accepted_values"] == ["lang"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_are_served_from_the_package_with_no_external_url(client, page):
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), html
    assert not re.search(r"https?://", html), "an absolute URL in the page"
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assets += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)  # Swagger UI's openapi.json
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        loaded = client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 100, asset


def test_ose_api_prints_a_startup_line_and_an_access_log(served):
    """`ose api` says where it listens and what it serves, then logs each request (uvicorn's access log)."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "ose_assets.cli", "api", "--data-dir", str(served[0].data_dir),
               "--port", str(port), "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/top-opportunities?segment=x", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "ose api did not start"
                time.sleep(0.2)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"OSE API on http://127.0.0.1:{port}" in output
    assert "as of 2026-11-23, model version 1 (xgboost), 40 companies" in output
    assert '"GET /api/v1/top-opportunities?segment=x HTTP/1.1" 422' in output
