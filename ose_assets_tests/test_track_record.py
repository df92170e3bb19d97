"""The track record against a direct recomputation, on a small world whose outcomes are drawn from known
probabilities (a real DuckDB file; score_history, normalized.outcomes and model.model_versions as the
pipeline writes them)."""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import numpy as np
import polars as pl
import pytest

from ose_assets.monitoring import track_record as tr
from ose_assets.settings import model_config

HORIZON = model_config()["training"]["horizon_days"]
KNOWN_UNTIL = dt.date(2026, 6, 30)
# Three closed windows (far enough apart that one win never counts in two windows) and one in progress.
CLOSED_DATES = [dt.date(2025, 6, 30), dt.date(2025, 10, 31), dt.date(2026, 2, 28)]
OPEN_DATE = dt.date(2026, 5, 31)
COMPANIES = 3000
REGIONS = ["11", "84", "93", "53"]
SECTIONS = ["C", "G", "J", "M", "F"]


def _band(score: float) -> str:
    bands = model_config()["bands"]
    return next(name for name, low in sorted(bands.items(), key=lambda kv: -kv[1]) if score >= low)


def _history(as_of: dt.date, probability: np.ndarray, version: str, rng) -> pl.DataFrame:
    eligible = rng.random(COMPANIES) > 0.05  # 5 % already in an open deal
    frame = pl.DataFrame(
        {
            "siren": [f"{i:09d}" for i in range(COMPANIES)],
            "scored_at": dt.datetime.combine(as_of, dt.time(3)),
            "as_of_date": as_of,
            "score": np.round(probability * 100, 1),
            "model_version": version,
            "is_eligible": eligible,
            "exclusion_reason": np.where(eligible, None, "open_opportunity"),
            "region_code": [REGIONS[i % len(REGIONS)] for i in range(COMPANIES)],
            "naf_section": [SECTIONS[i % len(SECTIONS)] for i in range(COMPANIES)],
        }
    ).with_columns(band=pl.col("score").map_elements(_band, return_dtype=pl.String))
    ranked = (
        frame.filter("is_eligible")
        .sort(["score", "siren"], descending=[True, False])
        .with_row_index("rank", offset=1)
        .select("siren", pl.col("rank").cast(pl.Int64))
    )
    return frame.join(ranked, on="siren", how="left")


def _wins(as_of: dt.date, probability: np.ndarray, rng) -> list[dict]:
    won = rng.random(COMPANIES) < probability
    rows = []
    for i in np.flatnonzero(won):
        closed = as_of + dt.timedelta(days=int(rng.integers(1, HORIZON + 1)))
        rows.append(
            {
                "opportunity_id": f"{as_of}-{i}",
                "siren": f"{i:09d}",
                "opportunity_date": as_of,
                "closed_date": closed,
                "status": "won",
            }  # fmt: skip
        )
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rng = np.random.default_rng(7)
    truth = np.clip(rng.beta(0.6, 12, COMPANIES), 0.001, 0.9)
    con = duckdb.connect(str(tmp_path_factory.mktemp("track") / "warehouse.duckdb"))
    histories, outcomes = [], []
    for as_of in [*CLOSED_DATES, OPEN_DATE]:
        # The second window is scored by version 2, trained as of a later date: in-sample.
        version = "2" if as_of == CLOSED_DATES[1] else "1"
        histories.append(_history(as_of, truth, version, rng))
        outcomes += _wins(as_of, truth, rng)
    # A lost deal and a win outside every window: neither counts.
    outcomes += [
        {"opportunity_id": "lost", "siren": "000000001", "opportunity_date": CLOSED_DATES[0],
         "closed_date": CLOSED_DATES[0] + dt.timedelta(days=10), "status": "lost"},
        {"opportunity_id": "late", "siren": "000000002", "opportunity_date": CLOSED_DATES[0],
         "closed_date": CLOSED_DATES[0] + dt.timedelta(days=HORIZON + 1), "status": "won"},
    ]  # fmt: skip
    history = pl.concat(histories)
    con.execute("create schema scoring; create schema normalized; create schema model")
    con.register("h", history.to_arrow())
    con.execute("create table scoring.score_history as select * from h")
    con.register("o", pl.DataFrame(outcomes).to_arrow())
    con.execute("create table normalized.outcomes as select * from o")
    con.execute(
        """create table model.model_versions as select * from (values
            (1, 'xgboost', date '2025-05-31', 0.80, 0.05, 0.004, 3.1),
            (2, 'xgboost', date '2026-03-31', 0.80, 0.05, 0.004, 3.1))
            v(version, kind, as_of_date, test_roc_auc, test_brier, test_ece, test_top_decile_lift)"""
    )
    record, groups = tr.build_track_record(con, KNOWN_UNTIL)
    yield con, history, pl.DataFrame(outcomes), record, groups
    con.close()


