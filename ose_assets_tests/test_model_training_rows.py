"""The model step's view of the training set: parts, negative downsampling, the streamed fit."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pytest

from ose_assets.features.catalog import categorical_feature_names, model_feature_names
from ose_assets.model import evaluate as ev
from ose_assets.model.pipeline import load_training_frame
from ose_assets.model.train import fit_model, fit_streamed, with_validation_roles
from ose_assets.model.training_rows import PARTS, TrainingRows, capped_share, part_expression
from ose_assets.settings import model_config
from ose_assets_tests.training_fixtures import build_training, data_root


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    settings, _ = data_root(tmp_path_factory.mktemp("rows"))
    con = duckdb.connect(str(settings.warehouse_path))
    build_training(con, companies=1500)
    yield con
    con.close()


def test_parts_match_the_frame_roles(warehouse):
    training = model_config()["training"]
    rows = TrainingRows.from_config(warehouse, training)
    frame = with_validation_roles(load_training_frame(warehouse), training["early_stopping_share"])
    counts = rows.counts()
    assert sum(pos + neg for pos, neg in counts.values()) == frame.height
    for name in PARTS:
        column = "validation_role" if name in ("early_stopping", "calibration") else "split"
        part = frame.filter(frame[column] == name)
        assert counts[name] == (int(part["label"].sum()), part.height - int(part["label"].sum()))
    early = set(rows.load("early_stopping", ["siren"], [])["siren"])
    calibration = set(rows.load("calibration", ["siren"], [])["siren"])
    assert early and calibration and not early & calibration  # no company in both


def test_negative_downsampling_keeps_positives_and_reweights(warehouse):
    features, categorical = model_feature_names(), categorical_feature_names()
    full = TrainingRows.from_config(warehouse, model_config()["training"])
    sampled = dataclasses.replace(full, negative_share=0.25)
    (pos, neg), (kept_pos, kept_neg) = full.counts()["train"], sampled.kept_train_counts()
    assert kept_pos == pos and 0.18 * neg < kept_neg < 0.32 * neg
    batches = list(sampled.train_batches(features, categorical))
    weights = np.concatenate([b["weight"].to_numpy() for b in batches])
    labels = np.concatenate([b["label"].to_numpy() for b in batches])
    assert len(labels) == kept_pos + kept_neg
    assert set(weights[labels == 1]) == {1.0} and np.allclose(weights[labels == 0], 4.0)
    # Fixed seed: the same rows every time; another seed keeps other negatives.
    again = np.concatenate([b["label"].to_numpy() for b in sampled.train_batches(features, categorical)])
    assert np.array_equal(labels, again)
    other = dataclasses.replace(sampled, seed=sampled.seed + 1)
    assert other.kept_train_counts() != (kept_pos, kept_neg) or not np.array_equal(
        np.concatenate([b["siren"] for b in other.train_batches(["siren"], [])]),
        np.concatenate([b["siren"] for b in sampled.train_batches(["siren"], [])]),
    )


def test_streamed_fit_equals_the_frame_fit_and_downsampling_stays_calibrated(warehouse):
    config = model_config()
    features, categorical = model_feature_names(), categorical_feature_names()
    rows = TrainingRows.from_config(warehouse, config["training"])

    def fit(share: float):
        return fit_streamed(
            dataclasses.replace(rows, negative_share=share),
            features,
            categorical,
            config["xgboost"],
            config["training"],
        )

    streamed = fit(1.0)
    frame = load_training_frame(warehouse)
    in_memory = fit_model(
        frame, features, categorical, config["xgboost"], config["training"] | {"negative_sample_share": 1.0}
    )
    assert streamed.served.booster_raw == in_memory.served.booster_raw
    assert streamed.rows["train"] == streamed.rows["train_kept"]
    sampled = fit(0.3)
    assert sampled.rows["train_kept"] < 0.5 * sampled.rows["train"]
    assert sampled.params["negative_sample_share"] == 0.3
    test = rows.load("test", ["siren", "snapshot_date", "label", *features], categorical)
    metrics = ev.classification_metrics(ev.score_frame(sampled.served, test), 10)
    # Calibrated on untouched rows: the mean probability stays near the observed rate.
    assert abs(metrics["mean_probability"] - metrics["base_rate"]) < 0.5 * metrics["base_rate"]
    assert metrics["roc_auc"] > 0.6


def test_max_train_rows_lowers_the_share_and_early_stopping_follows_it(warehouse):
    training = model_config()["training"]
    uncapped = TrainingRows.from_config(warehouse, training | {"max_train_rows": None})
    pos, neg = uncapped.counts()["train"]
    cap = pos + int(0.1 * neg)
    capped = TrainingRows.from_config(warehouse, training | {"max_train_rows": cap})
    assert capped.negative_share == pytest.approx(0.1, rel=1e-3)
    assert uncapped.negative_share == training["negative_sample_share"] > 0.1
    kept_pos, kept_neg = capped.kept_train_counts()
    assert kept_pos == pos and kept_pos + kept_neg < 1.1 * cap
    # A cap below the positives still keeps one negative per positive.
    assert capped_share(0.25, 1_000, 100_000, 500) == pytest.approx(0.01)
    assert capped_share(0.25, 1_000, 100_000, 10**9) == 0.25
    # Early-stopping negatives follow the share (they only rank); calibration and test keep every row.
    early_pos, early_neg = capped.counts()["early_stopping"]
    early = capped.load("early_stopping", ["label"], [])
    assert int(early["label"].sum()) == early_pos and early.height - early_pos < 0.2 * early_neg
    for name in ("calibration", "test"):
        assert capped.load(name, ["label"], []).height == sum(capped.counts()[name])


def test_kept_negatives_are_a_uniform_sample_of_every_part_and_snapshot():
    """Sequential SIRENs over 6 snapshots: in every (part, snapshot) downsampling keeps about `share` of
    the negatives, and each snapshot keeps other companies (not one window of SIRENs over and over)."""
    con = duckdb.connect()
    con.execute(
        """create table rows as
        select (300000000 + i)::varchar as siren,
            last_day(date '2025-01-01' + to_months(m::int)) as snapshot_date,
            case when m < 4 then 'train' else 'validation' end as split, (i % 97 = 0)::tinyint as label
        from range(40000) r(i), range(6) s(m)"""
    )
    for share in (0.04, 0.1, 0.3):
        rows = TrainingRows(con, "rows", early_stopping_share=0.5, negative_share=share, seed=42)
        kept = con.execute(
            f"""select snapshot_date, part, count(*) filter (where {rows._negatives_kept()}) / count(*)
            from (select *, {part_expression(0.5)} as part from rows)
            where label = 0 and part in ('train', 'early_stopping') group by all"""
        ).fetchall()
        assert len(kept) == 6
        for snapshot, part, rate in kept:
            assert rate == pytest.approx(share, rel=0.15), (share, snapshot, part)
        train = rows.load("early_stopping", ["siren", "snapshot_date", "label"], [])
        by_snapshot = [
            set(g["siren"]) for _, g in train.filter(train["label"] == 0).group_by("snapshot_date")
        ]
        overlap = len(by_snapshot[0] & by_snapshot[1]) / len(by_snapshot[0])
        assert overlap < 2 * share, (share, overlap)  # independent draws overlap by about `share`


def test_early_stopping_rows_without_negatives_fail_clearly(warehouse):
    config = model_config()
    rows = TrainingRows.from_config(warehouse, config["training"])
    starved = dataclasses.replace(rows, negative_share=1e-9)  # keeps the positives only
    with pytest.raises(ValueError, match="early-stopping rows lack one class"):
        fit_streamed(
            starved, model_feature_names(), categorical_feature_names(), config["xgboost"], config["training"]
        )
