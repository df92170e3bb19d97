"""The demo companies: SIRENs, size, legal form, NAF activity, place, creation date and names, drawn
set-wise from the French reference shares in `reference.py`."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from faker import Faker

from ose_assets.demo import reference as ref
from ose_assets.demo.common import EPOCH, Clock, draw_index, draw_sirens, nic


def _name_pools(faker: Faker) -> dict[str, list[str]]:
    """A few thousand French family and first names, drawn once and combined vectorially."""
    last = sorted({faker.last_name().upper() for _ in range(6000)})
    male = sorted({faker.first_name_male() for _ in range(1500)})
    female = sorted({faker.first_name_female() for _ in range(1500)})
    return {"last": last, "male": male, "female": female}


def draw_companies(rng: np.random.Generator, faker: Faker, n: int, clock: Clock) -> pl.DataFrame:
    sirens = draw_sirens(rng, n)
    n = len(sirens)
    band = draw_index(rng, ref.HEADCOUNT_SHARE, n)
    # Creation: ~12 % created inside the window (tiny at first), the rest earlier with an old tail.
    recent = rng.random(n) < 0.12
    old_creation = clock.start - 1 - rng.exponential(9 * 365, n).astype(np.int64)
    new_creation = clock.start + rng.integers(0, clock.end - clock.start - 20, n)
    creation = np.where(recent, new_creation, np.maximum(old_creation, (dt.date(1950, 1, 1) - EPOCH).days))
    band = np.where(recent, draw_index(rng, [0.6, 0.2, 0.12, 0.08], n), band)
    # Legal form by size group.
    group = np.where(band <= 3, 0, np.where(band <= 6, 1, 2))
    mixes = np.array([np.cumsum(ref.LEGAL_FORM_MIX[g]) for g in ("tiny", "small", "large")])
    mixes /= mixes[:, -1:]
    legal = (rng.random(n)[:, None] > mixes[group]).sum(axis=1).clip(0, len(ref.LEGAL_FORM_CODES) - 1)
    legal_code = np.array(ref.LEGAL_FORM_CODES)[legal]
    # NAF: a section by French share, then a sub-class within it; SCIs rent real estate.
    naf = ref.naf_subclasses()
    sections = list(ref.NAF_SECTION_SHARE)
    section = draw_index(rng, list(ref.NAF_SECTION_SHARE.values()), n)
    by_section = naf.filter(pl.col("naf_section").is_in(sections)).with_row_index("row")
    first = np.array([by_section.filter(pl.col("naf_section") == s)["row"].min() for s in sections])
    size = np.array([by_section.filter(pl.col("naf_section") == s).height for s in sections])
    naf_row = first[section] + (rng.random(n) * size[section]).astype(np.int64)
    sci_row = by_section.filter(pl.col("naf_code") == "68.20B")["row"][0]
    naf_row = np.where(legal_code == "6540", sci_row, naf_row)
    # Place: a département by weight, then one of its big communes or another commune of it.
    places = place_table()
    place = draw_index(rng, places["weight"].to_numpy(), n)
    z = rng.standard_normal(n)
    frame = pl.DataFrame(
        {
            "idx": np.arange(n, dtype=np.int64),
            "siren": pl.Series(sirens).cast(pl.String).str.zfill(9),
            "band_idx": band.astype(np.int64),
            "legal_form": legal_code,
            "naf_row": naf_row,
            "place": place,
            "creation_day": creation.astype(np.int64),
            "z": z,
            "name_pattern": draw_index(rng, [0.04, 0.32, 0.15, 0.12, 0.12, 0.25], n),
            "u_last": rng.random(n),
            "u_last2": rng.random(n),
            "u_word": rng.random(n),
            "u_head": rng.random(n),
            "u_tail": rng.random(n),
            "u_first": rng.random(n),
            "sexe_f": rng.random(n) < 0.4,
            "u_commune": rng.random(n),
            "u_postcode": rng.random(n),
        }
    )
    frame = (
        frame.join(
            by_section.select("row", "naf_code", "naf_label", "naf_section"),
            left_on="naf_row",
            right_on="row",
        )
        .join(places.drop("weight").with_row_index("place"), on="place")
        .sort("idx")
        .with_columns(band=pl.col("band_idx").replace_strict(dict(enumerate(ref.HEADCOUNT_BANDS))))
    )
    frame = with_commune(frame)
    frame = _with_names(frame, _name_pools(faker))
    # ~12 % also in Recherche d'entreprises: half updated after the SIRENE record (some with a grown
    # headcount: the newest value is the true one), half older (some with a stale, smaller headcount).
    u = rng.random(n)
    recherche = np.select(
        [u < 0.036, u < 0.06, u < 0.084, u < 0.12], ["newer_grown", "newer", "older_stale", "older"], ""
    )
    frame = frame.with_columns(
        recherche=pl.Series(recherche).replace("", None),
        statut=pl.when((pl.col("legal_form") == "1000") & (pl.Series(rng.random(n)) < 0.03))
        .then(pl.lit("P"))
        .otherwise(pl.lit("O")),
        sigle=pl.when((pl.Series(rng.random(n)) < 0.03) & pl.col("denomination").str.contains(" ")).then(
            pl.col("denomination").str.split(" ").list.eval(pl.element().str.slice(0, 1)).list.join("")
        ),
        nic_siege=nic(frame["siren"], np.ones(n, dtype=np.int64)),
    )
    return frame.drop(
        "naf_row",
        "place",
        "u_commune",
        "u_postcode",
        "u_last",
        "u_last2",
        "u_word",
        "u_head",
        "u_tail",
        "u_first",
        "name_pattern",
    )


def place_table() -> pl.DataFrame:
    """Sampling table: each big commune, plus one 'other commune' row per département."""
    deps = ref.departements()
    cities = pl.DataFrame(
        ref.CITIES, schema=["city", "departement_code", "commune_code", "postcode"], orient="row"
    )
    per_dep = cities.group_by("departement_code").agg(n_cities=pl.len())
    deps = deps.join(per_dep, on="departement_code", how="left").with_columns(
        city_share=pl.when(pl.col("n_cities").is_null())
        .then(0.0)
        .otherwise(pl.col("departement_code").replace_strict(ref.CITY_SHARE, default=ref.DEFAULT_CITY_SHARE))
    )
    city_rows = cities.join(deps, on="departement_code").with_columns(
        weight=pl.col("weight") * pl.col("city_share") / pl.col("n_cities")
    )
    other_rows = deps.filter(pl.col("city_share") < 1).with_columns(
        weight=pl.col("weight") * (1 - pl.col("city_share")),
        city=pl.lit(None, pl.String),
        commune_code=pl.lit(None, pl.String),
        postcode=pl.lit(None, pl.String),
    )
    columns = [
        "departement_code",
        "departement_name",
        "region_code",
        "region_name",
        "city",
        "commune_code",
        "postcode",
        "weight",
    ]
    return pl.concat([city_rows.select(columns), other_rows.select(columns)]).sort(
        "departement_code", "commune_code"
    )


def with_commune(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill commune and postcode of companies outside the big communes, consistent with the département."""
    dep = pl.col("departement_code")
    overseas = dep.str.len_chars() == 3
    commune_number = (pl.col("u_commune") * pl.when(overseas).then(34).otherwise(699)).cast(pl.Int64) + 1
    postcode_number = (pl.col("u_postcode") * 98).cast(pl.Int64) + 1
    commune = (
        pl.when(overseas)
        .then(dep + commune_number.cast(pl.String).str.zfill(2))
        .otherwise(dep + commune_number.cast(pl.String).str.zfill(3))
    )
    postcode = (
        pl.when(overseas)
        .then(dep + (postcode_number % 9 + 1).cast(pl.String) + "0")
        .when(dep == "2A")
        .then("201" + (postcode_number % 10).cast(pl.String) + "0")
        .when(dep == "2B")
        .then("202" + (postcode_number % 10).cast(pl.String) + "0")
        .otherwise(dep + (postcode_number * 10).cast(pl.String).str.zfill(3))
    )
    return frame.with_columns(
        commune_code=pl.coalesce("commune_code", commune), postcode=pl.coalesce("postcode", postcode)
    )


