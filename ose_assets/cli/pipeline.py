"""`ose generate`, `ose run`, `ose demo`: demo data and the full refresh over the inbox."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from ose_assets.cli import ranking
from ose_assets.cli.common import settings_for
from ose_assets.settings import today_paris


def generate(args: argparse.Namespace) -> None:
    from ose_assets.demo.generate import generate_demo_data

    settings = settings_for(args)
    counts = generate_demo_data(settings.data_dir, companies=args.companies, seed=args.seed, progress=print)
    for name, count in counts.items():
        print(f"  {name}: {count:,}")
    print(f"Demo data written to {settings.inbox_dir}")


def run(args: argparse.Namespace) -> bool:
    """The full refresh as of a date, in this process, one run at a time (waits for the run slot, or
    refuses with --no-wait); a date before the served one is a replay. Ends with the run's summary."""
    from ose_assets.automation.execution import execute, print_summary
    from ose_assets.automation.instance import RunSlotBusy
    from ose_assets.model.assets import RETRAIN_TAG

    settings = settings_for(args)
    as_of = getattr(args, "as_of", None) or today_paris().isoformat()
    try:
        as_of_date = dt.date.fromisoformat(as_of)  # a clear error for a malformed date, before any work
    except ValueError:
        sys.exit(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")
    print(f"OSE run as of {as_of} over {settings.inbox_dir}")
    tags = {RETRAIN_TAG: "true"} if getattr(args, "retrain", False) else {}
    try:
        summary = execute(settings, as_of_date, tags=tags, wait=not getattr(args, "no_wait", False))
    except RunSlotBusy as busy:
        print(busy, file=sys.stderr)
        return False
    print_summary(summary)
    return summary.success


def demo(args: argparse.Namespace) -> None:
    settings = settings_for(args)
    if not any(path.is_file() for path in settings.inbox_dir.rglob("*")):
        generate(args)
    args.as_of = None
    if not run(args):
        sys.exit(1)
    ranking.print_top_opportunities(settings)
    print(
        "\nWhere to look next:\n"
        f"  Dagster UI : ose ui --data-dir {settings.data_dir}   (then http://127.0.0.1:3000)\n"
        f"  MLflow UI  : mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}"
        "   (then http://127.0.0.1:5000)\n"
        f"  Warehouse  : duckdb {settings.warehouse_path}\n"
        f"  Serving    : duckdb -readonly {settings.serving_path}\n"
        f"  REST API   : ose api --data-dir {settings.data_dir}   (then http://127.0.0.1:8000/docs)"
    )


def register(add_command) -> None:
    for name, handler, help_text in (
        ("generate", generate, "write a realistic demo dataset into the inbox"),
        ("demo", demo, "generate (if the inbox is empty), run everything, print the top 10"),
    ):
        sub = add_command(name, handler, help_text)
        sub.add_argument("--companies", type=int, default=20_000)
        sub.add_argument("--seed", type=int, default=42)
    sub = add_command("run", run, "materialize every asset over the inbox")
    sub.add_argument(
        "--as-of",
        help="score as of this date (YYYY-MM-DD; default today); a date before the served one is a replay",
    )
    sub.add_argument(
        "--no-wait", action="store_true", help="refuse instead of waiting while another run is active"
    )
    sub.add_argument(
        "--retrain",
        action="store_true",
        help="train a new model version even if the training inputs are unchanged",
    )
