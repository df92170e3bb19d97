"""Load benchmark of the API over a 1,000,000-company synthetic serving copy (not collected by pytest).

    ose bench api --companies 1000000 --data-dir /tmp/ose_api_bench --users 50 --duration 30

Builds the serving copy once (reused on later runs unless --rebuild), like the pipeline's publish: exact
reasons and a stored response for every company by default, or for the top --exact-top-n only (the others
are then explained on request). Measures the in-process cost of one lookup, starts uvicorn (--workers
processes, uvloop + httptools, no access log) on a free loopback port, measures requests one at a time over
HTTP (no concurrency: the CPU cost of a request, without queueing), then loads it with --users concurrent
clients, one workload at a time, and prints median, p99 and throughput. The load tool is wrk (C, a small
share of a core: `apt-get install wrk`) with a Lua script drawing request paths at random from a file, each
client waiting 0 to --think-ms ms between requests (0: back to back); without wrk, locust (this file is also
its locustfile) with the same think time. Workloads: GET /api/v1/score/{siren} over every scored SIREN
(almost never asked twice: no cache helps), over the SIRENs explained on request when --exact-top-n caps the
stored ones, then GET /api/v1/top-opportunities (random limit and segment).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from locust import FastHttpUser, task

from ose_assets.benchmarks.http import api_server, sequential_latency, summary

PATHS_FILE_ENV = "OSE_BENCH_PATHS_FILE"
THINK_MS_ENV = "OSE_BENCH_THINK_MS"
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


def top_path() -> str:
    return str(httpx.URL("/api/v1/top-opportunities", params=top_params()))


# wrk: each request a random path of the file; `delay` is the think time before the next request.
WRK_SCRIPT = f"""
local paths = {{}}
for line in io.lines(os.getenv("{PATHS_FILE_ENV}")) do paths[#paths + 1] = line end
local think = tonumber(os.getenv("{THINK_MS_ENV}"))
function setup(thread) thread:set("seed", math.random(1, 1e9)) end
function init() math.randomseed(seed) end
function request() return wrk.format("GET", paths[math.random(#paths)]) end
if think > 0 then function delay() return math.random(0, think) end end
"""


class ApiUser(FastHttpUser):
    """One locust client: a random path of the file, then the think time."""

    def wait_time(self) -> float:
        return random.uniform(0, int(os.environ[THINK_MS_ENV]) / 1000)

    def on_start(self) -> None:
        self.paths = Path(os.environ[PATHS_FILE_ENV]).read_text().split()

    @task
    def get(self) -> None:
        path = random.choice(self.paths)
        self.client.get(path, name="/api/v1/score/{siren}" if "/score/" in path else path.split("?")[0])


def in_process_latency(serving_path: Path, sirens: list[str], rounds: int = 500) -> dict[str, dict]:
    """One score lookup without HTTP, on distinct SIRENs (never cached): the stored response, and the
    general path (three tables read, exact SHAP when not stored, payload assembled)."""
    from ose_assets.api.queries import score_payloads
    from ose_assets.api.reader import ServingStore

    version = ServingStore(serving_path).current()
    paths = {
        "stored response": lambda siren: version.stored_response(siren, "fr"),
        "assembled payload": lambda siren: score_payloads(version, [siren], "fr"),
    }
    figures = {}
    for name, lookup in paths.items():
        timings = []
        for siren in random.sample(sirens, rounds):
            start = time.perf_counter()
            lookup(siren)
            timings.append((time.perf_counter() - start) * 1000)
        figures[name] = summary(timings)
    return figures


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, users: int, duration: int, think_ms: int, paths_file: Path, out: Path) -> dict:
    script = out / "paths.lua"
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{users}", f"-d{duration}s", "--latency", "-s", str(script), url]
    env = os.environ | {PATHS_FILE_ENV: str(paths_file), THINK_MS_ENV: str(think_ms)}
    text = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
    latency = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)$", text, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "failures": int(errors.group(1) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
        "median_ms": round(latency["50"], 1),
        "p99_ms": round(latency["99"], 1),
        "req_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))),
    }


def run_locust(url: str, users: int, duration: int, think_ms: int, paths_file: Path, out: Path) -> dict:
    prefix = out / paths_file.stem
    command = [
        sys.executable, "-m", "locust", "-f", __file__, "--headless", "--host", url, "-u", str(users),
        "-r", str(users), "-t", f"{duration}s", "--csv", str(prefix), "--only-summary",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    env = os.environ | {PATHS_FILE_ENV: str(paths_file), THINK_MS_ENV: str(think_ms)}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "median_ms": float(row["50%"]),
        "p99_ms": float(row["99%"]),
        "req_per_s": round(float(row["Requests/s"])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "ose_api_bench"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--exact-top-n",
        type=int,
        default=None,
        help="store exact reasons for the top N only (default: every company, as the pipeline does)",
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30, help="seconds per endpoint")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--think-ms", type=int, default=100, help="each client waits 0 to this many ms")
    parser.add_argument(
        "--tool", choices=("wrk", "locust"), default="wrk" if shutil.which("wrk") else "locust"
    )
    args = parser.parse_args(argv)

    import duckdb

    from ose_assets.benchmarks.synthetic_serving import build_serving_copy
    from ose_assets.settings import OSESettings

    settings = OSESettings(data_dir=Path(args.data_dir))
    if args.rebuild or not settings.serving_path.exists():
        start = time.perf_counter()
        build_serving_copy(settings.serving_path, companies=args.companies, exact_top_n=args.exact_top_n)
        print(f"built {args.companies:,}-company serving copy in {time.perf_counter() - start:.0f} s")
    out = Path(args.data_dir) / "load"
    out.mkdir(parents=True, exist_ok=True)
    # Every scored SIREN, and those explained on request (approximate reasons stored, when capped).
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        every = [row[0] for row in con.execute("select siren from company_scores").fetchall()]
        on_request = [
            row[0]
            for row in con.execute(
                "select siren from company_scores where explanation_method <> 'exact'"
            ).fetchall()
        ]
    print(f"{len(every):,} companies, {len(every) - len(on_request):,} with a stored response")
    for name, sirens in (("any SIREN", every), ("explained on request", on_request)):
        if sirens:
            print(f"in-process score lookup ({name}): {in_process_latency(settings.serving_path, sirens)}")

    with api_server(settings.data_dir, args.workers) as (url, _):
        # Distinct SIRENs, none requested before: every lookup is a cache miss.
        fresh = random.sample(every, SEQUENTIAL_REQUESTS)
        fresh_on_request = random.sample(on_request, min(SEQUENTIAL_REQUESTS, len(on_request)))
        sequential = {
            "GET /api/v1/score/{siren} (any SIREN, first lookup)": fresh,
            "GET /api/v1/score/{siren} (explained on request, first lookup)": fresh_on_request,
        }
        sequential = {
            name: [(f"/api/v1/score/{s}", {}) for s in sirens] for name, sirens in sequential.items()
        }
        sequential["GET /api/v1/top-opportunities"] = [
            ("/api/v1/top-opportunities", top_params()) for _ in range(SEQUENTIAL_REQUESTS)
        ]
        for endpoint, paths in sequential.items():
            if paths:
                print(f"{endpoint}: sequential, 1 client: {sequential_latency(url, paths)}")
        # The load starts on SIRENs the sequential pass did not touch.
        touched = set(fresh) | set(fresh_on_request)
        workloads = {
            "score, any SIREN": [f"/api/v1/score/{s}" for s in every if s not in touched],
            "score, explained on request": [f"/api/v1/score/{s}" for s in on_request if s not in touched],
            "top-opportunities": [top_path() for _ in range(1_000)],
        }
        run = run_wrk if args.tool == "wrk" else run_locust
        for position, (name, paths) in enumerate(workloads.items()):
            if not paths:
                continue
            paths_file = out / f"paths_{position}.txt"
            paths_file.write_text("\n".join(paths))
            figures = run(url, args.users, args.duration, args.think_ms, paths_file, out)
            print(
                f"{name}: {args.tool}, {args.users} clients, think 0-{args.think_ms} ms, "
                f"{args.workers} workers, load average {os.getloadavg()[0]:.1f}: {figures}"
            )


if __name__ == "__main__":
    main()