def _direct_labels(history: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Eligible published rows with label = won within (as_of, min(as_of + horizon, known_until)]."""
    won = outcomes.filter(pl.col("status") == "won").select("siren", "closed_date")
    eligible = history.filter("is_eligible")
    hits = (
        eligible.join(won, on="siren")
        .filter(
            pl.col("closed_date") > pl.col("as_of_date"),
            pl.col("closed_date") <= pl.col("as_of_date") + pl.duration(days=HORIZON),
            pl.col("closed_date") <= KNOWN_UNTIL,
        )
        .select("siren", "as_of_date")
        .unique()
        .with_columns(label=pl.lit(1))
    )
    return eligible.join(hits, on=["siren", "as_of_date"], how="left").with_columns(
        pl.col("label").fill_null(0)
    )


def test_band_counts_and_top_lists_match_a_direct_recomputation(world):
    _, history, outcomes, record, groups = world
    labelled = _direct_labels(history, outcomes)
    expected = (
        labelled.group_by("as_of_date", "band")
        .agg(
            companies=pl.len(),
            realised_wins=pl.col("label").sum(),
            expected_wins=(pl.col("score") / 100).sum(),
        )
        .sort("as_of_date", "band")
    )
    bands = (
        groups.filter(pl.col("grouping") == "band")
        .select(
            "as_of_date", pl.col("group_value").alias("band"), "companies", "realised_wins", "expected_wins"
        )
        .sort("as_of_date", "band")
    )
    assert (
        bands.select("as_of_date", "band", "companies", "realised_wins").to_dicts()
        == expected.select(
            "as_of_date", "band", pl.col("companies").cast(pl.Int64), pl.col("realised_wins").cast(pl.Int64)
        ).to_dicts()
    )
    assert np.allclose(bands["expected_wins"].to_numpy(), expected["expected_wins"].to_numpy())
    # Top 10 / top 100 precision, and a région's top 10, from the published ranks.
    for as_of in [*CLOSED_DATES, OPEN_DATE]:
        day = labelled.filter(pl.col("as_of_date") == as_of)
        row = record.filter(pl.col("as_of_date") == as_of).row(0, named=True)
        assert row["top10_wins"] == day.filter(pl.col("rank") <= 10)["label"].sum()
        assert row["top100_wins"] == day.filter(pl.col("rank") <= 100)["label"].sum()
        assert row["companies"] == day.height and row["realised_wins"] == day["label"].sum()
        region = day.filter(pl.col("region_code") == "84").sort("rank").head(10)
        segment = groups.filter(
            pl.col("as_of_date") == as_of, pl.col("group_value") == "region:84:top10"
        ).row(0, named=True)
        assert (segment["companies"], segment["realised_wins"]) == (10, region["label"].sum())


def test_open_window_is_in_progress_with_wins_so_far(world):
    _, history, outcomes, record, _ = world
    row = record.filter(pl.col("as_of_date") == OPEN_DATE).row(0, named=True)
    assert row["window_status"] == "in_progress"
    assert row["window_end"] == OPEN_DATE + dt.timedelta(days=HORIZON)
    so_far = outcomes.filter(
        pl.col("status") == "won", pl.col("closed_date") > OPEN_DATE, pl.col("closed_date") <= KNOWN_UNTIL
    )
    eligible = history.filter(pl.col("as_of_date") == OPEN_DATE, "is_eligible")["siren"]
    assert (
        0
        < row["realised_wins"]
        == so_far.filter(pl.col("siren").is_in(eligible.implode()))["siren"].n_unique()
    )
    assert row["realised_wins"] < row["expected_wins"]  # a third of the window has passed
    assert set(record.filter(pl.col("as_of_date") != OPEN_DATE)["window_status"]) == {"closed"}


def test_in_sample_rankings_are_labelled_apart(world):
    _, _, _, record, _ = world
    samples = dict(zip(record["as_of_date"], record["sample_type"], strict=True))
    assert samples[CLOSED_DATES[1]] == "in_sample"  # version 2 was trained as of 2026-03-31
    assert {samples[d] for d in (CLOSED_DATES[0], CLOSED_DATES[2], OPEN_DATE)} == {"out_of_sample"}


def test_calibrated_rankings_pass_and_a_degraded_model_trips_the_check(world):
    con, history, _, record, _ = world
    margin = model_config()["track_record"]["auc_margin"]
    assert tr.performance_failures(record, margin) == []
    assert tr.retraining_reason(con, "1") is None  # nothing judged yet: no track record table
    # Shuffle the published scores of the last closed date: the ranking is now noise.
    rng = np.random.default_rng(3)
    degraded = history.with_columns(
        pl.when(pl.col("as_of_date") == CLOSED_DATES[2])
        .then(pl.col("score").shuffle(seed=int(rng.integers(1 << 31))))
        .otherwise(pl.col("score"))
        .alias("score")
    )
    con.register("degraded", degraded.to_arrow())
    con.execute("create or replace table scoring.score_history as select * from degraded")
    bad, bad_groups = tr.build_track_record(con, KNOWN_UNTIL)
    problems = tr.performance_failures(bad, margin)
    assert problems and all(f"as of {CLOSED_DATES[2]}" in p for p in problems)
    assert any("realised ROC-AUC" in p and "model v1" in p for p in problems)
    tr.write_track_record(con, bad, bad_groups)
    assert "realised ROC-AUC" in tr.retraining_reason(con, "1")


def test_api_serves_the_published_track_record(world, tmp_path):
    import httpx

    from ose_assets.benchmarks.synthetic_serving import build_serving_copy
    from ose_assets.settings import OSESettings
    from ose_assets_tests.api_server import live_server

    _, _, _, record, groups = world
    settings = OSESettings(data_dir=tmp_path)
    build_serving_copy(settings.serving_path, companies=50, model_version="1")
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/api/v1/track-record").status_code == 404  # published before any track record
        # A new copy with the track record, published by an atomic rename as the publish does.
        staged = tmp_path / "staged.duckdb"
        build_serving_copy(staged, companies=50, model_version="1")
        with duckdb.connect(str(staged)) as con:
            tr.write_track_record(con, record, groups)
            con.execute("create table track_record as select * from monitoring.track_record")
            con.execute("create table track_record_groups as select * from monitoring.track_record_groups")
        os.replace(staged, settings.serving_path)
        body = http.get("/api/v1/track-record", params={"lang": "en"}).json()
        dates = [w["as_of_date"] for w in body["windows"]]
        assert dates == sorted(dates, reverse=True) and len(dates) == 4
        assert body["known_until"] == KNOWN_UNTIL.isoformat()
        latest_closed = next(w for w in body["windows"] if w["window_status"] == "closed")
        expected = record.filter(pl.col("as_of_date") == CLOSED_DATES[2]).row(0, named=True)
        assert latest_closed["top10_wins"] == expected["top10_wins"]
        assert latest_closed["summary"].startswith("Of the 10 companies we ranked first on 28 Feb 2026, ")
        assert {g["grouping"] for g in latest_closed["groups"]} == {"band"}
        one = http.get("/api/v1/track-record", params={"as_of": CLOSED_DATES[1].isoformat()}).json()
        (window,) = one["windows"]
        assert window["sample_type"] == "in_sample" and window["summary"].startswith("Sur les 10 entreprises")
        assert {g["grouping"] for g in window["groups"]} == {"band", "decile", "top"}
        missing = http.get("/api/v1/track-record", params={"as_of": "2024-01-01"})
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_backfill_dates_step_by_month_end_or_day():
    from ose_assets.cli.track_record import backfill_dates

    assert backfill_dates(dt.date(2025, 11, 30), dt.date(2026, 3, 31), "month") == [
        dt.date(2025, 11, 30), dt.date(2025, 12, 31), dt.date(2026, 1, 31), dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
    ]  # fmt: skip
    assert backfill_dates(dt.date(2025, 1, 15), dt.date(2025, 3, 14), "month") == [
        dt.date(2025, 1, 15), dt.date(2025, 2, 15),
    ]  # fmt: skip
    assert backfill_dates(dt.date(2025, 1, 1), dt.date(2025, 1, 15), "week") == [
        dt.date(2025, 1, 1), dt.date(2025, 1, 8), dt.date(2025, 1, 15),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="before --from"):
        backfill_dates(dt.date(2025, 2, 1), dt.date(2025, 1, 1), "month")


@pytest.mark.slow
def test_backfill_replays_past_dates_marks_them_in_sample_and_publishes_the_record(
    tmp_path, capsys, monkeypatch
):
    """ose run, then ose backfill over two past month-ends: the replays use the only champion, trained
    today on those very outcomes (in_sample); the served as-of date and the champion do not move, and the
    republished copy carries the whole record."""
    from ose_assets.cli import main
    from ose_assets.demo.generate import generate_demo_data
    from ose_assets.settings import OSESettings, today_paris

    # The CLI exports the data root and the Dagster home: restored after the test.
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = OSESettings(data_dir=tmp_path)
    generate_demo_data(tmp_path, companies=1500, seed=5)
    main(["run", "--data-dir", str(tmp_path)])
    today = today_paris()
    first = dt.date(today.year - (today.month <= 6), (today.month - 7) % 12 + 1, 1) - dt.timedelta(days=1)
    second = dt.date(today.year - (today.month <= 5), (today.month - 6) % 12 + 1, 1) - dt.timedelta(days=1)
    main(["backfill", "--data-dir", str(tmp_path), "--from", first.isoformat(), "--to", second.isoformat()])
    out = capsys.readouterr().out
    assert "Backfill: 2 replay(s)" in out and out.count("Replay: ") == 2
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        served = con.execute("select as_of_date, model_version from served_model").fetchone()
        record = con.execute("select * from track_record order by as_of_date").pl()
        history = con.execute("select distinct as_of_date from score_history order by 1").fetchall()
    assert served == (today, "1")  # still today's copy and the only version: nothing retrained or moved
    assert [d for (d,) in history] == [first, second, today]
    assert record["as_of_date"].to_list() == [first, second, today]
    assert record["sample_type"].to_list() == ["in_sample", "in_sample", "out_of_sample"]
    assert record["window_status"].to_list() == ["closed", "closed", "in_progress"]
    assert (record["companies"] > 1000).all()
    # Closed windows count their wins; today's window has just opened (outcomes are known up to today).
    assert (record["realised_wins"].head(2) > 0).all() and record["realised_wins"][2] == 0
    main(["track-record", "--data-dir", str(tmp_path), "--lang", "en"])
    printed = capsys.readouterr().out
    assert f"Of the 10 companies we ranked first on {first:%d %b %Y}" in printed and "[in_sample]" in printed


def test_bilan_page_shows_the_published_windows(world, tmp_path):
    import httpx

    from ose_assets.benchmarks.synthetic_serving import build_serving_copy
    from ose_assets.settings import OSESettings
    from ose_assets_tests.api_server import live_server

    _, _, _, record, groups = world
    settings = OSESettings(data_dir=tmp_path)
    build_serving_copy(settings.serving_path, companies=50, model_version="1")
    with duckdb.connect(str(settings.serving_path)) as con:
        tr.write_track_record(con, record, groups)
        con.execute("create table track_record as select * from monitoring.track_record")
        con.execute("create table track_record_groups as select * from monitoring.track_record_groups")
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/bilan").text
        english = http.get("/bilan", cookies={"ose_lang": "en"}).text
    closed, in_progress = page.split("Fenêtres en cours")
    for as_of in CLOSED_DATES:
        assert str(as_of) in closed
    assert str(OPEN_DATE) in in_progress and str(OPEN_DATE) not in closed
    row = record.filter(pl.col("as_of_date") == CLOSED_DATES[2]).row(0, named=True)
    assert f"{row['top10_wins']} / 10" in closed and "dans l&#39;échantillon" in closed
    assert f"Outcomes known until {KNOWN_UNTIL}" in english and "Closed windows" in english
