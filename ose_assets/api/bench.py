"""Load benchmark of the API over a 1,000,000-company synthetic serving copy (not collected by pytest).

    python -m ose_assets.api.bench --companies 1000000 --data-dir /tmp/ose_api_bench --users 50 --duration 30

Builds the serving copy once (reused on later runs unless --rebuild), measures the in-process cost of
one lookup, starts uvicorn (--workers processes) on a free loopback port, measures requests one at a
time over HTTP (no concurrency: the CPU cost of a request, without queueing), then runs locust headless
against GET /api/v1/score/{siren} (random scored SIRENs) and GET /api/v1/top-opportunities (random
limit and segment), one endpoint at a time, and prints median, p99 and throughput. SIRENs whose exact
reasons are stored and SIRENs explained on demand are measured apart. This file is also the locustfile
(the user classes below).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from locust import FastHttpUser, between, tag, task

SIRENS_FILE_ENV = "OSE_BENCH_SIRENS_FILE"
SEQUENTIAL_REQUESTS = 300
REGION_CODES = ("11", "53", "84", "93")
NAF_SECTIONS = ("C", "F", "G", "J", "M")


TOP_QUERIES = (
    {"limit": 10},
    {"limit": 10, "region": REGION_CODES},
    {"limit": 10, "naf_section": NAF_SECTIONS},
    {"limit": 50},
    {"limit": 20, "band": ("A",)},
)


def top_params() -> dict:
    """One of the benchmark's top-opportunities queries, filter values drawn at random."""
    query = random.choice(TOP_QUERIES)
    return {k: random.choice(v) if isinstance(v, tuple) else v for k, v in query.items()}


class ApiUser(FastHttpUser):
    """One client: a request, then a short think time (a CRM screen, not a tight loop)."""

    wait_time = between(0.0, 0.1)

    def on_start(self) -> None:
        self.sirens = Path(os.environ[SIRENS_FILE_ENV]).read_text().split()

    @tag("score")
    @task
    def score(self) -> None:
        self.client.get(f"/api/v1/score/{random.choice(self.sirens)}", name="/api/v1/score/{siren}")

    @tag("top")
    @task
    def top(self) -> None:
        self.client.get("/api/v1/top-opportunities", params=top_params(), name="/api/v1/top-opportunities")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def summary(timings: list[float]) -> dict[str, float]:
    """Median and p99 of timings in ms, rounded."""
    timings = sorted(timings)
    return {
        "median_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[max(0, int(0.99 * len(timings)) - 1)], 2),
    }


def in_process_latency(serving_path: Path, sirens: list[str], rounds: int = 500) -> dict[str, float]:
    """One score lookup without HTTP: SQL, exact SHAP when needed (never cached: distinct SIRENs), payload."""
    from ose_assets.api.queries import score_payloads
    from ose_assets.api.serving import ServingStore

    version = ServingStore(serving_path).current()
    timings = []
    for siren in random.sample(sirens, rounds):
        start = time.perf_counter()
        score_payloads(version, [siren], "fr")
        timings.append((time.perf_counter() - start) * 1000)
    return summary(timings)


def sequential_latency(url: str, paths: list[tuple[str, dict]]) -> dict[str, float]:
    """Requests one after the other over one keep-alive connection: latency without queueing."""
    timings = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for path, params in paths:
            start = time.perf_counter()
            http.get(path, params=params).raise_for_status()
            timings.append((time.perf_counter() - start) * 1000)
    return summary(timings)


def run_locust(url: str, tag_name: str, users: int, duration: int, sirens_file: Path, out: Path) -> dict:
    prefix = out / f"{tag_name}_{sirens_file.stem}"
    command = [
        sys.executable, "-m", "locust", "-f", __file__, "--headless", "--host", url, "-u", str(users),
        "-r", str(users), "-t", f"{duration}s", "--tags", tag_name, "--csv", str(prefix), "--only-summary",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    subprocess.run(command, check=True, env=os.environ | {SIRENS_FILE_ENV: str(sirens_file)},
                   stdout=subprocess.DEVNULL)  # fmt: skip
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "median_ms": float(row["50%"]),
        "p99_ms": float(row["99%"]),
        "req_per_s": float(row["Requests/s"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "ose_api_bench"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30, help="seconds per endpoint")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args(argv)

    import duckdb

    from ose_assets.api.synthetic import build_serving_copy
    from ose_assets.settings import OSESettings

    settings = OSESettings(data_dir=Path(args.data_dir))
    if args.rebuild or not settings.serving_path.exists():
        start = time.perf_counter()
        build_serving_copy(settings.serving_path, companies=args.companies, exact_top_n=10_000)
        print(f"built {args.companies:,}-company serving copy in {time.perf_counter() - start:.0f} s")
    out = Path(args.data_dir) / "locust"
    out.mkdir(parents=True, exist_ok=True)
    # Two SIREN samples: any scored company (mostly explained on demand, the copy holding exact reasons for
    # the top 10,000 only) and companies whose exact reasons are stored.
    samples = {}
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        for name, condition in (("any", "true"), ("stored_exact", "explanation_method = 'exact'")):
            scored = f"select siren from company_scores where {condition}"
            query = f"select siren from ({scored}) using sample 20000"
            samples[name] = [row[0] for row in con.execute(query).fetchall()]
            (out / f"sirens_{name}.txt").write_text("\n".join(samples[name]))
    for name, sirens in samples.items():
        print(f"in-process score lookup ({name} SIREN): {in_process_latency(settings.serving_path, sirens)}")

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ose_assets.api.server:app_from_environment", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
         "--log-level", "warning"],
        env=os.environ | {"OSE_DATA_DIR": str(settings.data_dir)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.5)
        # Distinct SIRENs, none requested before: every on-demand one is a cache miss.
        fresh = random.sample(samples["any"], 2 * SEQUENTIAL_REQUESTS)
        sequential = {
            "GET /api/v1/score/{siren} (any SIREN, first lookup)": [
                (f"/api/v1/score/{siren}", {}) for siren in fresh[:SEQUENTIAL_REQUESTS]
            ],
            "GET /api/v1/score/{siren} (stored exact reasons)": [
                (f"/api/v1/score/{siren}", {})
                for siren in random.sample(samples["stored_exact"], SEQUENTIAL_REQUESTS)
            ],
            "GET /api/v1/top-opportunities": [
                ("/api/v1/top-opportunities", top_params()) for _ in range(SEQUENTIAL_REQUESTS)
            ],
        }
        for endpoint, paths in sequential.items():
            print(f"{endpoint}: sequential, 1 client: {sequential_latency(url, paths)}")
        # The load starts on SIRENs the sequential pass did not touch.
        (out / "sirens_any.txt").write_text("\n".join(set(samples["any"]) - set(fresh)))
        for tag_name, sample, endpoint in (
            ("score", "any", "GET /api/v1/score/{siren} (any SIREN)"),
            ("score", "stored_exact", "GET /api/v1/score/{siren} (stored exact reasons)"),
            ("top", "any", "GET /api/v1/top-opportunities"),
        ):
            figures = run_locust(url, tag_name, args.users, args.duration, out / f"sirens_{sample}.txt", out)
            print(f"{endpoint}: {args.users} users, {args.workers} workers: {figures}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
