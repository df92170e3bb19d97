"""Benchmark: features.company_features against bare DuckDB GROUP BYs over the same signals.

    /usr/bin/time -v python -m ose_assets.benchmarks.features --companies 1000000 --signals 20000000
    ose bench features --repeat 3 --compare /work/main/ose_assets/features/compute.py

Generates synthetic normalized tables in a temporary DuckDB file (5 years of history, 10% of signals
dated after the as-of date; signals stored in ingestion's order: event_date, siren, signal_id), then
times, in one run each, two bare GROUP BYs per company written to a table:

- narrow: recency and 3/6/12-month counts (the issue's wording);
- reference: recency, 3/6/12-month counts, distinct signal types and red-flag count, the query whose
  time ../shared/REFERENCE.md section 7 gives (~4 s on 2 cores at 1,000,000 / 20,000,000);

then build_company_features (--repeat times) and the UI profile. Prints wall and CPU seconds of each
(medians of the repeats), the ratios of the build to each bare GROUP BY, and the peak resident memory of
the generation and, apart, of the timed queries (on Linux the peak is reset in between, which
/usr/bin/time then reports too).

--compare PATH side by side: the build of another copy of features/compute.py (e.g. another checkout's)
is timed alternately with this one's on the same data, and the two tables are compared row for row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from ose_assets.features.catalog import signal_types
from ose_assets.features.compute import build_company_features
from ose_assets.features.profile import feature_profile

AS_OF = dt.date(2025, 6, 30)


def generate(con: duckdb.DuckDBPyConnection, companies: int, signals: int) -> None:
    """Synthetic normalized.* tables with the contract's columns (values uniform, not realistic)."""
    types = list(signal_types().items())
    type_list = "[" + ", ".join(f"'{name}'" for name, _ in types) + "]"
    family_list = "[" + ", ".join(f"'{spec['family']}'" for _, spec in types) + "]"
    polarity_list = "[" + ", ".join(str(spec["polarity"]) for _, spec in types) + "]"
    as_of = f"date '{AS_OF.isoformat()}'"
    con.execute("create schema if not exists normalized")
    con.execute("set preserve_insertion_order = false")  # lets every thread write its rows
    con.execute("create or replace macro rnd(i, k) as hash(i * 1000003 + k)")  # k-th random draw for row i
    con.execute(f"""
        create or replace table normalized.companies as
        select lpad(i::varchar, 9, '0') as siren, 'Company ' || i as name,
            '62.01Z' as naf_code, 'Programmation informatique' as naf_label,
            chr(65 + (rnd(i, 1) % 21)::int) as naf_section, 'Section' as naf_section_label,
            lpad((rnd(i, 2) % 99)::varchar, 2, '0') as naf_division,
            '62.0' as naf_group, '62.01' as naf_class,
            '11' as headcount_band, (rnd(i, 3) % 16)::smallint as headcount_band_rank,
            10 as headcount_min, 19 as headcount_max,
            ['PME', 'ETI', 'GE'][1 + (rnd(i, 4) % 3)::int] as category,
            '5710' as legal_form_code, ['SAS', 'SARL', 'SA', 'sole_trader', 'other'][1 + (rnd(i, 5) % 5)::int]
                as legal_form_family,
            date '1980-01-01' + (rnd(i, 6) % 16000)::int as creation_date,
            case when rnd(i, 7) % 20 = 0 then date '2015-01-01' + (rnd(i, 8) % 4000)::int end as closed_date,
            rnd(i, 7) % 20 <> 0 as is_active, 1 + (rnd(i, 9) % 5)::int as establishment_count,
            (rnd(i, 10) % 10000000)::double as revenue, 2023 as revenue_year,
            '75056' as commune_code, '75001' as postcode, '75' as departement_code,
            lpad((rnd(i, 11) % 95)::varchar, 2, '0') as region_code, 'Région' as region_name,
            'sirene' as source, {as_of} as record_date
        from range({companies}) t(i)
    """)
    # range() is a single-threaded source: materialise the row numbers first so that the expensive
    # projections below run on every thread. Signals are stored in the order ingestion writes them
    # (ose_assets.ingestion.signals.SIGNALS_QUERY), which the feature build reads; only these narrow
    # rows are sorted, and the wide table keeps their order.
    con.execute(
        "create or replace temp table signal_rows as "
        f"select i, rnd(i, 3) % {len(types)} as t, "
        f"lpad((rnd(i, 1) % {companies})::varchar, 9, '0') as siren, "
        f"{as_of} + 180 - (rnd(i, 2) % 1980)::int as event_date from range({signals}) t(i)"
    )
    con.execute(
        "create or replace temp table signal_rows as "
        "select * from signal_rows order by event_date, siren, 's' || i"
    )
    con.execute("set preserve_insertion_order = true")
    con.execute(f"""
        create or replace table normalized.signals as
        select 's' || i as signal_id, siren, event_date,
            {type_list}[1 + t::int] as signal_type,
            {family_list}[1 + t::int] as signal_family,
            {polarity_list}[1 + t::int]::tinyint as polarity,
            (rnd(i, 4) % 1000000)::double as magnitude,
            ['bodacc', 'france_travail', 'press_release', 'crm'][1 + (rnd(i, 5) % 4)::int] as source,
            'bench' as source_ref, null::varchar as source_url, 'synthetic' as description,
            'bench' as file_hash, {as_of}::timestamp as ingested_at
        from signal_rows
    """)
    con.execute("set preserve_insertion_order = false")
    con.execute("drop table signal_rows")
    articles = signals // 10
    con.execute(f"""
        create or replace table normalized.articles as
        select 'a' || i as article_id, 'https://example.org/' || i as url,
            {as_of} + 180 - (rnd(i, 1) % 1980)::int as published_date,
            ({as_of} + 180 - (rnd(i, 1) % 1980)::int)::timestamp as published_at,
            'title' as title, 'text' as text, 'press' as source,
            {type_list}[1 + (rnd(i, 2) % {len(types)})::int] as event_type,
            ((rnd(i, 3) % 3)::int - 1)::tinyint as polarity
        from range({articles}) t(i)
    """)
    con.execute(f"""
        create or replace table normalized.article_companies as
        select 'a' || i as article_id, lpad((rnd(i, 4) % {companies})::varchar, 9, '0') as siren,
            'fuzzy_name' as match_method, 0.7 + (rnd(i, 5) % 31) / 100.0 as confidence
        from range({articles}) t(i)
    """)
    con.execute("reset preserve_insertion_order")  # the timed queries run with the defaults


