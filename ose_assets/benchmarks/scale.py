"""Benchmark: OSE at scale on one machine.

    ose bench scale --companies 1000000 [--data-dir /tmp/ose-scale-1000000]
    ose bench scale --sirene-rows 28000000 [--data-dir /tmp/ose-scale-sirene]

Companies mode: `ose generate --companies N` (the demo generator, real file formats), then the full
refresh job (ose_full_refresh: ingestion, features, training set, retraining, scoring, publishing) and
the nightly rescoring job (ose_rescoring, same inbox: no retraining), each in its own process. Prints
one table: per Dagster step the wall time, CPU time (every thread of the process) and peak resident
memory (VmHWM, reset at each step start), plus per-job totals, then the landing rate of each inbox file.

SIRENE mode: writes only a StockUniteLegale CSV of that many rows (valid SIRENs, SIRENE's 35 columns,
written by DuckDB: about 0.13 GB per million rows), then times its landing into raw.sirene_unite_legale
and the rebuild of normalized.companies, with the warehouse's DuckDB settings (OSE_DUCKDB_MEMORY_LIMIT,
OSE_DUCKDB_THREADS; spills go to the warehouse's .tmp directory under the data root). A file over
OSE_MAX_FILE_SIZE is rejected (the run is then marked FAILED with the reason).

Under `flock /tmp/ose-heavy.lock` on a shared machine, and quote `uptime` with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from ose_assets.demo.sirene import SIRENE_COLUMNS  # StockUniteLegale's columns, in order

MARKER = ".ose-scale-benchmark"
STEP_EVENTS = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE")


# ---- measuring one process ------------------------------------------------------------------------
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes() -> int:
    """VmHWM of this process: the peak resident memory since start or the last reset_peak()."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> None:
    """Restart VmHWM from the current resident memory (Linux), so each step gets its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class StepMeter(logging.Handler):
    """Wall, CPU and peak memory of each Dagster step, from the step events of an in-process run."""

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[str, tuple[float, float]] = {}
        self.steps: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR

        event = (getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}).get("dagster_event")
        if event is None or event.event_type_value not in STEP_EVENTS:
            return
        if event.event_type_value == "STEP_START":
            reset_peak()
            self.started[event.step_key] = (time.perf_counter(), cpu_seconds())
            return
        wall_start, cpu_start = self.started.pop(event.step_key)
        step = {
            "step": event.step_key,
            "wall": time.perf_counter() - wall_start,
            "cpu": cpu_seconds() - cpu_start,
            "peak": peak_rss_bytes(),
            "ok": event.event_type_value == "STEP_SUCCESS",
        }
        self.steps.append(step)
        print(
            f"  {step['step']}: {step['wall']:.1f} s, peak {_gib(step['peak'])} GiB",
            file=sys.stderr,
            flush=True,
        )


def run_job(job: str, as_of: str) -> dict:
    """One Dagster job in this process (OSE_DATA_DIR and DAGSTER_HOME already set): its step figures."""
    import dagster as dg

    from ose_assets.definitions import defs
    from ose_assets.warehouse import AS_OF_TAG

    meter = StepMeter()
    logging.getLogger("ose.progress").addHandler(meter)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            tags={AS_OF_TAG: as_of},
            run_config={"loggers": {"ose_progress": {}}},
            raise_on_error=False,
        )
    return {
        "name": job,
        "wall": time.perf_counter() - start,
        "cpu": cpu_seconds() - cpu_start,
        # Each step start resets the process peak: the job's peak is the largest step peak.
        "peak": max([peak_rss_bytes(), *(step["peak"] for step in meter.steps)]),
        "ok": result.success,
        "steps": meter.steps,
    }


def run_generate(data_dir: Path, companies: int) -> dict:
    from ose_assets.demo.generate import generate_demo_data

    start, cpu_start = time.perf_counter(), cpu_seconds()
    generate_demo_data(data_dir, companies=companies, progress=None)
    return {
        "name": "generate",
        "wall": time.perf_counter() - start,
        "cpu": cpu_seconds() - cpu_start,
        "peak": peak_rss_bytes(),
        "ok": True,
        "steps": [],
    }


def in_child(phase: str, data_dir: Path, args: list[str]) -> dict:
    """Run one phase in a fresh process (its own peak memory); its figures come back as JSON."""
    command = [
        sys.executable,
        "-m",
        "ose_assets.benchmarks.scale",
        "--phase",
        phase,
        "--data-dir",
        str(data_dir),
    ]
    done = subprocess.run([*command, *args], stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"benchmark phase {phase} failed (exit {done.returncode}); see its output above")
    return json.loads(lines[-1])


# ---- SIRENE stock --------------------------------------------------------------------------------
def _luhn_siren(number: str) -> str:
    """SQL: the 9-digit SIREN whose first 8 digits are the text `number` (Luhn check digit appended)."""
    terms = []
    for position in range(1, 9):
        digit = f"(ascii(substr({number}, {position}, 1)) - 48)"
        terms.append(f"(({digit} * 2) // 10 + ({digit} * 2) % 10)" if position % 2 == 0 else digit)
    return f"{number} || ((10 - ({' + '.join(terms)}) % 10) % 10)::varchar"


def write_sirene_stock(path: Path, rows: int) -> None:
    """A StockUniteLegale CSV of `rows` legal units (two thirds ceased, like the real stock)."""
    import duckdb

    values = {name: "null" for name in SIRENE_COLUMNS}
    values |= {
        "siren": _luhn_siren("lpad((10000000 + i)::varchar, 8, '0')"),
        "statutDiffusionUniteLegale": "'O'",
        "dateCreationUniteLegale": "strftime(date '1950-01-01' + (i * 7919 % 27000)::int, '%Y-%m-%d')",
        "trancheEffectifsUniteLegale": "['NN', '00', '01', '02', '03', '11', '12', '21'][i % 8 + 1]",
        "dateDernierTraitementUniteLegale": "'2024-11-05T03:23:41'",
        "nombrePeriodesUniteLegale": "'2'",
        "categorieEntreprise": "['PME', 'PME', 'ETI', 'GE', null][i % 5 + 1]",
        "dateDebut": "strftime(date '2000-01-01' + (i * 104729 % 9000)::int, '%Y-%m-%d')",
        "etatAdministratifUniteLegale": "case when i % 3 = 0 then 'A' else 'C' end",
        "denominationUniteLegale": "'SOCIETE ' || i",
        "categorieJuridiqueUniteLegale": "['5710', '5499', '1000', '5720', '6540'][i % 5 + 1]",
        "activitePrincipaleUniteLegale": "['68.10Z', '49.41B', '62.01Z', '47.11F', '70.22Z'][i % 5 + 1]",
        "nomenclatureActivitePrincipaleUniteLegale": "'NAFRev2'",
        "nicSiegeUniteLegale": "'00017'",
        "caractereEmployeurUniteLegale": "case when i % 4 = 0 then 'O' else 'N' end",
    }
    select = ", ".join(f'{expression} as "{name}"' for name, expression in values.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(
            f"copy (select {select} from range({int(rows)}) t(i)) to '{path}' (header, delimiter ',')"
        )


def run_sirene(data_dir: Path, rows: int) -> dict:
    """Write the stock, then land it and rebuild normalized.companies in a fresh warehouse."""
    import duckdb

    from ose_assets.ingestion.companies import build_companies
    from ose_assets.ingestion.landing import land_file
    from ose_assets.settings import OSESettings

    settings = OSESettings()
    settings.ensure_dirs()
    path = settings.inbox_dir / "companies" / "StockUniteLegale_utf8.csv"
    steps = []

    def timed(name: str, fn) -> None:
        reset_peak()
        start, cpu_start = time.perf_counter(), cpu_seconds()
        fn()
        steps.append(
            {
                "step": name,
                "wall": time.perf_counter() - start,
                "cpu": cpu_seconds() - cpu_start,
                "peak": peak_rss_bytes(),
                "ok": True,
            }
        )

    if not path.exists() or path.with_suffix(".rows").read_text() != str(rows):
        timed("write StockUniteLegale (DuckDB COPY)", lambda: write_sirene_stock(path, rows))
        path.with_suffix(".rows").write_text(str(rows))
    settings.warehouse_path.unlink(missing_ok=True)
    con = duckdb.connect(str(settings.warehouse_path), config=settings.duckdb_config())
    results = []
    timed("land StockUniteLegale", lambda: results.append(land_file(con, path, "companies", dt.date.today())))
    timed("normalized companies", lambda: build_companies(con, settings.reference_dir))
    con.close()
    result = results[0]
    return {
        "name": f"SIRENE stock, {rows:,} rows ({path.stat().st_size / 1e9:.1f} GB)",
        "wall": sum(s["wall"] for s in steps[-2:]),
        "cpu": sum(s["cpu"] for s in steps[-2:]),
        "peak": max(s["peak"] for s in steps[-2:]),
        "ok": result.status == "loaded"
        and result.records_read
        == result.records_loaded + result.records_quarantined + result.duplicates_dropped,
        "steps": steps,
        "landing": {
            "status": result.status,
            "reason_detail": result.reason_detail,  # why it was rejected, e.g. over OSE_MAX_FILE_SIZE
            "records_read": result.records_read,
            "records_loaded": result.records_loaded,
            "records_quarantined": result.records_quarantined,
            "duplicates_dropped": result.duplicates_dropped,
        },
    }


def prepare_data_root(data_dir: Path) -> None:
    """A data root this benchmark owns (marked at creation): everything but the inbox is removed, so
    each run lands, trains and scores from scratch; an existing root without the mark is refused."""
    import shutil

    marker = data_dir / MARKER
    if data_dir.exists() and any(data_dir.iterdir()) and not marker.exists():
        raise SystemExit(
            f"{data_dir} exists and was not created by this benchmark: choose another --data-dir"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.touch()
    for child in data_dir.iterdir():
        if child.name not in ("inbox", "truth", MARKER):
            shutil.rmtree(child) if child.is_dir() else child.unlink()


# ---- negative downsampling -----------------------------------------------------------------------
def compare_negative_shares(data_dir: Path, shares: list[float]) -> None:
    """Fit the model on an existing data root's training set once per share; metrics on the same test rows."""
    import dataclasses

    import duckdb

    from ose_assets.features.catalog import categorical_feature_names, model_feature_names
    from ose_assets.model import evaluate as ev
    from ose_assets.model.train import fit_streamed
    from ose_assets.model.training_rows import TrainingRows
    from ose_assets.settings import OSESettings, model_config

    config = model_config()
    features, categorical = model_feature_names(), categorical_feature_names()
    bins = int(config["training"]["ece_bins"])
    with duckdb.connect(str(OSESettings(data_dir=data_dir).warehouse_path), read_only=True) as con:
        rows = TrainingRows.from_config(con, config["training"])
        test = rows.load("test", ["siren", "snapshot_date", "label", *features], categorical)
        print(
            f"{'share':>6} {'train rows':>11} {'early rows':>10} {'fit s':>7} {'cpu s':>7} {'peak GiB':>8} "
            f"{'trees':>5} {'test AUC':>8} {'ECE':>7} {'top-decile lift':>15} {'top10 precision':>15}"
        )
        for share in shares:
            reset_peak()
            start, cpu_start = time.perf_counter(), cpu_seconds()
            trained = fit_streamed(
                dataclasses.replace(rows, negative_share=share),
                features,
                categorical,
                config["xgboost"],
                config["training"],
            )
            wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            m = ev.classification_metrics(ev.score_frame(trained.served, test), bins)
            print(
                f"{share:>6} {trained.rows['train_kept']:>11,} {trained.rows['early_stopping_kept']:>10,} "
                f"{wall:>7.1f} {cpu:>7.1f} "
                f"{_gib(peak_rss_bytes()):>8} {trained.best_iteration + 1:>5} {m['roc_auc']:>8.4f} "
                f"{m['ece']:>7.4f} {m['top_decile_lift']:>15.3f} {m['top10_precision']:>15.3f}",
                flush=True,
            )
        print(f"test rows: {test.height:,} ({int(test['label'].sum()):,} converted)")


