"""training.training_set: snapshot grid, labels, exclusions and the time split."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ose_assets.settings import model_config
from ose_assets.training.snapshots import (
    TRAINING_SET_TABLE,
    build_training_set,
    covers,
    history_start,
    months_before,
    plan_splits,
    snapshot_dates,
)
from ose_assets_tests.training_fixtures import AS_OF, make_normalized

HORIZON = 90


def test_snapshot_grid_is_month_ends_with_complete_horizon():
    dates = snapshot_dates(dt.date(2025, 6, 30), history_months=24, horizon_days=HORIZON)
    assert dates[0] == dt.date(2023, 7, 31)
    assert dates[-1] == dt.date(2025, 3, 31)  # 2025-04-30 + 90 days > 2025-06-30
    assert all((d + dt.timedelta(days=1)).day == 1 for d in dates)
    assert all(d + dt.timedelta(days=HORIZON) <= dt.date(2025, 6, 30) for d in dates)
    assert dates == sorted(set(dates))


def test_snapshots_need_the_minimum_history(tmp_path):
    """A snapshot exists only when the history (from its first record) covers min_history_months before
    it: earlier ones would see a much shorter history than scoring does."""
    as_of = dt.date(2025, 6, 30)
    everything = snapshot_dates(as_of, 24, HORIZON)
    kept = snapshot_dates(as_of, 24, HORIZON, start=dt.date(2024, 3, 1), min_history_months=12)
    # 2025-02-28 - 12 months = 2024-02-28: its 12 months start on 2024-02-29, before the history.
    assert kept == [d for d in everything if d >= dt.date(2025, 3, 31)] == [dt.date(2025, 3, 31)]
    assert snapshot_dates(as_of, 24, HORIZON, dt.date(2024, 2, 29), 12)[0] == dt.date(2025, 2, 28)
    assert snapshot_dates(as_of, 24, HORIZON, dt.date(2024, 3, 1), 6)[0] == dt.date(2024, 8, 31)
    assert snapshot_dates(as_of, 24, HORIZON, None, 6) == everything
    assert months_before(dt.date(2025, 2, 28), 12) == dt.date(2024, 2, 28)
    assert months_before(dt.date(2024, 3, 31), 1) == dt.date(2024, 2, 29)
    assert covers(dt.date(2025, 3, 31), 12, dt.date(2024, 4, 1)) and not covers(
        dt.date(2025, 3, 31), 12, dt.date(2024, 4, 2)
    )

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    make_normalized(con, companies=10)
    first_signal = con.execute("select min(event_date) from normalized.signals").fetchone()[0]
    assert history_start(con) == first_signal
    con.execute(
        "insert into normalized.articles (article_id, published_date) values ('a', ?::date - 1)",
        [first_signal],
    )
    assert history_start(con) == first_signal - dt.timedelta(days=1)
    con.execute("delete from normalized.signals; delete from normalized.articles")
    assert history_start(con) is None


def test_time_split_is_ordered_and_purged():
    dates = snapshot_dates(AS_OF, 24, HORIZON)
    plan = plan_splits(dates, HORIZON, test_months=3, validation_months=4)
    assert plan.test == dates[-3:]
    assert len(plan.validation) == 4 and plan.train
    assert max(plan.train) < min(plan.validation) < max(plan.validation) < min(plan.test)
    # No label window of an older period reaches into the next period.
    horizon = dt.timedelta(days=HORIZON)
    assert all(d + horizon <= min(plan.validation) for d in plan.train)
    assert all(d + horizon <= min(plan.test) for d in plan.validation)
    assert sorted(plan.train + plan.validation + plan.test + plan.purged) == dates


def test_short_history_fills_test_first():
    dates = snapshot_dates(AS_OF, 5, HORIZON)  # 2 complete snapshots
    plan = plan_splits(dates, HORIZON, test_months=3, validation_months=4)
    assert plan.test == dates and not plan.validation and not plan.train
    assert plan_splits([], HORIZON, 3, 4) == plan_splits([], HORIZON, 3, 4)


def _tiny_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Four companies with hand-written outcomes around the 2024-12-31 snapshot."""
    make_normalized(con, companies=4, signals_per_company=0.0, open_rate=0.0)
    con.execute("update normalized.companies set closed_date = null, is_active = true")
    con.execute(
        "update normalized.companies set closed_date = date '2024-11-15', is_active = false "
        "where siren = '100000003'"
    )
    con.execute("""
        insert into normalized.outcomes values
        -- opened after the 2024-12-31 snapshot, won 41 days after it
        ('o1', '100000000', date '2025-01-10', date '2025-02-10', 'won'),
        -- opened before 2024-12-31 and won after it: in an opportunity at that snapshot (excluded)
        ('o2', '100000001', date '2024-12-01', date '2025-01-15', 'won'),
        -- lost: never a positive
        ('o3', '100000002', date '2025-01-05', date '2025-02-01', 'lost')
    """)


