"""`ose track-record` (how past rankings turned out) and `ose backfill` (replay past as-of dates)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

from ose_assets.cli.common import settings_for


def backfill_dates(start: dt.date, end: dt.date, every: str) -> list[dt.date]:
    """start, start + one period, … up to end. A month step keeps the day of the month, clamped to the
    month's end; from a month's last day it steps through month ends."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if every == "week":
        return [start + dt.timedelta(weeks=k) for k in range((end - start).days // 7 + 1)]
    month_end = (start + dt.timedelta(days=1)).day == 1
    dates, k = [], 0
    while True:
        index = start.year * 12 + start.month - 1 + k
        year, month = divmod(index, 12)
        last = (dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - dt.timedelta(days=1)).day
        date = dt.date(year, month + 1, last if month_end else min(start.day, last))
        if date > end:
            return dates
        dates.append(date)
        k += 1


def backfill(args: argparse.Namespace) -> bool:
    """Replay each past as-of date (scored with the champion of that date; the serving copy, the registry
    and the champion alias are never touched), then rescore the served date so the published copy carries
    the track record of every replayed date."""
    from ose_assets.automation.execution import execute, print_summary, replay
    from ose_assets.scoring.publish import served_as_of

    settings = settings_for(args)
    served = served_as_of(settings.serving_path)
    if served is None:
        print(
            "Nothing is published yet: run `ose run` first, then backfill the dates before it.",
            file=sys.stderr,
        )
        return False
    start, end = dt.date.fromisoformat(args.date_from), dt.date.fromisoformat(args.date_to)
    dates = [d for d in backfill_dates(start, end, args.every) if d < served]
    if not dates:
        print(f"No date between {start} and {end} is before the served as-of date {served}.", file=sys.stderr)
        return False
    print(f"Backfill: {len(dates)} replay(s) from {dates[0]} to {dates[-1]}, every {args.every}")
    started = time.monotonic()
    for number, date in enumerate(dates, start=1):
        print(f"[{number}/{len(dates)}] replay as of {date}")
        summary = replay(settings, date)
        if not summary.success:
            print_summary(summary)
            print(f"Backfill stopped: the replay as of {date} failed", file=sys.stderr)
            return False
    print(f"Rescoring the served date {served} to publish the track record")
    summary = execute(settings, served, job_name="ose_rescoring")
    print_summary(summary)
    print(f"Backfill done in {time.monotonic() - started:.0f} s; `ose track-record` shows the windows.")
    return summary.success


def print_track_record(args: argparse.Namespace) -> bool:
    import duckdb
    import polars as pl

    from ose_assets.monitoring.track_record import sentence

    settings = settings_for(args)
    if not settings.serving_path.exists():
        print(f"No serving copy at {settings.serving_path}: run `ose run` first.", file=sys.stderr)
        return False
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        if not con.execute(
            "select count(*) from duckdb_tables() where table_name = 'track_record'"
        ).fetchone()[0]:
            print(
                "This serving copy has no track record yet: run `ose run` (or `ose backfill`).",
                file=sys.stderr,
            )
            return False
        record = con.execute("select * from track_record order by as_of_date desc, model_version").pl()
        bands = con.execute(
            "select as_of_date, model_version, group_value as band, companies, expected_wins, realised_wins "
            "from track_record_groups where grouping = 'band' order by as_of_date desc, band"
        ).pl()
    closed = record.filter(pl.col("window_status") == "closed").head(args.last)
    open_windows = record.filter(pl.col("window_status") == "in_progress")
    fr = args.lang == "fr"
    print(
        (
            "Bilan : ce que sont devenus les classements publiés"
            if fr
            else "Track record: how published rankings turned out"
        )
        + f" ({'résultats connus jusqu’au' if fr else 'outcomes known until'} {record['known_until'].max()})"
    )
    for title, part in (
        (("Fenêtres closes" if fr else "Closed windows"), closed),
        (("En cours" if fr else "In progress"), open_windows),
    ):
        print(f"\n{title}:" if part.height else f"\n{title}: {'aucune' if fr else 'none'}")
        for row in part.iter_rows(named=True):
            tag = "" if row["sample_type"] == "out_of_sample" else f"  [{row['sample_type']}]"
            print(f"- {sentence(row, args.lang)}{tag}")
            auc = row["realised_roc_auc"]
            if auc is not None:
                print(
                    f"  ROC-AUC {auc:.3f} (test {row['test_roc_auc'] or float('nan'):.3f}), "
                    f"ECE {row['realised_ece']:.4f}, {'modèle' if fr else 'model'} v{row['model_version']}"
                )
            mine = bands.filter(
                pl.col("as_of_date") == row["as_of_date"], pl.col("model_version") == row["model_version"]
            )
            print(
                "  "
                + "; ".join(
                    f"{b}: {w}/{e:.1f} ({n:,})"
                    for b, n, e, w in mine.select(
                        "band", "companies", "expected_wins", "realised_wins"
                    ).rows()
                )
            )
    print(
        "\n"
        + (
            "bande : gains réalisés/attendus (entreprises)"
            if fr
            else "band: realised/expected wins (companies)"
        )
    )
    return True


def register(add_command) -> None:
    sub = add_command("track-record", print_track_record, "print how the last published rankings turned out")
    sub.add_argument("--last", type=int, default=6, help="closed windows to print (newest first)")
    sub.add_argument("--lang", choices=("fr", "en"), default="fr")
    sub = add_command("backfill", backfill, "replay past as-of dates (never touches what is served)")
    sub.add_argument("--from", dest="date_from", required=True, help="first as-of date (YYYY-MM-DD)")
    sub.add_argument("--to", dest="date_to", required=True, help="last as-of date (YYYY-MM-DD)")
    sub.add_argument("--every", choices=("month", "week"), default="month")