def _window_counts() -> str:
    as_of = f"date '{AS_OF.isoformat()}'"
    return ", ".join(
        f"count(*) filter (where event_date > {as_of} - interval {m} month) as signals_{m}m"
        for m in (3, 6, 12)
    )


def bare_group_by(con: duckdb.DuckDBPyConnection) -> None:
    """Narrow: recency and 3/6/12-month counts per company."""
    con.execute(f"""
        create or replace table bench_bare_group_by as
        select siren, max(event_date) as last_signal_date, {_window_counts()}
        from normalized.signals where event_date <= date '{AS_OF.isoformat()}' group by siren
    """)


def reference_group_by(con: duckdb.DuckDBPyConnection) -> None:
    """REFERENCE.md section 7: recency, 3/6/12-month counts, distinct types and red-flag count."""
    red_flags = ", ".join(f"'{name}'" for name, spec in signal_types().items() if spec["red_flag"])
    con.execute(f"""
        create or replace table bench_reference_group_by as
        select siren, max(event_date) as last_signal_date, {_window_counts()},
            count(distinct signal_type) as distinct_signal_types,
            count(*) filter (where signal_type in ({red_flags})) as red_flag_count
        from normalized.signals where event_date <= date '{AS_OF.isoformat()}' group by siren
    """)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_memory_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak_memory() -> bool:
    """Restart the peak resident memory from the current one (Linux), so that the peak printed at the
    end is the timed queries', not the data generation's (its sort takes more)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(label: str, fn) -> tuple[float, float]:
    """Wall and CPU seconds of fn(); CPU time is steadier than wall time on a shared machine."""
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    fn()
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    print(f"{label}: {elapsed:.2f} s (cpu {cpu:.2f} s)", flush=True)
    return elapsed, cpu


def load_compute(path: Path):
    """Another copy of ose_assets/features/compute.py as a module (it imports the installed catalog)."""
    spec = importlib.util.spec_from_file_location("ose_bench_compared_compute", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPARED_TABLE = "bench_compared_features"  # --compare: the other copy's last table


def timed_builds(con: duckdb.DuckDBPyConnection, repeat: int, compared) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) of `repeat` builds of this checkout's features and, alternately before each,
    of `compared`'s (its table kept as bench_compared_features). This checkout's table is built last."""
    builds = {}
    if compared is not None:

        def build_compared() -> None:
            compared.build_company_features(con, AS_OF)
            con.execute(f"create or replace table {COMPARED_TABLE} as from features.company_features")

        builds["compared"] = build_compared
    builds["this"] = lambda: build_company_features(con, AS_OF)
    times = {label: [] for label in builds}
    for run in range(repeat):
        for label, build in builds.items():
            times[label].append(timed(f"build_company_features, {label} ({run + 1}/{repeat})", build))
    return {
        label: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for label, runs in times.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--signals", type=int, default=20_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="builds timed (medians printed)")
    parser.add_argument("--compare", type=Path, help="another features/compute.py to time side by side")
    args = parser.parse_args(argv)
    compared = load_compute(args.compare) if args.compare else None
    with tempfile.TemporaryDirectory(prefix="ose_bench_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"), config={"threads": args.threads})
        timed(
            f"generate {args.companies:,} companies / {args.signals:,} signals",
            lambda: generate(con, args.companies, args.signals),
        )
        con.execute("checkpoint")
        print(f"peak memory, generation: {_peak_memory_mib():,.0f} MiB")
        since = "timed queries" if _reset_peak_memory() else "whole run"
        bare = timed("bare GROUP BY, narrow (recency + 3/6/12m counts)", lambda: bare_group_by(con))
        reference = timed(
            "bare GROUP BY, REFERENCE.md s7 (recency + 3/6/12m counts + distinct types + red flags)",
            lambda: reference_group_by(con),
        )
        builds = timed_builds(con, args.repeat, compared)
        build = builds["this"]
        print(f"build_company_features, median of {args.repeat}: {build[0]:.2f} s (cpu {build[1]:.2f} s)")
        if compared is not None:
            other = builds["compared"]
            print(
                f"build_company_features of {args.compare}, median of {args.repeat}: {other[0]:.2f} s "
                f"(cpu {other[1]:.2f} s); this / compared: {build[0] / other[0]:.2f} "
                f"(cpu {build[1] / other[1]:.2f})"
            )
            # Doubles to 9 significant digits: parallel sums add in a different order from run to run.
            columns = ", ".join(
                f"round({name}, 8 - floor(log10(abs({name}) + 1e-300))::int) as {name}"
                if kind == "DOUBLE"
                else name
                for name, kind, *_ in con.execute("describe features.company_features").fetchall()
            )
            this, other = (
                f"select {columns} from {t}" for t in ("features.company_features", COMPARED_TABLE)
            )
            differing = con.execute(
                f"select count(*) from (({this} except all {other}) union all ({other} except all {this}))"
            ).fetchone()[0]
            print(f"rows differing between the two tables (doubles to 9 significant digits): {differing:,}")
        profile = timed("feature profile (UI metadata)", lambda: feature_profile(con))
        rows = con.execute("select count(*) from features.company_features").fetchone()[0]
        columns = len(con.execute("describe features.company_features").fetchall())
        print(f"rows: {rows:,}, columns: {columns}")
        for label, (wall, cpu) in (("narrow", bare), ("REFERENCE s7", reference)):
            print(f"ratio build / bare {label}: {build[0] / wall:.2f} (cpu {build[1] / cpu:.2f})")
            print(f"ratio (build + profile) / bare {label}: {(build[0] + profile[0]) / wall:.2f}")
        print(f"peak memory, {since}: {_peak_memory_mib():,.0f} MiB")
        con.close()


if __name__ == "__main__":
    main()