def test_labels_and_exclusions(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _tiny_warehouse(con)
    dates = [dt.date(2024, 10, 31), dt.date(2024, 11, 30), dt.date(2024, 12, 31), dt.date(2025, 1, 31)]
    plan = plan_splits(dates, HORIZON, test_months=4, validation_months=0)
    counts = build_training_set(con, plan, HORIZON)
    rows = {
        (siren, str(day)): label
        for siren, day, label in con.execute(
            f"select siren, snapshot_date, label from {TRAINING_SET_TABLE}"
        ).fetchall()
    }
    # Win on 2025-02-10: not within 90 days of 2024-10-31; within 90 days of 2024-11-30 and 2024-12-31.
    assert rows[("100000000", "2024-10-31")] == 0
    assert rows[("100000000", "2024-11-30")] == 1
    assert rows[("100000000", "2024-12-31")] == 1
    # Opened 2025-01-10, closed after 2025-01-31: in an opportunity at 2025-01-31, excluded.
    assert ("100000000", "2025-01-31") not in rows
    # o2 opened 2024-12-01, won 2025-01-15: positive before, excluded at 2024-12-31 (in an
    # opportunity), a plain negative once closed.
    assert rows[("100000001", "2024-10-31")] == 1 and rows[("100000001", "2024-11-30")] == 1
    assert ("100000001", "2024-12-31") not in rows
    assert rows[("100000001", "2025-01-31")] == 0
    assert rows[("100000002", "2024-12-31")] == 0
    # Closed on 2024-11-15: present before, excluded after.
    assert ("100000003", "2024-10-31") in rows and ("100000003", "2024-11-30") not in rows
    assert counts["test"]["excluded_closed"] == 3
    # o1 and o3 (open on 2025-01-31, even if later lost), o2 at 2024-12-31.
    assert counts["test"]["excluded_in_opportunity"] == 3
    columns = [c[0] for c in con.execute(f"describe {TRAINING_SET_TABLE}").fetchall()]
    assert columns[:2] == ["siren", "snapshot_date"] and columns[-2:] == ["label", "split"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    con = duckdb.connect(str(tmp_path_factory.mktemp("training") / "w.duckdb"))
    make_normalized(con, companies=800)
    settings = model_config()["training"]
    plan = plan_splits(
        snapshot_dates(AS_OF, int(settings["history_months"]), HORIZON),
        HORIZON,
        int(settings["test_months"]),
        int(settings["validation_months"]),
    )
    counts = build_training_set(con, plan, HORIZON)
    yield con, plan, counts
    con.close()


def test_no_test_period_row_in_training(built):
    con, plan, counts = built
    bounds = dict(
        (split, (low, high))
        for split, low, high in con.execute(
            f"select split, min(snapshot_date), max(snapshot_date) from {TRAINING_SET_TABLE} group by split"
        ).fetchall()
    )
    assert bounds["train"][1] < bounds["validation"][0] and bounds["validation"][1] < bounds["test"][0]
    assert bounds["test"][0] == min(plan.test)
    horizon = dt.timedelta(days=HORIZON)
    assert bounds["train"][1] + horizon <= bounds["validation"][0]
    assert bounds["validation"][1] + horizon <= bounds["test"][0]
    assert all(counts[s]["rows"] > 0 and counts[s]["positives"] > 0 for s in ("train", "validation", "test"))
    # Closed companies never appear at a snapshot on or after their closing date.
    leaked = con.execute(f"""
        select count(*) from {TRAINING_SET_TABLE} t join normalized.companies c using (siren)
        where c.closed_date <= t.snapshot_date
    """).fetchone()[0]
    assert leaked == 0


def test_features_match_the_feature_store(built):
    """Training rows are features_query at the snapshot date: the same values as scoring would compute."""
    from ose_assets.features.compute import company_spine_query, features_query

    con, plan, _ = built
    day = plan.test[-1]
    scoring = con.execute(
        "select siren, decayed_signal_intensity, signals_3m "
        f"from ({features_query(company_spine_query(day))})"
    ).fetchall()
    training = con.execute(
        "select siren, decayed_signal_intensity, signals_3m "
        f"from {TRAINING_SET_TABLE} where snapshot_date = ?",
        [day],
    ).fetchall()
    scoring_by_siren = {siren: rest for siren, *rest in scoring}
    assert training
    assert all(scoring_by_siren[siren] == pytest.approx(rest) for siren, *rest in training)
