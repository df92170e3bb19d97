"""Business events of the simulated window (one row per event), the closures they cause, and where
each event is reported: BODACC, the signals feed, the press."""

from __future__ import annotations

import numpy as np
import polars as pl

from ose_assets.demo import reference as ref
from ose_assets.demo.common import SIGNAL_TYPES, TYPE_ID, Clock, draw_index, nullable_series

# Yearly event rates for a 6-9 employee company of average dynamism.
ANNUAL_RATE = {
    "fundraising": 0.02,
    "capital_increase": 0.05,
    "hiring": 0.4,
    "new_site": 0.04,
    "head_office_transfer": 0.04,
    "new_activity": 0.03,
    "executive_change": 0.06,
    "contract_win": 0.06,
    "partnership": 0.03,
    "accounts_filed": 0.35,
    "business_sale": 0.015,
    "legal_modification": 0.08,
    "conciliation": 0.003,
    "layoffs": 0.01,
}
# How strongly a company's latent dynamism (z) raises each event type's rate (lowers it if negative).
# z never enters the hazard directly: it shows only through the events it makes more frequent.
DYNAMISM_LOADING = {
    "fundraising": 0.9,
    "capital_increase": 0.5,
    "hiring": 0.7,
    "new_site": 0.7,
    "head_office_transfer": 0.3,
    "new_activity": 0.4,
    "executive_change": 0.3,
    "contract_win": 0.6,
    "partnership": 0.5,
    "conciliation": -0.6,
    "layoffs": -0.6,
}
# Event-rate multiplier by headcount band (accounts filings do not depend on size).
SIZE_RATE = np.array([0.25, 0.25, 0.4, 0.6, 1.0, 1.6, 2.5, 4.0, 5.0, 7.0, 7.0, 10.0, 10.0, 14.0, 14.0, 14.0])

PRESS_TYPES = [
    "fundraising",
    "hiring",
    "new_site",
    "executive_change",
    "contract_win",
    "partnership",
    "layoffs",
]
BODACC_TYPES = [
    "company_creation",
    "capital_increase",
    "head_office_transfer",
    "new_activity",
    "legal_modification",
    "business_sale",
    "accounts_filed",
    "conciliation",
    "professional_recovery",
    "safeguard_procedure",
    "receivership",
    "liquidation",
    "radiation",
]