def _pool_pick(pool: list[str], u: str) -> pl.Expr:
    return pl.lit(pl.Series(pool)).gather((pl.col(u) * len(pool)).cast(pl.Int64))


def _with_names(frame: pl.DataFrame, pools: dict[str, list[str]]) -> pl.DataFrame:
    """Company names: family names, sector words and invented brands combined set-wise (some collide)."""
    sections = sorted(ref.NAF_SECTION_SHARE)
    words_by_section = {s: ref.NAME_WORDS.get(s, []) + ref.NAME_WORDS["*"] for s in sections}
    flat = [w for s in sections for w in words_by_section[s]]
    offsets = np.cumsum([0] + [len(words_by_section[s]) for s in sections])[:-1]
    word_index = pl.col("naf_section").replace_strict(dict(zip(sections, offsets.tolist(), strict=True))) + (
        pl.col("u_word")
        * pl.col("naf_section").replace_strict({s: len(words_by_section[s]) for s in sections})
    ).cast(pl.Int64)
    last, last2 = _pool_pick(pools["last"], "u_last"), _pool_pick(pools["last"], "u_last2")
    word = pl.lit(pl.Series(flat)).gather(word_index)
    brand = (
        _pool_pick(ref.BRAND_HEADS, "u_head")
        + _pool_pick(ref.BRAND_MIDS, "u_word")
        + _pool_pick(ref.BRAND_TAILS, "u_tail")
    )
    pattern = pl.col("name_pattern")
    denomination = (
        pl.when(pattern == 0)
        .then(last)
        .when(pattern == 1)
        .then(pl.concat_str(last, word, separator=" "))
        .when(pattern == 2)
        .then(pl.concat_str(word, last, separator=" "))
        .when(pattern == 3)
        .then(pl.concat_str(last, pl.lit("ET"), last2, separator=" "))
        .when(pattern == 4)
        .then(brand)
        .otherwise(pl.concat_str(brand, word, separator=" "))
    )
    first_name = (
        pl.when(pl.col("sexe_f"))
        .then(_pool_pick(pools["female"], "u_first"))
        .otherwise(_pool_pick(pools["male"], "u_first"))
    )
    person = pl.col("legal_form") == "1000"
    return frame.with_columns(
        last_name=pl.when(person).then(last),
        first_name=pl.when(person).then(first_name),
        denomination=pl.when(~person).then(denomination),
    ).with_columns(
        name=pl.coalesce(
            "denomination", pl.concat_str("first_name", pl.col("last_name"), separator=" ").str.to_uppercase()
        )
    )
