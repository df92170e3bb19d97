"""Training snapshots: a monthly spine of companies, features as of each snapshot, labels and the time split.

One row per (company, snapshot date). Features come from ose_assets.features.compute.features_query
over the spine, the same SQL that computes today's scoring features, so training and scoring can not
drift apart.

Label: 1 when the company has a won opportunity in normalized.outcomes whose closed_date (the win
date) falls in (snapshot_date, snapshot_date + horizon_days]; else 0.

Excluded rows (counted in the asset metadata, never silently):
- closed companies at the snapshot (the feature store's `is_closed`);
- companies already in an opportunity at the snapshot: one opened on or before the snapshot and not
  closed before it (closed_date null or after the snapshot). Their outcome is sales work already under
  way, not the propensity the score estimates; scoring excludes them from rankings the same way.
- snapshots whose label window is not complete at the as-of date (snapshot + horizon > as_of), and
  snapshots with less than features.min_history_months of history before them, are not on the grid at
  all: there the history-based features would see a much shorter window than at scoring (recencies cut
  short, fewer signals), a skew the model would learn and drift monitoring would flag. Snapshots with
  less history than the lookback (features.lookback_months) are kept and listed as truncated, and
  snapshots purged between periods (see plan_splits) are listed, in the metadata.

Companies that won an opportunity closed before the snapshot stay in: they can buy again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ose_assets.features.catalog import model_feature_names
from ose_assets.features.compute import features_query
from ose_assets.warehouse import replace_table

TRAINING_SET_TABLE = "training.training_set"
SPLITS = ("train", "validation", "test")


def open_opportunity(outcome: str, as_of: str) -> str:
    """SQL predicate: the normalized.outcomes row `outcome` is an opportunity open at `as_of` (opened on
    or before it, not closed before it). Training drops such snapshot rows; scoring keeps the company's
    score but excludes it from every ranking (`exclusion_reason` 'open_opportunity')."""
    return (
        f"({outcome}.opportunity_date <= {as_of} "
        f"and ({outcome}.closed_date is null or {outcome}.closed_date > {as_of}))"
    )


def _month_end(year: int, month: int) -> dt.date:
    first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return _month_end(index // 12, index % 12 + 1)


def months_before(day: dt.date, months: int) -> dt.date:
    """`day` minus calendar months, the day clamped to the month's length: DuckDB's `- interval`."""
    index = day.year * 12 + day.month - 1 - months
    year, month = index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, _month_end(year, month).day))


def history_start(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """Date of the earliest signal or article: where history starts. A source whose records start later
    is seen for a shorter time by the early snapshots (the first run on new data shows it as drift).
    None when there is no record."""
    return con.execute("""
        select least((select min(event_date) from normalized.signals),
                     (select min(published_date) from normalized.articles))
    """).fetchone()[0]


def covers(day: dt.date, months: int, start: dt.date | None) -> bool:
    """True when history from `start` covers the `months` months up to `day` ((day - months, day])."""
    return start is None or months_before(day, months) + dt.timedelta(days=1) >= start


def snapshot_dates(
    as_of: dt.date,
    history_months: int,
    horizon_days: int,
    start: dt.date | None = None,
    min_history_months: int = 0,
) -> list[dt.date]:
    """Month-ends of the `history_months` months before `as_of` whose label window is complete and, when
    the history `start` is known, with at least `min_history_months` of history before them."""
    first = _add_months(as_of, -history_months)
    dates = [_add_months(first, k) for k in range(1, history_months + 1)]
    return [
        d
        for d in dates
        if d + dt.timedelta(days=horizon_days) <= as_of and covers(d, min_history_months, start)
    ]


@dataclass(frozen=True)
class SplitPlan:
    """Snapshot dates of each period, oldest first, and the snapshots purged between periods."""

    train: list[dt.date]
    validation: list[dt.date]
    test: list[dt.date]
    purged: list[dt.date]

    def split_of(self) -> dict[dt.date, str]:
        return {d: name for name in SPLITS for d in getattr(self, name)}

    def describe(self) -> dict[str, str]:
        """First and last snapshot of each period (what the UI and the model card show)."""
        out = {}
        for name in (*SPLITS, "purged"):
            dates = getattr(self, name)
            out[name] = f"{dates[0]} .. {dates[-1]} ({len(dates)} snapshots)" if dates else "none"
        return out


def plan_splits(
    dates: list[dt.date], horizon_days: int, test_months: int, validation_months: int
) -> SplitPlan:
    """Time split: test = the latest `test_months` snapshots, validation = the `validation_months`
    before, train = the rest. Never random.

    Purge: a snapshot joins a period only if its label window (snapshot, snapshot + horizon] ends on or
    before the first snapshot of the next period, so no label of an older period is an outcome of the
    newer one (the situation of a model trained today and used on tomorrow's companies). Snapshots in
    between are purged. Short histories fill test first, then validation, then train.
    """
    horizon = dt.timedelta(days=horizon_days)
    remaining = sorted(dates)
    test = remaining[-test_months:] if test_months else []
    remaining = [d for d in remaining if d not in test]

    def before(period: list[dt.date], candidates: list[dt.date]) -> list[dt.date]:
        return [d for d in candidates if not period or d + horizon <= period[0]]

    eligible = before(test, remaining)
    validation = eligible[-validation_months:] if validation_months else []
    train = before(validation, [d for d in eligible if d not in validation])
    kept = set(test) | set(validation) | set(train)
    return SplitPlan(train, validation, test, [d for d in sorted(dates) if d not in kept])


def _dates_relation(plan: SplitPlan) -> str:
    rows = ", ".join(f"(date '{d.isoformat()}', '{split}')" for d, split in sorted(plan.split_of().items()))
    if not rows:
        return "select null::date as snapshot_date, null::varchar as split where false"
    return f"select * from (values {rows}) as v(snapshot_date, split)"


def spine_query(plan: SplitPlan) -> str:
    """(siren, as_of_date) of every company existing (created on or before, or creation unknown) at each
    kept snapshot date."""
    return f"""
        select c.siren, d.snapshot_date as as_of_date
        from normalized.companies c
        cross join ({_dates_relation(plan)}) d
        where c.creation_date <= d.snapshot_date or c.creation_date is null
    """


def candidates_query(plan: SplitPlan, horizon_days: int) -> str:
    """Every spine row with its features, label, split and the exclusion flags."""
    features = ", ".join(f"f.{name}" for name in model_feature_names())
    return f"""
        with features as ({features_query(spine_query(plan))}),
        outcome_flags as (
            select s.siren, s.as_of_date,
                bool_or(o.status = 'won' and o.closed_date > s.as_of_date
                        and o.closed_date <= s.as_of_date + {int(horizon_days)}) as converted,
                bool_or({open_opportunity("o", "s.as_of_date")}) as in_opportunity
            from ({spine_query(plan)}) s
            join normalized.outcomes o
              on o.siren = s.siren and o.opportunity_date <= s.as_of_date + {int(horizon_days)}
            group by s.siren, s.as_of_date
        )
        select f.siren, f.as_of_date as snapshot_date, {features},
            coalesce(o.converted, false)::tinyint as label, d.split,
            coalesce(f.is_closed, false) as excluded_closed,
            coalesce(o.in_opportunity, false) and not coalesce(f.is_closed, false) as excluded_in_opportunity
        from features f
        join ({_dates_relation(plan)}) d on d.snapshot_date = f.as_of_date
        left join outcome_flags o on o.siren = f.siren and o.as_of_date = f.as_of_date
    """


def build_training_set(con: duckdb.DuckDBPyConnection, plan: SplitPlan, horizon_days: int) -> dict:
    """Write training.training_set; return counts per split (rows, positives, excluded rows)."""
    con.execute(f"create or replace temp table training_candidates as {candidates_query(plan, horizon_days)}")
    keep = "not excluded_closed and not excluded_in_opportunity"
    replace_table(
        con,
        TRAINING_SET_TABLE,
        # Unsorted: sorting 13.6 M wide rows at 1,000,000 companies took most of this step's memory;
        # readers that need a reproducible order sort their part (ose_assets/model/training_rows.py).
        f"select * exclude (excluded_closed, excluded_in_opportunity) from training_candidates where {keep}",
    )
    rows = con.execute(
        f"""
        select split, count(*) filter (where {keep}) as rows,
            coalesce(sum(label) filter (where {keep}), 0)::bigint as positives,
            count(*) filter (where excluded_closed) as excluded_closed,
            count(*) filter (where excluded_in_opportunity) as excluded_in_opportunity
        from training_candidates group by split
        """
    ).fetchall()
    con.execute("drop table training_candidates")
    counts = {
        split: {"rows": 0, "positives": 0, "excluded_closed": 0, "excluded_in_opportunity": 0}
        for split in SPLITS
    }
    for split, n, positives, closed, in_opportunity in rows:
        counts[split] = {
            "rows": n,
            "positives": positives,
            "excluded_closed": closed,
            "excluded_in_opportunity": in_opportunity,
        }
    return counts
