"""The signals feed (JSON Lines): job postings, press releases, CRM notes and public contracts, with
French type aliases, spaced SIRENs, duplicates and a few deliberately bad records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from ose_assets.demo.common import Clock, bad_sample, day_to_date, fmt_date, spaced, write_lines

# French aliases some feeds use instead of the model vocabulary.
SIGNAL_ALIASES = {
    "fundraising": "levee_de_fonds",
    "hiring": "recrutement",
    "new_site": "nouveau_site",
    "executive_change": "nomination",
}
FEED_SOURCE = {
    "fundraising": "press_release",
    "hiring": "france_travail",
    "new_site": "crm",
    "executive_change": "crm",
    "contract_win": "boamp",
    "partnership": "press_release",
    "layoffs": "press_release",
}


def write_signals(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: Clock, path: Path
) -> int:
    """The signals feed: job postings, press releases, CRM notes, public contracts (JSON Lines)."""
    feed = events.filter("in_feed").join(firms.select("idx", "siren"), on="idx").sort("event_no")
    m = feed.height
    u = pl.Series(rng.random(m))
    source = (
        pl.when((pl.col("signal_type") == "fundraising") & (u > 0.7))
        .then(pl.lit("crm"))
        .otherwise(pl.col("signal_type").replace_strict(FEED_SOURCE))
    )
    feed = feed.with_columns(source=source, u=u, v=pl.Series(rng.random(m)))
    prefix = pl.col("source").replace_strict(
        {"france_travail": "FT", "press_release": "PR", "crm": "CRM", "boamp": "BOAMP"}
    )
    source_ref = pl.format("{}-{}", prefix, pl.col("event_no").cast(pl.String).str.zfill(9))
    url = (
        pl.when(pl.col("source") == "france_travail")
        .then(pl.format("https://candidat.francetravail.fr/offres/recherche/detail/{}", source_ref))
        .when(pl.col("source") == "boamp")
        .then(pl.format("https://www.boamp.fr/pages/avis/?q=idweb:{}", source_ref))
        .when(pl.col("source") == "press_release")
        .then(pl.format("https://www.communiques.fr/{}", source_ref))
    )
    rows = feed.select(
        siren=pl.when(pl.col("v") < 0.05).then(spaced("siren")).otherwise("siren"),
        date=fmt_date(day_to_date(pl.col("day"))),
        type=pl.when(pl.col("signal_type").is_in(list(SIGNAL_ALIASES)) & (pl.col("u") < 0.25))
        .then(pl.col("signal_type").replace(SIGNAL_ALIASES))
        .otherwise("signal_type"),
        amount=pl.col("amount").round().cast(pl.Int64),
        count="count",
        source="source",
        source_ref=source_ref,
        url=url,
    )
    # The same notice delivered twice (~1 %), and a few deliberately bad records.
    duplicates = bad_sample(rng, rows, 0.01, 1)
    bad_luhn = bad_sample(rng, rows, 0.0007, 1).with_columns(
        siren=pl.col("siren").str.replace_all(" ", "").str.slice(0, 8)
        + ((pl.col("siren").str.slice(-1).cast(pl.Int64) + 1) % 10).cast(pl.String)
    )
    bad_date = bad_sample(rng, rows, 0.0007, 1).with_columns(date=pl.col("date").str.slice(0, 5) + "02-30")
    future = bad_sample(rng, rows, 0.0007, 1).with_columns(
        date=pl.lit((clock.end_date + dt.timedelta(days=200)).isoformat())
    )
    rows = pl.concat([rows, duplicates, bad_luhn, bad_date, future]).sort("date", "source_ref")
    return write_lines(rows.select(pl.struct(pl.all()).struct.json_encode()).to_series(), path)
