"""Latency of the sales pages over a 1,000,000-company synthetic serving copy, one user (not collected by
pytest).

    ose bench pages [--companies 1000000] [--data-dir /tmp/ose_pages_bench] [--requests 200] [--rebuild]

Builds the serving copy once (reused on later runs unless --rebuild) with
ose_assets.benchmarks.synthetic_serving, starts `ose api`'s app in uvicorn (one worker) on a free loopback
port, then requests each kind of page one after the other over one keep-alive connection (one user: the
cost of a page, without queueing) and prints the median and p99 per kind and over every page, with the
server's CPU time per request (which, unlike wall-clock latency, does not grow when other work shares the
cores). Filter values, pages, search words and SIRENs are drawn at random, so the filter choices are the
only thing cached between requests.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from ose_assets.benchmarks.http import api_server, cpu_seconds, sequential_timings, summary
from ose_assets.ingestion.labels import label_key

TARGET_P99_MS = 100.0


def workloads(con, requests: int) -> dict[str, list[tuple[str, dict]]]:
    """Request paths per kind of page, values drawn from the serving copy."""
    sirens = [row[0] for row in con.execute("select siren from company_scores using sample 5000").fetchall()]
    values = {
        column: [
            row[0]
            for row in con.execute(f"select distinct {column} from company_scores").fetchall()
            if row[0]
        ]
        for column in ("region_code", "departement_code", "naf_section", "band", "headcount_band")
    }
    # What a user types: a whole or partial word of a name, two words, in any case, accents or not.
    names = [
        row[0]
        for row in con.execute(
            "select name from company_scores where name is not null using sample 2000"
        ).fetchall()
    ]

    def searched() -> str:
        words = random.choice(names).split()  # any name: the synthetic copy's or a real run's
        word = random.choice(words)
        typed = random.choice([word, word[:4], " ".join(words[:2]), f"{words[0][:5]} {words[-1]}"])
        return random.choice([typed, typed.upper(), label_key(typed).replace("_", " ")])

    def filtered() -> dict:
        chosen = random.sample(
            [("region", "region_code"), ("departement", "departement_code"), ("naf_section", "naf_section"),
             ("band", "band"), ("size", "headcount_band")],
            random.randint(1, 2),
        )  # fmt: skip
        return {name: random.choice(values[column]) for name, column in chosen}

    draw = {
        "GET / (top 10)": lambda: ("/", {}),
        "GET / (deep page of 100)": lambda: ("/", {"limit": 100, "page": random.randint(2, 100)}),
        "GET / (1-2 filters)": lambda: ("/", filtered()),
        "GET / (1-2 filters, 100 rows, page 1-5)": lambda: (
            "/",
            filtered() | {"limit": 100, "page": random.randint(1, 5)},
        ),  # fmt: skip
        "GET / (name search)": lambda: ("/", {"q": searched()}),
        "GET /classement.csv (1-2 filters, 100 rows)": lambda: (
            "/classement.csv",
            filtered() | {"limit": 100},
        ),
        "GET /entreprise/{siren}": lambda: (f"/entreprise/{random.choice(sirens)}", {}),
        "GET /bilan": lambda: ("/bilan", {}),
    }
    return {name: [make() for _ in range(requests)] for name, make in draw.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "ose_pages_bench"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--requests", type=int, default=200, help="requests per kind of page")
    args = parser.parse_args(argv)

    import duckdb

    from ose_assets.benchmarks.synthetic_serving import build_serving_copy
    from ose_assets.settings import OSESettings

    settings = OSESettings(data_dir=Path(args.data_dir))
    if args.rebuild or not settings.serving_path.exists():
        start = time.perf_counter()
        # Exact reasons stored for every company, as the pipeline does by default.
        build_serving_copy(settings.serving_path, companies=args.companies, exact_top_n=None)
        print(f"built {args.companies:,}-company serving copy in {time.perf_counter() - start:.0f} s")
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        companies = con.execute("select count(*) from company_scores").fetchone()[0]
        paths = workloads(con, args.requests)
    print(f"{companies:,} companies; {args.requests} requests per page kind, one client, one worker")
    every = []
    with api_server(settings.data_dir, workers=1, env={"OSE_API_KEY": None}) as (url, server):
        sequential_timings(
            url, [("/", {})] * 5
        )  # the first requests open the file and read the filter choices
        for name, requests in paths.items():
            cpu = cpu_seconds(server.pid)
            timings = sequential_timings(url, requests)
            # The server's CPU per request does not depend on what else runs on the machine.
            cpu_ms = (cpu_seconds(server.pid) - cpu) * 1000 / len(requests)
            every += timings
            print(f"{name}: {summary(timings) | {'server_cpu_ms_per_request': round(cpu_ms, 2)}}")
    overall = summary(every)
    verdict = "under" if overall["p99_ms"] < TARGET_P99_MS else "OVER"
    print(
        f"every page: {overall} ({verdict} the {TARGET_P99_MS:.0f} ms p99 target); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
