"""The hidden truth: the monthly win hazard outcomes are drawn from, and `truth/propensity.parquet`.

The monthly win hazard is a logistic function of what the pipeline can observe (size, sector, region,
legal form, age, recent events with decay), with no hidden company term, so the only irreducible noise
is the outcome draw itself and a model can approach the oracle (`truth.oracle_probability`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ose_assets.demo.common import SIGNAL_TYPES, TYPE_ID, Clock
from ose_assets.settings import model_config

TARGET_MONTHLY_HAZARD = 0.02  # mean monthly win hazard of an active company (~5 % over 90 days)

# Logit points a fresh event adds to the monthly hazard (decaying with the type's model_config
# half-life). Deliberately not model_config's weights: the model has to learn them.
TRUTH_EFFECT = {
    "fundraising": 2.0,
    "capital_increase": 0.7,
    "hiring": 0.7,
    "new_site": 1.4,
    "head_office_transfer": 0.5,
    "company_creation": 0.6,
    "new_activity": 0.7,
    "executive_change": 1.0,
    "contract_win": 1.1,
    "partnership": 0.7,
    "accounts_filed": 0.1,
    "business_sale": 0.2,
    "legal_modification": 0.15,
    "conciliation": -0.9,
    "professional_recovery": -4.0,
    "safeguard_procedure": -2.5,
    "receivership": -4.0,
    "liquidation": -5.0,
    "radiation": -5.0,
    "layoffs": -1.3,
}

SIZE_EFFECT = np.array(
    [-1.6, -1.3, -0.75, -0.35, 0, 0.35, 0.65, 0.85, 1.0, 1.1, 1.15, 1.2, 1.2, 1.2, 1.2, 1.2]
)
SECTOR_EFFECT = {
    "J": 0.8,
    "M": 0.55,
    "K": 0.4,
    "C": 0.45,
    "D": 0.3,
    "H": 0.15,
    "N": 0.25,
    "F": -0.1,
    "Q": -0.4,
    "P": -0.3,
    "I": -0.5,
    "L": -0.55,
    "A": -0.7,
    "S": -0.4,
    "R": -0.3,
    "O": -0.7,
}
REGION_EFFECT = {
    "11": 0.35,
    "84": 0.15,
    "93": 0.05,
    "76": 0.05,
    "52": 0.05,
    "27": -0.1,
    "24": -0.1,
    "44": -0.05,
    "94": -0.3,
    "01": -0.4,
    "02": -0.4,
    "03": -0.4,
    "04": -0.4,
    "06": -0.4,
}
LEGAL_EFFECT = {"1000": -0.8, "6540": -1.0}
# Age effect by years since creation: young companies equip themselves, old ones less so.
AGE_EFFECT_YEARS = np.array([2.0, 5.0, 15.0, 30.0])
AGE_EFFECT = np.array([0.45, 0.25, 0.0, -0.2, -0.35])


def monthly_hazard(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: Clock
) -> np.ndarray:
    """Hidden monthly win hazard (companies x months): size, sector, region, legal form, age and decayed
    events on the logit scale, all observable by the pipeline; zero when the company is not active.
    The randomness left is the outcome draw itself (draw_outcomes): as hard for the oracle as for a
    model."""
    n, months = firms.height, len(clock.month_starts)
    config = model_config()["signal_types"]
    half_life = np.array([config[t]["half_life_days"] for t in SIGNAL_TYPES], dtype=float)
    effect = np.array([TRUTH_EFFECT[t] for t in SIGNAL_TYPES])
    event_company = events["idx"].to_numpy()
    event_type = events["signal_type"].replace_strict(TYPE_ID).to_numpy()
    event_day = events["day"].to_numpy()
    static = (
        SIZE_EFFECT[firms["band_idx"].to_numpy()]
        + firms["naf_section"].replace_strict(SECTOR_EFFECT, default=0.0).to_numpy()
        + firms["region_code"].replace_strict(REGION_EFFECT, default=0.0).to_numpy()
        + firms["legal_form"].replace_strict(LEGAL_EFFECT, default=0.0).to_numpy()
    )
    creation = firms["creation_day"].to_numpy()
    closed = firms["closed_day"].fill_null(np.iinfo(np.int64).max).to_numpy()
    logit = np.empty((n, months), dtype=np.float32)
    active = np.empty((n, months), dtype=bool)
    for m in range(months):
        t0, t1 = clock.month_days[m], clock.month_days[m + 1]
        past = event_day < t0
        weight = effect[event_type[past]] * np.exp2(-(t0 - event_day[past]) / half_life[event_type[past]])
        signal = np.bincount(event_company[past], weights=weight, minlength=n)
        age = AGE_EFFECT[np.searchsorted(AGE_EFFECT_YEARS, (t0 - creation) / 365.25)]
        logit[:, m] = static + age + signal
        active[:, m] = (creation < t0) & (closed >= t1)
    # Intercept set so the average active company-month has the target hazard.
    cells = np.flatnonzero(active.ravel())
    sample = logit.ravel()[cells[rng.integers(0, cells.size, min(cells.size, 300_000))]].astype(float)
    low, high = -15.0, 5.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (
            (mid, high) if (1 / (1 + np.exp(-(mid + sample)))).mean() < TARGET_MONTHLY_HAZARD else (low, mid)
        )
    hazard = 1 / (1 + np.exp(-(logit + np.float32(low))))
    hazard[~active] = 0
    return hazard


def write_propensity(firms: pl.DataFrame, hazard: np.ndarray, clock: Clock, path: Path) -> int:
    """truth/propensity.parquet: (siren, month, monthly_hazard) for every active company-month, written
    month by month so 1,000,000 companies never hold the long table in memory."""
    schema = pa.schema([("siren", pa.string()), ("month", pa.date32()), ("monthly_hazard", pa.float64())])
    sirens = firms["siren"].to_arrow()
    total = 0
    with pq.ParquetWriter(path, schema) as writer:
        for m, month in enumerate(clock.month_starts):
            active = np.flatnonzero(hazard[:, m] > 0)
            writer.write_table(
                pa.table(
                    {
                        "siren": sirens.take(pa.array(active)),
                        "month": pa.array(np.full(active.size, np.datetime64(month, "D"))),
                        "monthly_hazard": pa.array(hazard[active, m].astype(np.float64)),
                    },
                    schema=schema,
                )
            )
            total += active.size
    return total
