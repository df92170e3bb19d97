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
    """Materialize every asset (the full refresh job) in the persistent Dagster instance."""
    settings = settings_for(args)
    import dagster as dg

    from ose_assets.definitions import defs
    from ose_assets.model.assets import RETRAIN_TAG
    from ose_assets.warehouse import AS_OF_TAG

    as_of = getattr(args, "as_of", None) or today_paris().isoformat()
    dt.date.fromisoformat(as_of)  # a clear error for a malformed date, before any work
    print(f"OSE run as of {as_of} over {settings.inbox_dir}")
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("ose_full_refresh").execute_in_process(
            instance=instance,
            tags={AS_OF_TAG: as_of, **({RETRAIN_TAG: "true"} if getattr(args, "retrain", False) else {})},
            # One line per table on the console; the full event log stays in the Dagster UI.
            run_config={"loggers": {"ose_progress": {}}},
            raise_on_error=False,
        )
    failed = [event.step_key for event in result.all_events if event.is_step_failure]
    if not result.success:
        print(f"Run {result.run_id} failed at: {', '.join(failed) or 'see the Dagster UI'}", file=sys.stderr)
    return result.success


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
    sub.add_argument("--as-of", help="score as of this date (YYYY-MM-DD; default today)")
    sub.add_argument(
        "--retrain",
        action="store_true",
        help="train a new model version even if the training inputs are unchanged",
    )