def draw_events(
    rng: np.random.Generator, firms: pl.DataFrame, clock: Clock
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Business events of the window (one row each) and the companies with their closure dates.

    Collective procedures and closures are drawn first (a company closed stops having events), then
    every other type as a Poisson count per company spread uniformly over its active days.
    """
    n = firms.height
    band = firms["band_idx"].to_numpy()
    z = firms["z"].to_numpy()
    creation = firms["creation_day"].to_numpy()
    person = (firms["legal_form"] == "1000").to_numpy()
    section = firms["naf_section"].to_numpy()
    # ~8 % of the stock closed before the window: no event, no hazard.
    old = creation < clock.start
    closed_before = old & (rng.random(n) < 0.08)
    closed_day = np.where(
        closed_before, creation + (rng.random(n) * (clock.start - creation)).astype(np.int64), -1
    )
    start = np.maximum(creation + 1, clock.start)
    span = np.maximum(clock.end - start, 0)
    years = np.where(closed_before, 0, span) / 365.25
    parts: list[tuple[np.ndarray, str, np.ndarray]] = []

    def at(mask: np.ndarray, signal_type: str, days: np.ndarray) -> None:
        keep = mask & (days <= clock.end)
        parts.append((np.flatnonzero(keep), signal_type, days[keep]))

    # Collective procedures: ~1 %/year, more for fragile companies and risky sectors.
    risk = 0.01 * years * np.exp(-0.5 * z) * np.where(np.isin(section, ["F", "I", "G"]), 1.5, 1.0)
    insolvent = (rng.random(n) < risk) & (span > 30)
    first_day = start + (rng.random(n) * span).astype(np.int64)
    kind = draw_index(rng, [0.12, 0.58, 0.30], n)  # safeguard, receivership, direct liquidation
    at(insolvent & (kind == 0), "safeguard_procedure", first_day)
    at(insolvent & (kind == 1), "receivership", first_day)
    converted_day = first_day + rng.integers(60, 240, n)
    converted = insolvent & (kind == 1) & (rng.random(n) < 0.45)
    at(converted, "liquidation", converted_day)
    at(insolvent & (kind == 2), "liquidation", first_day)
    liquidated = (insolvent & (kind == 2)) | (converted & (converted_day <= clock.end))
    liquidation_day = np.where(kind == 2, first_day, converted_day)
    # Sole traders: professional recovery, then radiation.
    recovery = person & ~insolvent & (rng.random(n) < 0.002 * years) & (span > 30)
    at(recovery, "professional_recovery", first_day)
    # Closures (radiation): after most liquidations, after recoveries, and voluntary dissolutions.
    radiation_day = np.full(n, -1, dtype=np.int64)
    after_liquidation = liquidation_day + rng.integers(90, 400, n)
    radiation_day = np.where(liquidated & (rng.random(n) < 0.8), after_liquidation, radiation_day)
    radiation_day = np.where(recovery, first_day + rng.integers(30, 120, n), radiation_day)
    voluntary = (
        ~insolvent
        & ~recovery
        & ~closed_before
        & (rng.random(n) < 0.015 * years * np.where(band <= 1, 1.5, 1))
    )
    radiation_day = np.where(voluntary, start + (rng.random(n) * span).astype(np.int64), radiation_day)
    closes = (radiation_day >= 0) & (radiation_day <= clock.end)
    at(closes, "radiation", radiation_day)
    closed_day = np.where(closes, radiation_day, closed_day)
    # Creations inside the window are announced (immatriculation) a few weeks later.
    created = (creation >= clock.start) & (~person | (rng.random(n) < 0.5))
    at(created, "company_creation", creation + rng.integers(3, 30, n))

    active_end = np.where(closed_day >= 0, closed_day - 1, clock.end)
    active_span = np.maximum(active_end - start, 0)
    active_years = np.where(closed_before, 0, active_span) / 365.25
    young = (clock.end - creation) < 3 * 365
    for signal_type, rate in ANNUAL_RATE.items():
        loading = DYNAMISM_LOADING.get(signal_type, 0.0)
        multiplier = np.exp(loading * z - loading**2 / 2)
        if signal_type == "accounts_filed":
            multiplier = multiplier * np.where(person, 0.0, 1.0)
        else:
            multiplier = multiplier * SIZE_RATE[band] * np.where(person, 0.4, 1.0)
        if signal_type == "fundraising":
            multiplier = (
                multiplier * np.where(young, 3.0, 1.0) * np.where(np.isin(section, ["J", "M"]), 2.5, 1.0)
            )
        if signal_type == "layoffs":
            multiplier = multiplier * np.where(band >= 5, 1.0, 0.1)
        counts = rng.poisson(rate * active_years * multiplier)
        company = np.repeat(np.arange(n), counts)
        days = start[company] + (rng.random(company.size) * (active_span[company] + 1)).astype(np.int64)
        parts.append((company, signal_type, days))

    company = np.concatenate([p[0] for p in parts])
    events = pl.DataFrame(
        {
            "idx": company.astype(np.int64),
            "signal_type": np.concatenate([np.full(p[0].size, TYPE_ID[p[1]]) for p in parts]).astype(
                np.int64
            ),
            "day": np.concatenate([p[2] for p in parts]).astype(np.int64),
        }
    ).with_columns(signal_type=pl.col("signal_type").replace_strict(dict(enumerate(SIGNAL_TYPES))))
    events = events.sort("day", "idx", "signal_type").with_row_index("event_no")
    events = _with_magnitude_and_channels(rng, events, firms)
    firms = firms.with_columns(
        closed_day=nullable_series(closed_day, closed_day >= 0),
        insolvent=pl.Series(insolvent),
    )
    return firms, events


def _with_magnitude_and_channels(
    rng: np.random.Generator, events: pl.DataFrame, firms: pl.DataFrame
) -> pl.DataFrame:
    """Amount / count of each event and where it is reported: BODACC, the signals feed, the press."""
    m = events.height
    info = events.join(firms.select("idx", "band_idx", "legal_form"), on="idx", how="left").sort("event_no")
    band = info["band_idx"].to_numpy()
    mid = np.array(ref.HEADCOUNT_MID)[band]
    kind = info["signal_type"].to_numpy()
    lognormal = rng.lognormal(0.0, 0.8, m)
    amount = np.select(
        [kind == "fundraising", kind == "contract_win", kind == "capital_increase"],
        [
            np.round(1.5e6 * lognormal * (1 + mid / 200), -5),
            np.round(0.6e6 * lognormal * (1 + mid / 300), -4),
            np.round(50e3 * lognormal * (1 + mid / 50), -3),
        ],
        np.nan,
    )
    count = np.select(
        [kind == "hiring", kind == "layoffs"],
        [1 + rng.poisson(0.5 + 0.4 * np.sqrt(mid)), 5 + rng.poisson(0.08 * mid + 5)],
        -1,
    )
    u = rng.random(m)
    large = band >= 5
    person = (info["legal_form"] == "1000").to_numpy()
    is_press = np.isin(kind, PRESS_TYPES)
    bodacc_exec = (kind == "executive_change") & (u < 0.3)
    p_article = np.where(kind == "hiring", np.where(count >= 20, 0.5, 0.03), np.where(large, 0.55, 0.2))
    v = rng.random(m)
    article = is_press & ~bodacc_exec & ~person & (v < p_article)
    article_only = article & (rng.random(m) < 0.35)
    press_bad_news = np.isin(kind, ["receivership", "liquidation"]) & large & (v < 0.35)
    return events.with_columns(
        amount=pl.Series(amount).fill_nan(None),
        count=nullable_series(count, count >= 0),
        in_bodacc=pl.Series(np.isin(kind, BODACC_TYPES) | bodacc_exec),
        in_feed=pl.Series(is_press & ~bodacc_exec & ~article_only),
        in_article=pl.Series(article | press_bad_news),
        variant=pl.Series(rng.integers(0, 6, m)),
    )
