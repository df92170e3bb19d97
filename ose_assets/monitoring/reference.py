"""The champion's training reference: what today's population is compared with.

Choice (docs/architecture.md, "Monitoring and lineage"): the reference is the `split = 'train'` rows
of training.training_set whose snapshot_date is one of the train snapshot dates recorded in the
champion's MLflow run (training_fingerprint.json). The training set is rebuilt by the same feature SQL
at every full refresh, so those rows are the champion's training rows as long as the snapshots are
still there; when they are not (the set was rebuilt over other dates, or the run has no fingerprint)
the current train split stands in and the metadata says so. A deterministic hash sample of
`drift.reference_sample_rows` rows keeps the comparison cheap at any scale; the reference scores are
the champion's own predictions on that sample.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from ose_assets.model.registry import FINGERPRINT_ARTIFACT
from ose_assets.model.served_model import ServedModel

TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class Reference:
    frame: pl.DataFrame  # sampled train rows: siren, snapshot_date, the champion's features, score
    snapshot_dates: list[dt.date]
    train_rows: int  # train rows of those snapshot dates in the current training set
    source: str  # 'fingerprint' | 'current_train_split'
    note: str


def read_fingerprint(client, run_id: str | None) -> dict[str, Any] | None:
    """The run's training_fingerprint.json, or None when the run has none."""
    if not run_id:
        return None
    from mlflow.exceptions import MlflowException

    try:
        path = client.download_artifacts(run_id, FINGERPRINT_ARTIFACT)
    except (MlflowException, OSError):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def fingerprint_train_dates(fingerprint: dict[str, Any] | None) -> list[dt.date]:
    """Train snapshot dates recorded in the fingerprint ({"snapshot_dates": {"train": [...]}})."""
    if not fingerprint:
        return []
    dates = (fingerprint.get("snapshot_dates") or {}).get(TRAIN_SPLIT) or []
    return sorted(dt.date.fromisoformat(str(d)[:10]) for d in dates)


def load_reference(
    con: duckdb.DuckDBPyConnection,
    champion: ServedModel,
    fingerprint: dict[str, Any] | None,
    sample_rows: int,
    seed: int,
    extra_columns: tuple[str, ...] = (),
) -> Reference | None:
    """Sampled champion training rows with their champion scores; None when there are no train rows.

    extra_columns: other training-set columns monitoring compares, kept when the training set has them.
    """
    recorded = fingerprint_train_dates(fingerprint)
    available = {
        row[0]
        for row in con.execute(
            "select distinct snapshot_date from training.training_set where split = ?", [TRAIN_SPLIT]
        ).fetchall()
    }
    if not available:
        return None
    if recorded and set(recorded) <= available:
        dates, source, note = (
            recorded,
            "fingerprint",
            "train snapshots of the champion's training fingerprint",
        )
    else:
        dates, source = sorted(available), "current_train_split"
        note = (
            "the champion's run has no training fingerprint"
            if not recorded
            else "the training set no longer holds the champion's train snapshots"
        ) + "; the current train split stands in"
    # A feature the training set no longer has (renamed since the champion was trained) is scored as
    # missing rather than failing the nightly run; the note names it.
    present = {name for (name, *_) in con.execute("describe training.training_set").fetchall()}
    missing = [name for name in champion.feature_names if name not in present]
    if missing:
        note += f"; not in the training set: {', '.join(missing)}"
    extra = [name for name in extra_columns if name in present and name not in champion.feature_names]
    columns = ", ".join(
        [f't."{name}"' if name in present else f'null as "{name}"' for name in champion.feature_names]
        + [f't."{name}"' for name in extra]
    )
    train = f"t.split = '{TRAIN_SPLIT}' and t.snapshot_date in (select unnest($dates::date[]))"
    train_rows = con.execute(
        f"select count(*) from training.training_set t where {train}", {"dates": dates}
    ).fetchone()[0]
    # The sample's row ids are drawn first, then its rows read: a top-N over the wide rows carried every
    # column of the ~8 M train rows of 1,000,000 companies through the sort (11 s; 5 s this way).
    frame = con.execute(
        f"""with sample as (
            select rowid as row_id from training.training_set t where {train}
            order by hash(siren, snapshot_date, $seed::bigint), siren, snapshot_date limit $rows
        )
        select t.siren, t.snapshot_date, {columns}
        from training.training_set t where t.rowid in (select row_id from sample)
        order by hash(t.siren, t.snapshot_date, $seed::bigint), t.siren, t.snapshot_date""",
        {"dates": dates, "seed": seed, "rows": sample_rows},
    ).pl()
    frame = frame.with_columns(champion.published_scores(frame).get_column("score"))
    return Reference(frame, dates, train_rows, source, note)
