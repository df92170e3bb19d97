"""`ose bench NAME [options]`: the benchmarks of ose_assets.benchmarks (they print figures)."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "features": "the feature build on synthetic signals",
    "scoring": "scoring and exact explanations on a synthetic feature table",
    "api": "the REST API under load (needs wrk)",
    "pages": "the sales pages, one user, at 1,000,000 companies",
    "scale": "generate N companies, full refresh then nightly rescoring, per-step time and memory; "
    "or land an N-row SIRENE stock",
}


def bench(args: argparse.Namespace) -> None:
    importlib.import_module(f"ose_assets.benchmarks.{args.name}").main(args.options)


def register(add_command) -> None:
    listing = "; ".join(f"{name}: {what}" for name, what in BENCHMARKS.items())
    sub = add_command("bench", bench, f"run a benchmark: {listing}")
    sub.add_argument("name", choices=sorted(BENCHMARKS))
    sub.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options (NAME --help)")
