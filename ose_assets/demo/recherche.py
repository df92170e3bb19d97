"""Recherche d'entreprises API result objects (JSON Lines) for ~12 % of companies, with finances and
dirigeants; some newer than the SIRENE record, some older."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from faker import Faker

from ose_assets.demo import reference as ref
from ose_assets.demo.common import Clock, day_to_date, fmt_date, write_lines


def write_recherche(
    rng: np.random.Generator,
    faker: Faker,
    firms: pl.DataFrame,
    establishments: pl.DataFrame,
    clock: Clock,
    path: Path,
) -> int:
    """Recherche d'entreprises result objects for ~12 % of companies, with finances and dirigeants."""
    chosen = firms.filter(pl.col("recherche").is_not_null()).join(establishments, on="idx", how="left")
    n = chosen.height
    year = clock.end_date.year
    newer = pl.col("recherche").str.starts_with("newer")
    band_idx = (
        pl.when(pl.col("recherche") == "older_stale")
        .then((pl.col("band_idx") - 1).clip(0))
        .otherwise("band_idx")
    )
    mid = pl.col("band_idx").replace_strict(
        {i: float(v) for i, v in enumerate(ref.HEADCOUNT_MID)}, return_dtype=pl.Float64
    )
    person = pl.col("legal_form") == "1000"
    chosen = chosen.with_columns(
        updated=pl.when(newer)
        .then(pl.min_horizontal(clock.end, pl.col("processed") + pl.Series(rng.integers(1, 90, n))))
        .otherwise(
            pl.max_horizontal(
                pl.col("creation_day") + 1, pl.col("processed") - pl.Series(rng.integers(30, 400, n))
            )
        ),
        revenue=(
            (120 * pl.max_horizontal(mid, 0.7) * pl.Series(rng.lognormal(0, 0.5, n))).round() * 1000
        ).cast(pl.Int64),
        margin=pl.Series(rng.normal(0.04, 0.08, n)),
        growth=pl.Series(rng.normal(0.05, 0.1, n)),
        has_finances=~person
        & (pl.Series(rng.random(n)) < pl.when(pl.col("band_idx") >= 4).then(0.8).otherwise(0.3)),
        n_leaders=pl.when(person)
        .then(0)
        .otherwise(1 + (pl.col("band_idx") >= 5).cast(pl.Int64) + pl.Series(rng.poisson(0.3, n)).clip(0, 1)),
    )
    leaders = _leaders(rng, faker, chosen)
    chosen = chosen.join(leaders, on="idx", how="left").sort("idx")
    date = fmt_date
    state = pl.when(pl.col("closed_day").is_not_null()).then(pl.lit("C")).otherwise(pl.lit("A"))
    band_code = band_idx.replace_strict(dict(enumerate(ref.HEADCOUNT_BANDS)))
    finances_year = {
        str(year - 1): (pl.col("revenue"), pl.col("revenue") * pl.col("margin")),
        str(year - 2): (
            pl.col("revenue") / (1 + pl.col("growth")),
            pl.col("revenue") * pl.col("margin") * 0.9,
        ),
    }
    record = pl.struct(
        siren="siren",
        nom_complet=pl.when(pl.col("sigle").is_not_null())
        .then(pl.format("{} ({})", "name", "sigle"))
        .otherwise("name"),
        nom_raison_sociale="denomination",
        sigle="sigle",
        nombre_etablissements="establishments",
        nombre_etablissements_ouverts="open_establishments",
        siege=pl.struct(
            siret=pl.col("siren") + pl.col("nic_siege"),
            commune="commune_code",
            code_postal="postcode",
            departement="departement_code",
            region="region_code",
            latitude=pl.lit(None, pl.Float64),
            longitude=pl.lit(None, pl.Float64),
            activite_principale="naf_code",
            tranche_effectif_salarie=band_code,
            date_creation=date(day_to_date(pl.col("creation_day"))),
            est_siege=pl.lit(True),
            etat_administratif=state,
        ),
        activite_principale="naf_code",
        section_activite_principale="naf_section",
        categorie_entreprise=pl.when(band_idx >= 14)
        .then(pl.lit("GE"))
        .when(band_idx >= 10)
        .then(pl.lit("ETI"))
        .otherwise(pl.lit("PME")),
        date_creation=date(day_to_date(pl.col("creation_day"))),
        date_fermeture=date(day_to_date(pl.col("closed_day"))),
        etat_administratif=state,
        nature_juridique="legal_form",
        tranche_effectif_salarie=band_code,
        dirigeants=pl.col("dirigeants").fill_null(pl.lit([], pl.List(leaders.schema["dirigeants"].inner))),
        finances=pl.when("has_finances").then(
            pl.struct(
                *(
                    pl.struct(ca=ca.round().cast(pl.Int64), resultat_net=net.round().cast(pl.Int64)).alias(y)
                    for y, (ca, net) in finances_year.items()
                )
            )
        ),
        complements=pl.struct(
            est_entrepreneur_individuel=person,
            est_ess=pl.col("u") < 0.02,
            est_societe_mission=pl.lit(False),
        ),
        date_mise_a_jour=date(day_to_date(pl.col("updated"))),
    )
    return write_lines(chosen.select(record.struct.json_encode()).to_series(), path)


def _leaders(rng: np.random.Generator, faker: Faker, chosen: pl.DataFrame) -> pl.DataFrame:
    """dirigeants[] of each chosen company: 0 (sole traders) to 3 people, from a pre-drawn name pool."""
    pool = sorted({(faker.last_name().upper(), faker.first_name()) for _ in range(800)})
    owner = np.repeat(chosen["idx"].to_numpy(), chosen["n_leaders"].to_numpy())
    pick = rng.integers(0, len(pool), owner.size)
    long = pl.DataFrame(
        {
            "idx": owner,
            "nom": pl.Series([p[0] for p in pool]).gather(pick),
            "prenoms": pl.Series([p[1] for p in pool]).gather(pick),
            "annee_de_naissance": pl.Series(rng.integers(1950, 2000, owner.size)).cast(pl.String),
        }
    ).join(chosen.select("idx", "legal_form"), on="idx")
    first = pl.int_range(pl.len()).over("idx") == 0
    quality = (
        pl.when(pl.col("legal_form").is_in(["5499", "5498", "6540"]))
        .then(pl.lit("Gérant"))
        .when((pl.col("legal_form") == "5599") & first)
        .then(pl.lit("Président du conseil d'administration"))
        .when(first)
        .then(pl.lit("Président"))
        .otherwise(pl.lit("Directeur général"))
    )
    return (
        long.with_columns(qualite=quality, type_dirigeant=pl.lit("personne physique"))
        .group_by("idx", maintain_order=True)
        .agg(dirigeants=pl.struct("nom", "prenoms", "annee_de_naissance", "qualite", "type_dirigeant"))
    )
