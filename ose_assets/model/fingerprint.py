"""What a training run learns from, as hashes: retrain only on new evidence.

The fingerprint of a full refresh is three hashes: the training set's content (every row: SIREN,
snapshot, features, label, split), the feature list, and the model configuration sections that shape
the fit (`training`, `xgboost`, `rules_prior`). Each registered version carries them as tags; a full
refresh whose fingerprint matches a registered version trains nothing (`ose run --retrain` forces it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from ose_assets.training.snapshots import SPLITS, TRAINING_SET_TABLE
from ose_assets.warehouse import digest, table_exists

FINGERPRINT_TAG = "training_fingerprint"
# Tag -> what a change of it means, in run names and decisions.
COMPONENTS = {
    "training_set_hash": "new training data",
    "feature_list_hash": "feature list changed",
    "model_config_hash": "model config changed",
}
CONFIG_SECTIONS = ("training", "xgboost", "rules_prior")


@dataclass(frozen=True)
class SplitDigest:
    rows: int
    positives: int
    digest: str  # content hash of the split's rows


@dataclass(frozen=True)
class InputsFingerprint:
    training_set_hash: str
    feature_list_hash: str
    model_config_hash: str
    splits: dict[str, SplitDigest]

    @property
    def value(self) -> str:
        return digest([self.training_set_hash, self.feature_list_hash, self.model_config_hash])

    def tags(self) -> dict[str, str]:
        return {
            FINGERPRINT_TAG: self.value,
            **{name: getattr(self, name) for name in COMPONENTS},
        }

    def changes(self, tags: dict[str, str] | None) -> str:
        """What differs from a version's tags ('first model' without one)."""
        if tags is None:
            return "first model"
        if FINGERPRINT_TAG not in tags:
            return "first fingerprinted version"
        changed = [label for name, label in COMPONENTS.items() if tags.get(name) != getattr(self, name)]
        return ", ".join(changed) or "inputs unchanged"


def inputs_fingerprint(
    con: duckdb.DuckDBPyConnection, features: list[str], categorical: list[str], config: dict[str, Any]
) -> InputsFingerprint:
    """Hashes of the training set (per split and overall), the feature list and the model config."""
    per_split = (
        con.execute(
            f"""select split, count(*), coalesce(sum(label), 0)::bigint, bit_xor(hash(t))
                from {TRAINING_SET_TABLE} t group by split"""
        ).fetchall()
        if table_exists(con, TRAINING_SET_TABLE)
        else []
    )
    splits = {
        split: SplitDigest(int(rows), int(positives), f"{content:016x}")
        for split, rows, positives, content in per_split
        if split in SPLITS
    }
    return InputsFingerprint(
        training_set_hash=digest({split: vars(part) for split, part in sorted(splits.items())}),
        feature_list_hash=digest({"features": features, "categorical": categorical}),
        model_config_hash=digest({section: config.get(section) for section in CONFIG_SECTIONS}),
        splits=splits,
    )