# ---- report --------------------------------------------------------------------------------------
def _gib(value: int) -> str:
    return f"{value / 2**30:.2f}"


def print_table(phases: list[dict]) -> None:
    header = f"{'step':<58} {'wall s':>8} {'cpu s':>8} {'cpu/wall':>8} {'peak RSS GiB':>12}"
    print(header)
    print("-" * len(header))
    for phase in phases:
        for step in phase["steps"]:
            ratio = step["cpu"] / step["wall"] if step["wall"] else 0.0
            flag = "" if step["ok"] else "  FAILED"
            print(
                f"  {step['step'][:56]:<56} {step['wall']:>8.1f} {step['cpu']:>8.1f} {ratio:>8.2f}"
                f" {_gib(step['peak']):>12}{flag}"
            )
        ratio = phase["cpu"] / phase["wall"] if phase["wall"] else 0.0
        flag = "" if phase["ok"] else "  FAILED"
        print(
            f"{'TOTAL ' + phase['name']:<58} {phase['wall']:>8.1f} {phase['cpu']:>8.1f} {ratio:>8.2f}"
            f" {_gib(phase['peak']):>12}{flag}"
        )
        print()


def landing_rates(data_dir: Path) -> None:
    """Records per second of each landed file, from its manifest row (landing_seconds)."""
    import duckdb

    from ose_assets.settings import OSESettings

    with duckdb.connect(str(OSESettings(data_dir=data_dir).warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select file_path, records_read, landing_seconds from raw.manifest order by ingested_at"
        ).fetchall()
    print("landing (raw_inbox), per file: records, seconds (hash, checks and writes), records/s")
    for file_path, records, seconds in rows:
        rate = f"{records / seconds:>12,.0f}" if seconds else f"{'':>12}"
        print(f"  {Path(file_path).name:<40} {records:>12,} {seconds or 0:>8.1f} {rate}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--companies", type=int, help="generate this many companies, run both jobs")
    mode.add_argument("--sirene-rows", type=int, help="write and land a StockUniteLegale of this many rows")
    mode.add_argument(
        "--negative-shares",
        help="comma-separated shares (e.g. 1,0.5,0.25): refit on --data-dir's training set with each "
        "negative downsampling share, metrics on the same test rows",
    )
    parser.add_argument("--data-dir", type=Path, help="data root (default /tmp/ose-scale-<N>)")
    parser.add_argument("--as-of", default=dt.date.today().isoformat())
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # internal: one phase in a child process
    args = parser.parse_args(argv)
    if args.negative_shares:
        if not args.data_dir:
            parser.error("--negative-shares needs the --data-dir of a run (its training set)")
        print(f"load: {os.getloadavg()}")
        compare_negative_shares(args.data_dir.resolve(), [float(x) for x in args.negative_shares.split(",")])
        print(f"load after: {os.getloadavg()}")
        return
    size = args.companies or args.sirene_rows
    data_dir = (
        args.data_dir or Path(f"/tmp/ose-scale-{'sirene-' if args.sirene_rows else ''}{size}")
    ).resolve()
    os.environ["OSE_DATA_DIR"] = str(data_dir)
    if args.phase:
        from ose_assets.cli.common import settings_for

        settings_for(argparse.Namespace(data_dir=data_dir))  # DAGSTER_HOME of this data root
        phases = {
            "generate": lambda: run_generate(data_dir, args.companies),
            "sirene": lambda: run_sirene(data_dir, args.sirene_rows),
        }
        figures = phases[args.phase]() if args.phase in phases else run_job(args.phase, args.as_of)
        print(json.dumps(figures))
        return
    prepare_data_root(data_dir)
    print(f"OSE scale benchmark, data root {data_dir}; load: {os.getloadavg()}", flush=True)
    size_args = ["--as-of", args.as_of]
    if args.sirene_rows:
        phases = [in_child("sirene", data_dir, ["--sirene-rows", str(args.sirene_rows), *size_args])]
        print(json.dumps(phases[0]["landing"]))
    else:
        size_args += ["--companies", str(args.companies)]
        inbox = data_dir / "inbox"
        phases = (
            [] if inbox.is_dir() and any(inbox.rglob("*.*")) else [in_child("generate", data_dir, size_args)]
        )
        phases += [in_child(job, data_dir, size_args) for job in ("ose_full_refresh", "ose_rescoring")]
    print()
    print_table(phases)
    if args.companies:
        landing_rates(data_dir)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
