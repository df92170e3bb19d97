"""Shared pieces of the demo generator: the simulated clock, SIREN/SIRET check digits, small draw
helpers and the CSV / JSON Lines writers every format module uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from ose_assets.settings import model_config

SIGNAL_TYPES = list(model_config()["signal_types"])
TYPE_ID = {name: i for i, name in enumerate(SIGNAL_TYPES)}

HISTORY_MONTHS = 30  # signals and outcomes start this many months before end_date's month
FUTURE_MONTHS = 3  # hazard drawn past end_date so opportunities opened lately are still open


EPOCH = dt.date(1970, 1, 1)


class Clock:
    """Day numbers (days since 1970-01-01) of the simulated window and its months."""

    def __init__(self, end: dt.date):
        self.end_date = end
        self.end = (end - EPOCH).days
        end_month = end.replace(day=1)
        self.month_starts = [add_months(end_month, k) for k in range(-HISTORY_MONTHS, FUTURE_MONTHS + 1)]
        self.start = (self.month_starts[0] - EPOCH).days
        self.month_days = np.array(
            [(m - EPOCH).days for m in self.month_starts + [add_months(end_month, FUTURE_MONTHS + 1)]]
        )


def add_months(month: dt.date, k: int) -> dt.date:
    total = month.year * 12 + month.month - 1 + k
    return dt.date(total // 12, total % 12 + 1, 1)


def day_to_date(days) -> pl.Expr | pl.Series:
    """Day numbers to a Polars Date (nulls stay null)."""
    if isinstance(days, pl.Expr):
        return days.cast(pl.Int32).cast(pl.Date)
    return pl.Series(days).cast(pl.Int32).cast(pl.Date)


def luhn_check_digit(prefix: np.ndarray) -> np.ndarray:
    """Check digit that makes each row of digits (n x k) Luhn-valid once appended."""
    k = prefix.shape[1]
    doubled = (k - 1 - np.arange(k)) % 2 == 0  # from the right, the digit next to the check digit doubles
    values = np.where(doubled, prefix * 2, prefix)
    values = np.where(values > 9, values - 9, values)
    return (10 - values.sum(axis=1) % 10) % 10


def digit_matrix(numbers: np.ndarray, width: int) -> np.ndarray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers) % 10


def draw_sirens(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct Luhn-valid SIRENs (int64, ascending as in the SIRENE stock): 8 random digits + check."""
    bodies = np.unique(rng.integers(30_000_000, 100_000_000, int(n * 1.05) + 100))
    while bodies.size < n:  # collisions are rare: top up
        bodies = np.unique(np.concatenate([bodies, rng.integers(30_000_000, 100_000_000, n)]))
    bodies = np.sort(rng.choice(bodies, size=n, replace=False))
    sirens = bodies * 10 + luhn_check_digit(digit_matrix(bodies, 8))
    return sirens[sirens != 356_000_000]  # La Poste's exception: never drawn in practice


def nullable_series(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A Polars series of `values`, null where not `valid` (numpy has no integer null)."""
    return pl.select(pl.when(pl.lit(pl.Series(valid))).then(pl.lit(pl.Series(values)))).to_series()


def draw_index(rng: np.random.Generator, probabilities: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(probabilities, dtype=float)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1)


def write_csv(frame: pl.DataFrame, path: Path) -> int:
    frame.write_csv(path, date_format="%Y-%m-%d")
    return frame.height


def write_lines(lines: pl.Series | Iterable[pl.Series], path: Path) -> int:
    """Write one JSON document per line (already encoded), UTF-8, '\\n' separated; chunks are appended."""
    total = 0
    with path.open("wb") as handle:
        for chunk in [lines] if isinstance(lines, pl.Series) else lines:
            pl.DataFrame({"line": chunk}).write_csv(handle, include_header=False, quote_style="never")
            total += chunk.len()
    return total


def fmt_date(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.to_string("%Y-%m-%d")


def nic(sirens: pl.Series, sequence: np.ndarray) -> pl.Series:
    """NICs (4-digit sequence + check digit) making SIREN + NIC a Luhn-valid SIRET."""
    prefix = sirens.cast(pl.Int64).to_numpy() * 10_000 + sequence
    check = luhn_check_digit(digit_matrix(prefix, 13))
    return pl.Series(sequence * 10 + check).cast(pl.String).str.zfill(5)


def spaced(siren: str | pl.Expr) -> pl.Expr:
    """'853479236' -> '853 479 236', as several sources print SIRENs."""
    s = pl.col(siren) if isinstance(siren, str) else siren
    return pl.concat_str(s.str.slice(0, 3), s.str.slice(3, 3), s.str.slice(6, 3), separator=" ")


def bad_sample(rng: np.random.Generator, frame: pl.DataFrame, rate: float, minimum: int) -> pl.DataFrame:
    """A few rows to corrupt on purpose so quarantine is exercised (well under 1 %)."""
    k = min(frame.height, max(minimum, int(frame.height * rate)))
    return frame[np.sort(rng.choice(frame.height, size=k, replace=False))]
