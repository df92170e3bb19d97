"""CRM outcomes (`crm_outcomes.csv`): opportunities won at the hidden hazard, lost at a weaker
function of it, open when still running at the end date."""

from __future__ import annotations

import numpy as np
import polars as pl

from ose_assets.demo.common import Clock, day_to_date


def draw_outcomes(
    rng: np.random.Generator, firms: pl.DataFrame, hazard: np.ndarray, clock: Clock
) -> pl.DataFrame:
    """CRM opportunities: won ones close at the hazard, lost ones at a weaker function of it; those still
    running at end_date are open. Month by month, uniform close day within the month."""
    lost_hazard = hazard**0.6
    active = hazard > 0
    lost_hazard *= 1.3 * hazard[active].sum() / max(lost_hazard[active].sum(), 1e-12)
    lost_hazard = np.minimum(lost_hazard, 0.5)
    frames = []
    for status, rates, gap_scale in (("won", hazard, 12.0), ("lost", lost_hazard, 20.0)):
        for m in range(len(clock.month_starts)):
            hit = np.flatnonzero(rng.random(hazard.shape[0]) < rates[:, m])
            length = clock.month_days[m + 1] - clock.month_days[m]
            close = clock.month_days[m] + (rng.random(hit.size) * length).astype(np.int64)
            opened = close - 7 - rng.gamma(2.0, gap_scale, hit.size).astype(np.int64)
            frames.append(
                pl.DataFrame(
                    {"idx": hit.astype(np.int64), "open_day": opened, "close_day": close, "status": status}
                )
            )
    outcomes = (
        pl.concat(frames)
        .filter(pl.col("open_day") <= clock.end)
        .join(firms.select("idx", "siren"), on="idx")
        .with_columns(
            status=pl.when(pl.col("close_day") > clock.end).then(pl.lit("open")).otherwise("status"),
            opportunity_date=day_to_date(pl.col("open_day")),
            closed_date=pl.when(pl.col("close_day") <= clock.end).then(day_to_date(pl.col("close_day"))),
        )
        .sort("opportunity_date", "siren", "status", "close_day")
    )
    return outcomes.select(
        opportunity_id=pl.format("OPP-{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(7)),
        siren="siren",
        opportunity_date="opportunity_date",
        closed_date="closed_date",
        status="status",
    )
