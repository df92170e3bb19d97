"""The training set as the model step reads it, never whole in memory.

Parts: `train` fits the booster; `validation` rows are split by a stable hash of the SIREN into an
`early_stopping` and a `calibration` part (training.early_stopping_share), so early stopping and
calibration never share a row (nor a company); `test` is only evaluated.

Label counts, snapshot dates and category lists are computed in DuckDB. The train rows are streamed in
Arrow record batches of the model's columns only, numbers as FLOAT (XGBoost stores float32 anyway),
into an XGBoost QuantileDMatrix (train.py); only the early-stopping, calibration and test parts are
loaded, with the columns they need. Each part is read in (snapshot_date, siren) order, so the same
rows give the same trees and calibrator however the table was written (unsorted: see snapshots.py).

Negative downsampling (training.negative_sample_share = r): every converted train row is kept, a
non-converted one when the md5 of (siren, snapshot_date, seed) falls below r (negative_kept), and the
kept ones weigh 1 / r, so the expected gradients, hence the probabilities, are those of the full set.
When the kept train rows would pass training.max_train_rows, r is lowered to fit (capped_share): the
fit's cost then stops growing with the number of companies, and the positives, which bound what it
learns, are all kept.
Early-stopping rows are downsampled the same way, unweighted: they only rank (ROC-AUC, which a uniform
sample of the negatives leaves unbiased), and evaluating them took as long as growing the trees.
Calibration and test rows are never downsampled: they measure rates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import polars as pl

from ose_assets.training.snapshots import TRAINING_SET_TABLE

PARTS = ("train", "early_stopping", "calibration", "test")
BATCH_ROWS = 256 * 1024
# Multiplicative (Knuth) hash of the SIREN onto [0, 1): stable across runs, versions and engines.
SIREN_BUCKET = "(coalesce(try_cast(siren as bigint), 0) * 2654435761 % 4294967296) / 4294967296.0"


def part_expression(early_stopping_share: float) -> str:
    """SQL naming the part of a training-set row: train, early_stopping, calibration or test."""
    return (
        f"case when split <> 'validation' then split when {SIREN_BUCKET} < {float(early_stopping_share)!r} "
        "then 'early_stopping' else 'calibration' end"
    )


def negative_kept(share: float, seed: int) -> str:
    """SQL: does downsampling keep this non-converted train row: md5 of (siren, snapshot_date, seed) below
    `share`. md5 is stable across runs and engines, and unrelated to SIREN_BUCKET: a multiplicative hash of
    the SIREN shifted per snapshot kept, for each snapshot, one window of that bucket, so at a share of
    0.04 (1,000,000 companies, max_train_rows 500,000) no early-stopping negative was kept at all."""
    key = f"md5_number_upper(concat_ws('|', siren, snapshot_date, {int(seed)}))"
    return f"{key} / 18446744073709551616.0 < {float(share)!r}"


def capped_share(share: float, positives: int, negatives: int, max_rows: int) -> float:
    """The negative share, lowered when the kept train rows (every positive, `share` of the negatives)
    would exceed `max_rows`; never below one kept negative per positive."""
    if negatives == 0 or positives + share * negatives <= max_rows:
        return share
    return min(share, max(max_rows - positives, positives) / negatives)


@dataclass(frozen=True)
class TrainingRows:
    """One training-set relation (a table, or a registered frame) seen through its parts."""

    con: duckdb.DuckDBPyConnection
    relation: str
    early_stopping_share: float
    negative_share: float = 1.0
    seed: int = 0

    @classmethod
    def from_config(
        cls,
        con: duckdb.DuckDBPyConnection,
        training_config: dict[str, Any],
        relation: str = TRAINING_SET_TABLE,
    ) -> TrainingRows:
        rows = cls(
            con,
            relation,
            float(training_config["early_stopping_share"]),
            float(training_config.get("negative_sample_share", 1.0)),
            int(training_config["seed"]),
        )
        max_rows = training_config.get("max_train_rows")
        if max_rows is None:
            return rows
        share = capped_share(rows.negative_share, *rows.counts()["train"], int(max_rows))
        return replace(rows, negative_share=share)

    def _where(self, name: str) -> str:
        return f"({part_expression(self.early_stopping_share)}) = '{name}'"

    def counts(self) -> dict[str, tuple[int, int]]:
        """(converted, not converted) rows of every part, before downsampling."""
        rows = self.con.execute(
            f"""select part, coalesce(sum(label), 0)::bigint, count(*) - coalesce(sum(label), 0)::bigint
            from (select {part_expression(self.early_stopping_share)} as part, label from {self.relation})
            group by part"""
        ).fetchall()
        found = {name: (int(pos), int(neg)) for name, pos, neg in rows}
        return {name: found.get(name, (0, 0)) for name in PARTS}

    def snapshot_dates(self) -> pl.DataFrame:
        """The distinct (split, snapshot_date) pairs."""
        return self.con.execute(
            f"select distinct split, snapshot_date from {self.relation} order by snapshot_date"
        ).pl()

    def categories(self, categorical: list[str]) -> dict[str, list[str]]:
        """Category lists of the train rows (sorted, so codes are reproducible); later values are missing."""
        return {
            name: [
                row[0]
                for row in self.con.execute(
                    f'select distinct "{name}"::varchar from {self.relation} '
                    f"where split = 'train' and \"{name}\" is not null order by 1"
                ).fetchall()
            ]
            for name in categorical
        }

    def _select(self, columns: list[str], categorical: list[str]) -> str:
        """Columns as the model reads them: numbers as FLOAT, categories as text, the rest as stored."""
        return ", ".join(
            f'"{c}"'
            if c in categorical or c in ("siren", "snapshot_date", "split")
            else f'"{c}"::float as "{c}"'
            for c in columns
        )

    def load(self, name: str, columns: list[str], categorical: list[str]) -> pl.DataFrame:
        """The rows of one part (early_stopping: its negatives downsampled), with these columns only."""
        keep = f" and {self._negatives_kept()}" if name == "early_stopping" else ""
        return self.con.execute(
            f"select {self._select(columns, categorical)} from {self.relation} "
            f"where {self._where(name)}{keep} order by snapshot_date, siren"
        ).pl()

    def load_all(self) -> pl.DataFrame:
        """Every row as stored (the rules prior's statistics at cold start, when labels are few)."""
        return self.con.execute(f"select * from {self.relation}").pl()

    def kept_train_counts(self) -> tuple[int, int]:
        """(converted, not converted) train rows after downsampling."""
        pos, neg = self.con.execute(
            f"""select coalesce(sum(label), 0)::bigint, count(*) - coalesce(sum(label), 0)::bigint
            from {self.relation} where {self._train_filter()}"""
        ).fetchone()
        return int(pos), int(neg)

    def _negatives_kept(self) -> str:
        """SQL: the row is converted, or a non-converted row downsampling keeps."""
        if self.negative_share >= 1.0:
            return "true"
        return f"(label = 1 or {negative_kept(self.negative_share, self.seed)})"

    def _train_filter(self) -> str:
        return f"split = 'train' and {self._negatives_kept()}"

    def train_batches(self, features: list[str], categorical: list[str]) -> Iterator[pl.DataFrame]:
        """The (downsampled) train rows in record batches: features, label and weight (1 / share on
        kept negatives)."""
        weight = 1.0 if self.negative_share >= 1.0 else 1.0 / self.negative_share
        reader = self.con.execute(
            f"""select {self._select(features, categorical)}, label::float as label,
                (case when label = 1 then 1.0 else {weight!r} end)::float as weight
            from {self.relation} where {self._train_filter()} order by snapshot_date, siren"""
        ).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            yield pl.from_arrow(batch)
