"""`ose`: generate demo data, run the pipeline, open the UIs, serve the API, explain a scoring run."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from ose_assets.settings import OSESettings, today_paris


def _settings(args: argparse.Namespace) -> OSESettings:
    """Settings for the chosen data root; exported so Dagster code loaded later sees the same root."""
    if getattr(args, "data_dir", None):
        os.environ["OSE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    settings = OSESettings()
    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    from ose_assets.automation.instance import prepare_dagster_home

    prepare_dagster_home(settings)
    return settings


def generate(args: argparse.Namespace) -> None:
    from ose_assets.demo.generate import generate_demo_data

    settings = _settings(args)
    counts = generate_demo_data(settings.data_dir, companies=args.companies, seed=args.seed, progress=print)
    for name, count in counts.items():
        print(f"  {name}: {count:,}")
    print(f"Demo data written to {settings.inbox_dir}")


def run(args: argparse.Namespace) -> bool:
    """Materialize every asset (the full refresh job) in the persistent Dagster instance."""
    settings = _settings(args)
    import dagster as dg

    from ose_assets.definitions import defs
    from ose_assets.warehouse import AS_OF_TAG

    as_of = args.as_of or today_paris().isoformat()
    dt.date.fromisoformat(as_of)  # a clear error for a malformed date, before any work
    print(f"OSE run as of {as_of} over {settings.inbox_dir}")
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("ose_full_refresh").execute_in_process(
            instance=instance,
            tags={AS_OF_TAG: as_of},
            # One line per table on the console; the full event log stays in the Dagster UI.
            run_config={"loggers": {"ose_progress": {}}},
            raise_on_error=False,
        )
    failed = [event.step_key for event in result.all_events if event.is_step_failure]
    if not result.success:
        print(f"Run {result.run_id} failed at: {', '.join(failed) or 'see the Dagster UI'}", file=sys.stderr)
    return result.success


def demo(args: argparse.Namespace) -> None:
    settings = _settings(args)
    if not any(path.is_file() for path in settings.inbox_dir.rglob("*")):
        generate(args)
    if not run(args):
        sys.exit(1)
    print_top_opportunities(settings)
    print(
        "\nWhere to look next:\n"
        f"  Dagster UI : ose ui --data-dir {settings.data_dir}   (then http://127.0.0.1:3000)\n"
        f"  MLflow UI  : mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}"
        "   (then http://127.0.0.1:5000)\n"
        f"  Warehouse  : duckdb {settings.warehouse_path}\n"
        f"  Serving    : duckdb -readonly {settings.serving_path}\n"
        f"  REST API   : ose api --data-dir {settings.data_dir}   (then http://127.0.0.1:8000/docs)"
    )


def print_top_opportunities(settings: OSESettings) -> None:
    import duckdb

    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        top = con.execute(
            """
            select segment_rank as "#", siren, name, score, band, region_code as region,
                   naf_section as naf, top_reasons_fr as pourquoi
            from top_opportunities where segment = 'overall' order by segment_rank
            """
        ).pl()
    import polars as pl

    with pl.Config(tbl_rows=10, tbl_width_chars=200, fmt_str_lengths=90, tbl_hide_dataframe_shape=True):
        print("\nTop 10 opportunities")
        print(top)


def ui(args: argparse.Namespace) -> None:
    settings = _settings(args)
    # The dagster executable installed beside this interpreter, whether or not the venv is activated.
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-m", "ose_assets.definitions", "-h", args.host, "-p", str(args.port)]
    print(f"DAGSTER_HOME={settings.dagster_home}\n$ {' '.join(command)}")
    sys.exit(subprocess.call(command))


def api(args: argparse.Namespace) -> None:
    settings = _settings(args)
    from ose_assets.api.server import serve

    serve(host=args.host, port=args.port, settings=settings, workers=args.workers)


def explain_run(args: argparse.Namespace) -> None:
    settings = _settings(args)
    from ose_assets.monitoring.lineage import explain_run as explain

    print(explain(settings, dt.date.fromisoformat(args.as_of) if args.as_of else None))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ose", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--data-dir", help="data root (default: $OSE_DATA_DIR or ./data)")
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, help_text in (
        ("generate", generate, "write a realistic demo dataset into the inbox"),
        ("demo", demo, "generate (if the inbox is empty), run everything, print the top 10"),
    ):
        sub = command(name, handler, help_text)
        sub.add_argument("--companies", type=int, default=20_000)
        sub.add_argument("--seed", type=int, default=42)
    command("run", run, "materialize every asset over the inbox").add_argument(
        "--as-of", help="score as of this date (YYYY-MM-DD; default today)"
    )
    for name, handler, help_text, port in (
        ("ui", ui, "start the Dagster UI and daemon on this project's instance", 3000),
        ("api", api, "serve the REST API over the serving copy", 8000),
    ):
        sub = command(name, handler, help_text)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=port)
        if name == "api":
            # One process per core: a worker answers a lookup on one core (≈1,000 req/s each).
            sub.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    command("explain-run", explain_run, "print the lineage of a scoring run").add_argument(
        "--as-of", help="the scoring run of this as-of date (default: the latest)"
    )

    args = parser.parse_args(argv)
    if args.command == "demo":
        args.as_of = None
    outcome = args.handler(args)
    if args.command == "run" and not outcome:
        sys.exit(1)


if __name__ == "__main__":
    main()
