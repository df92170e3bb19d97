"""SIRENE stocks as INSEE publishes them: `StockUniteLegale_utf8.csv` (35 columns) and
`StockEtablissement_utf8.csv` (head offices, secondary establishments, sites new_site events opened)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from ose_assets.demo import reference as ref
from ose_assets.demo.common import EPOCH, Clock, day_to_date, draw_index, fmt_date, nic, write_csv
from ose_assets.demo.world import place_table, with_commune

SIRENE_COLUMNS = [
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
    "activitePrincipaleNAF25UniteLegale",
]


def _sirene_band_idx() -> pl.Expr:
    """SIRENE's headcount band lags for companies Recherche d'entreprises has a newer, grown value for."""
    return (
        pl.when(pl.col("recherche") == "newer_grown")
        .then((pl.col("band_idx") - 1).clip(0))
        .otherwise("band_idx")
    )


def with_record_dates(rng: np.random.Generator, firms: pl.DataFrame, clock: Clock) -> pl.DataFrame:
    """SIRENE dateDebut (start of the current period) and last processing time of each company."""
    n = firms.height
    return (
        firms.with_columns(
            u=pl.Series(rng.random(n)),
            periods=pl.Series(1 + rng.poisson(0.8, n)),
            seconds=pl.Series(rng.integers(0, 86400, n)),
        )
        .with_columns(
            date_debut=pl.when(pl.col("closed_day").is_not_null())
            .then("closed_day")
            .otherwise(
                pl.col("creation_day")
                + ((clock.end - pl.col("creation_day")) * pl.col("u") * 0.5).cast(pl.Int64)
            ),
        )
        .with_columns(
            processed=pl.min_horizontal(
                clock.end - 1, pl.col("date_debut") + (pl.col("u") * 400).cast(pl.Int64)
            ),
        )
    )


def write_units(firms: pl.DataFrame, clock: Clock, path: Path) -> int:
    end_year = clock.end_date.year
    person = pl.col("legal_form") == "1000"
    hidden = pl.col("statut") == "P"
    band_idx = _sirene_band_idx()
    band_code = band_idx.replace_strict(dict(enumerate(ref.HEADCOUNT_BANDS)))
    category = (
        pl.when(pl.col("creation_day") > (dt.date(end_year - 2, 12, 31) - EPOCH).days)
        .then(None)
        .when(band_idx >= 14)
        .then(pl.lit("GE"))
        .when(band_idx >= 10)
        .then(pl.lit("ETI"))
        .otherwise(pl.lit("PME"))
    )
    nd = pl.lit("[ND]")
    frame = firms
    sirene = frame.select(
        siren="siren",
        statutDiffusionUniteLegale="statut",
        unitePurgeeUniteLegale=pl.when(pl.col("closed_day") < clock.start - 3650).then(pl.lit("true")),
        dateCreationUniteLegale=fmt_date(day_to_date(pl.col("creation_day"))),
        sigleUniteLegale="sigle",
        sexeUniteLegale=pl.when(person & hidden)
        .then(nd)
        .when(person)
        .then(pl.when(pl.col("sexe_f")).then(pl.lit("F")).otherwise(pl.lit("M"))),
        prenom1UniteLegale=pl.when(person & hidden).then(nd).otherwise("first_name"),
        prenom2UniteLegale=pl.lit(None, pl.String),
        prenom3UniteLegale=pl.lit(None, pl.String),
        prenom4UniteLegale=pl.lit(None, pl.String),
        prenomUsuelUniteLegale=pl.when(person & hidden).then(nd).otherwise("first_name"),
        pseudonymeUniteLegale=pl.lit(None, pl.String),
        identifiantAssociationUniteLegale=pl.lit(None, pl.String),
        trancheEffectifsUniteLegale=band_code,
        anneeEffectifsUniteLegale=pl.when(band_code != "NN").then(pl.lit(str(end_year - 2))),
        dateDernierTraitementUniteLegale=(
            day_to_date(pl.col("processed")).cast(pl.Datetime) + pl.duration(seconds=pl.col("seconds"))
        ).dt.to_string("%Y-%m-%dT%H:%M:%S"),
        nombrePeriodesUniteLegale=pl.col("periods").cast(pl.String),
        categorieEntreprise=category,
        anneeCategorieEntreprise=pl.when(category.is_not_null()).then(pl.lit(str(end_year - 2))),
        dateDebut=fmt_date(day_to_date(pl.col("date_debut"))),
        etatAdministratifUniteLegale=pl.when(pl.col("closed_day").is_not_null())
        .then(pl.lit("C"))
        .otherwise(pl.lit("A")),
        nomUniteLegale=pl.when(person & hidden).then(nd).otherwise("last_name"),
        nomUsageUniteLegale=pl.lit(None, pl.String),
        denominationUniteLegale="denomination",
        denominationUsuelle1UniteLegale=pl.when(pl.col("u") < 0.03).then("denomination"),
        denominationUsuelle2UniteLegale=pl.lit(None, pl.String),
        denominationUsuelle3UniteLegale=pl.lit(None, pl.String),
        categorieJuridiqueUniteLegale="legal_form",
        activitePrincipaleUniteLegale="naf_code",
        nomenclatureActivitePrincipaleUniteLegale=pl.lit("NAFRev2"),
        nicSiegeUniteLegale="nic_siege",
        economieSocialeSolidaireUniteLegale=pl.when(pl.col("u") < 0.02)
        .then(pl.lit("O"))
        .otherwise(pl.lit("N")),
        societeMissionUniteLegale=pl.when(person).then(None).otherwise(pl.lit("N")),
        caractereEmployeurUniteLegale=pl.when(band_idx >= 2).then(pl.lit("O")).otherwise(pl.lit("N")),
        activitePrincipaleNAF25UniteLegale=pl.lit(None, pl.String),  # no public NAF 2 -> NAF 25 table shipped
    )
    assert sirene.columns == SIRENE_COLUMNS
    return write_csv(sirene, path)


def write_establishments(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: Clock, path: Path
) -> tuple[int, pl.DataFrame]:
    """Head offices, secondary establishments (more for bigger companies) and the sites new_site events
    opened; also returns each company's establishment counts."""
    secondary_mean = np.array([0.03, 0.03, 0.05, 0.08, 0.2, 0.5, 1, 2, 3, 5, 5, 8, 8, 12, 12, 12])
    counts = np.minimum(rng.poisson(secondary_mean[firms["band_idx"].to_numpy()]), 30)
    owner = np.repeat(np.arange(firms.height), counts)
    sites = events.filter(pl.col("signal_type") == "new_site")
    owners = np.concatenate([owner, sites["idx"].to_numpy()]).astype(np.int64)
    places = place_table()
    place = draw_index(rng, places["weight"].to_numpy(), owners.size)
    created_at = np.concatenate(
        [np.full(owner.size, -1), sites["day"].to_numpy() - rng.integers(0, 45, sites.height)]
    )
    secondary = (
        pl.DataFrame(
            {
                "idx": owners,
                "place": place,
                "created": created_at,
                "u_commune": rng.random(owners.size),
                "u_postcode": rng.random(owners.size),
                "u": rng.random(owners.size),
            }
        )
        .join(places.drop("weight").with_row_index("place"), on="place")
        .join(firms.select("idx", "siren", "creation_day", "closed_day", "naf_code"), on="idx")
        .with_columns(
            created=pl.when(pl.col("created") >= 0)
            .then("created")
            .otherwise(
                pl.col("creation_day")
                + ((clock.end - pl.col("creation_day")).clip(0) * pl.col("u") * 0.5).cast(pl.Int64)
            ),
            head_office=pl.lit(False),
            band=pl.lit("NN"),
            closed=pl.col("closed_day").is_not_null() | (pl.col("u") < 0.15),
        )
    )
    secondary = with_commune(secondary)
    site_columns = ["idx", "siren", "commune_code", "postcode", "naf_code", "band"]
    heads = firms.select(
        *site_columns,
        created="creation_day",
        head_office=pl.lit(True),
        closed=pl.col("closed_day").is_not_null(),
        sequence=pl.lit(1, pl.Int64),
    )
    secondary = secondary.sort("idx", "created", "place").with_columns(
        sequence=pl.int_range(2, pl.len() + 2).over("idx")
    )
    columns = [*site_columns, "created", "head_office", "closed", "sequence"]
    rows = pl.concat([heads.select(columns), secondary.select(columns)]).sort("idx", "sequence")
    rows = rows.with_columns(nic=nic(rows["siren"], rows["sequence"].to_numpy()))
    frame = rows.select(
        siren="siren",
        nic="nic",
        siret=pl.col("siren") + pl.col("nic"),
        statutDiffusionEtablissement=pl.lit("O"),
        dateCreationEtablissement=fmt_date(day_to_date(pl.col("created"))),
        trancheEffectifsEtablissement="band",
        etablissementSiege=pl.when("head_office").then(pl.lit("true")).otherwise(pl.lit("false")),
        codePostalEtablissement="postcode",
        codeCommuneEtablissement="commune_code",
        etatAdministratifEtablissement=pl.when("closed").then(pl.lit("F")).otherwise(pl.lit("A")),
        activitePrincipaleEtablissement="naf_code",
        nomenclatureActivitePrincipaleEtablissement=pl.lit("NAFRev2"),
    )
    per_company = rows.group_by("idx").agg(
        establishments=pl.len(), open_establishments=(~pl.col("closed")).sum()
    )
    return write_csv(frame, path), per_company
