"""BODACC open-data export records (JSON Lines), sub-documents JSON-encoded as strings as exported:
announcement numbering, rectificatifs, a few unusable records, then the documents chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ose_assets.demo import reference as ref
from ose_assets.demo.common import Clock, bad_sample, day_to_date, fmt_date, spaced, write_lines

BODACC_FAMILY = {
    "company_creation": "immatriculation",
    "capital_increase": "modification",
    "head_office_transfer": "modification",
    "new_activity": "modification",
    "legal_modification": "modification",
    "executive_change": "modification",
    "business_sale": "vente",
    "accounts_filed": "dpc",
    "conciliation": "conciliation",
    "professional_recovery": "retablissement_professionnel",
    "safeguard_procedure": "collective",
    "receivership": "collective",
    "liquidation": "collective",
    "radiation": "radiation",
}
BODACC_FAMILY_LABEL = {
    "creation": "Créations",
    "immatriculation": "Immatriculations",
    "modification": "Modifications diverses",
    "vente": "Ventes et cessions",
    "dpc": "Dépôts des comptes",
    "radiation": "Radiations",
    "collective": "Procédures collectives",
    "conciliation": "Procédures de conciliation",
    "retablissement_professionnel": "Procédures de rétablissement professionnel",
}
BODACC_PUBLICATION = {"modification": "B", "radiation": "B", "dpc": "C"}  # the others are in BODACC A
JUDGEMENT_NATURE = {
    "safeguard_procedure": "Jugement d'ouverture d'une procédure de sauvegarde",
    "receivership": "Jugement d'ouverture d'une procédure de redressement judiciaire",
    "liquidation": "Jugement d'ouverture d'une procédure de liquidation judiciaire",
    "conciliation": "Jugement d'ouverture d'une procédure de conciliation",
    "professional_recovery": "Jugement d'ouverture d'une procédure de rétablissement professionnel",
}
MODIFICATION_TEXT = {
    "capital_increase": [
        "Modification survenue sur le capital (augmentation). Nouveau capital : {} EUR.",
        "Augmentation du capital social porté à {} EUR.",
    ],
    "head_office_transfer": [
        "Transfert du siège social. Nouvelle adresse : {}.",
        "Modification de l'adresse du siège : {}.",
    ],
    "new_activity": ["Adjonction d'activité : {}.", "Modification de l'objet social. Activité : {}."],
    "legal_modification": [
        "Modification de la dénomination.",
        "Modification de la forme juridique.",
        "Modification de la date de clôture de l'exercice social.",
        "Prorogation de la durée de la société.",
    ],
    "executive_change": [
        "Modification survenue sur l'administration : nomination d'un nouveau président.",
        "Changement de gérant.",
    ],
}


FIRM_COLUMNS = [
    "idx",
    "siren",
    "name",
    "denomination",
    "first_name",
    "last_name",
    "legal_form",
    "naf_label",
    "city",
    "postcode",
    "departement_code",
    "departement_name",
    "region_code",
    "region_name",
    "creation_day",
]
NUMBERING = ("publicationavis", "parution", "dateparution", "registre")
CHUNK_ROWS = 100_000  # the JSON documents are built this many rows at a time (memory)

# Expressions over an announcement row: its family, signal type, publication date and greffe.
FAMILY = pl.col("family")
KIND = pl.col("signal_type")
PUBLISHED = day_to_date(pl.col("pub_day"))
GREFFE = pl.coalesce("city", "departement_name")


def write_bodacc(
    rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame, clock: Clock, path: Path
) -> int:
    """BODACC open-data export records (JSON Lines), sub-documents JSON-encoded as strings as exported."""
    announcements = _announcements(rng, firms, events)
    documents = _documents()
    # Publication numbering first; the JSON documents are built chunk by chunk when writing (memory).
    rows = _numbered(announcements, {name: documents.pop(name) for name in NUMBERING})
    rows = _with_rectificatifs(rng, rows, clock)
    rows = _with_unusable_records(rng, rows)
    line = _json_line()
    return write_lines(
        (
            rows.slice(start, CHUNK_ROWS).with_columns(**documents).select(line).to_series()
            for start in range(0, rows.height, CHUNK_ROWS)
        ),
        path,
    )


def _announcements(rng: np.random.Generator, firms: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """One row per event BODACC publishes, with its family, the company and, for business sales, a
    buyer (named in ~10 % of them) and the draws the documents use."""
    firm_columns = firms.select(FIRM_COLUMNS)
    b = (
        events.filter("in_bodacc")
        .sort("event_no")
        .with_columns(
            converted=(
                (pl.col("signal_type") == "liquidation")
                & ((pl.col("signal_type") == "receivership").cum_sum().over("idx", order_by="event_no") > 0)
            ),
        )
        .join(firm_columns, on="idx")
        .sort("event_no")
    )
    m = b.height
    return (
        b.with_columns(
            family=pl.when((pl.col("signal_type") == "company_creation") & (pl.col("variant") < 2))
            .then(pl.lit("creation"))
            .otherwise(pl.col("signal_type").replace_strict(BODACC_FAMILY)),
            buyer=pl.Series(rng.integers(0, firms.height, m)),
            two_sirens=pl.Series(rng.random(m) < 0.1) & (pl.col("signal_type") == "business_sale"),
            v1_registre=pl.Series(rng.random(m) < 0.15),
            judgement_lag=pl.Series(rng.integers(5, 20, m)),
        )
        .join(
            firm_columns.select(buyer="idx", buyer_siren="siren", buyer_name="name", buyer_form="legal_form"),
            on="buyer",
        )
        .with_columns(two_sirens=pl.col("two_sirens") & (pl.col("buyer_siren") != pl.col("siren")))
        .sort("event_no")
    )


def _parution(published: pl.Expr) -> pl.Expr:
    """Issue number: the year, then a 4-digit issue (about five issues a week)."""
    return pl.format(
        "{}{}",
        published.dt.year(),
        ((published.dt.ordinal_day() * 5) // 7 + 1).cast(pl.String).str.zfill(4),
    )


def _person(siren: str, name: str, form: str) -> pl.Expr:
    """A `personne` of listepersonnes: natural (sole trader) or legal person, with its RCS number."""
    form_label = {code: label for code, (label, _) in ref.LEGAL_FORMS.items()}
    sole = pl.col(form) == "1000"
    return pl.struct(
        typePersonne=pl.when(sole).then(pl.lit("pp")).otherwise(pl.lit("pm")),
        denomination=pl.when(~sole).then(name),
        formeJuridique=pl.col(form).replace_strict(form_label),
        numeroImmatriculation=pl.struct(
            numeroIdentification=spaced(siren), codeRCS=pl.lit("RCS"), nomGreffeImmat=GREFFE
        ),
    )


def _modification_text() -> pl.Expr:
    """modificationsgenerales.descriptif: one of the type's MODIFICATION_TEXT variants, filled in."""
    text_args = {
        "capital_increase": pl.col("amount").round().cast(pl.Int64).cast(pl.String),
        "head_office_transfer": pl.concat_str("postcode", GREFFE, separator=" "),
        "new_activity": pl.col("naf_label"),
    }
    descriptif = pl.lit(None, pl.String)
    for signal_type, variants in MODIFICATION_TEXT.items():
        for i, template in enumerate(variants):
            chosen = (KIND == signal_type) & (pl.col("variant") % len(variants) == i)
            text = pl.format(template, text_args[signal_type]) if "{}" in template else pl.lit(template)
            descriptif = pl.when(chosen).then(text).otherwise(descriptif)
    return descriptif


def _registre() -> pl.Expr:
    """`registre` as raw JSON: a string in API v1 ("spaced,plain"), else an array of both spellings
    of each SIREN (seller and buyer of a sale naming both)."""
    return (
        pl.when("v1_registre")
        .then(pl.format('"{},{}"', spaced("siren"), "siren"))
        .when("two_sirens")
        .then(
            pl.format('["{}","{}","{}","{}"]', "siren", spaced("siren"), "buyer_siren", spaced("buyer_siren"))
        )
        .otherwise(pl.format('["{}","{}"]', "siren", spaced("siren")))
    )


def _jugement() -> pl.Expr:
    """The judgement of a collective procedure, conciliation or professional recovery (else null)."""
    judgement_day = pl.col("day") - pl.col("judgement_lag")
    nature = (
        pl.when(pl.col("converted"))
        .then(pl.lit("Jugement de conversion en liquidation judiciaire"))
        .otherwise(KIND.replace(JUDGEMENT_NATURE))
    )
    return pl.when(KIND.is_in(list(JUDGEMENT_NATURE))).then(
        pl.struct(
            type=pl.lit("initial"),
            famille=pl.when("converted")
            .then(pl.lit("Jugement de conversion"))
            .otherwise(pl.lit("Jugement d'ouverture")),
            nature=nature,
            date=fmt_date(day_to_date(judgement_day)),
            complementJugement=pl.format(
                "Jugement du tribunal de commerce de {}. Date de cessation des paiements : {}.",
                GREFFE,
                fmt_date(day_to_date(judgement_day - 45)),
            ),
        ).struct.json_encode()
    )


def _acte() -> pl.Expr:
    """The act of a creation, registration or business sale (else null)."""
    return (
        pl.when(FAMILY.is_in(["creation", "immatriculation"]))
        .then(
            pl.struct(
                creation=pl.struct(
                    categorieCreation=pl.when(FAMILY == "creation")
                    .then(pl.lit("Création d'un fonds de commerce"))
                    .otherwise(pl.lit("Immatriculation d'une personne morale suite à création"))
                ),
                dateImmatriculation=fmt_date(day_to_date(pl.col("creation_day"))),
                dateCommencementActivite=fmt_date(day_to_date(pl.col("creation_day"))),
                descriptif=pl.format("Activité : {}.", "naf_label"),
            ).struct.json_encode()
        )
        .when(FAMILY == "vente")
        .then(
            pl.struct(
                vente=pl.struct(categorieVente=pl.lit("Vente de fonds de commerce")),
                dateCommencementActivite=fmt_date(PUBLISHED),
                descriptif=pl.format("Cession d'un fonds de commerce de {}.", "naf_label"),
            ).struct.json_encode()
        )
    )


def _documents() -> dict[str, pl.Expr]:
    """Every field of an announcement but its id and numbering: the publication fields (NUMBERING) and
    the sub-documents, JSON-encoded as strings as the export has them."""
    seller = _person("siren", "name", "legal_form")
    buyer = _person("buyer_siren", "buyer_name", "buyer_form")
    return dict(
        publicationavis=FAMILY.replace_strict(BODACC_PUBLICATION, default="A"),
        parution=_parution(PUBLISHED),
        dateparution=fmt_date(PUBLISHED),
        registre=_registre(),
        # Spliced as text: a list of structs is slow to build in Polars.
        listepersonnes=pl.when("two_sirens")
        .then(pl.format('{{"personne":[{},{}]}}', seller.struct.json_encode(), buyer.struct.json_encode()))
        .otherwise(pl.format('{{"personne":{}}}', seller.struct.json_encode())),
        jugement=_jugement(),
        acte=_acte(),
        modificationsgenerales=pl.when(FAMILY == "modification").then(
            pl.struct(descriptif=_modification_text()).struct.json_encode()
        ),
        radiationaurcs=pl.when(FAMILY == "radiation").then(
            pl.struct(
                radiationPM=pl.when(pl.col("legal_form") != "1000").then(pl.lit("O")),
                radiationPP=pl.when(pl.col("legal_form") == "1000").then(pl.lit("O")),
                dateCessationActivite=fmt_date(day_to_date(pl.col("day") - 30)),
            ).struct.json_encode()
        ),
        depot=pl.when(FAMILY == "dpc").then(
            pl.struct(
                dateCloture=pl.format("{}-12-31", PUBLISHED.dt.year() - 1),
                typeDepot=pl.lit("Comptes annuels et rapports"),
            ).struct.json_encode()
        ),
    )


def _numbered(announcements: pl.DataFrame, numbering: dict[str, pl.Expr]) -> pl.DataFrame:
    """Publication fields, the announcement number within its issue and the id BODACC builds from them."""
    rows = (
        announcements.with_columns(pub_day="day")
        .with_columns(**numbering)
        .with_columns(
            numeroannonce=pl.int_range(1, pl.len() + 1).over(
                "publicationavis", "parution", order_by="event_no"
            )
        )
    )
    return rows.with_columns(
        id=pl.format(
            "{}{}{}", "publicationavis", "parution", pl.col("numeroannonce").cast(pl.String).str.zfill(5)
        )
    )


def _with_rectificatifs(rng: np.random.Generator, rows: pl.DataFrame, clock: Clock) -> pl.DataFrame:
    """Rectificatifs: a few announcements published again a few weeks later, pointing at the first one."""
    fixes = bad_sample(rng, rows, 0.004, 1)
    fixes = fixes.with_columns(
        parutionavisprecedent=pl.struct(
            nomPublication=pl.format("BODACC {}", "publicationavis"),
            numeroParution="parution",
            dateParution="dateparution",
            numeroAnnonce="numeroannonce",
        ).struct.json_encode(),
        pub_day=pl.col("pub_day") + pl.Series(rng.integers(7, 30, fixes.height)),
        typeavis=pl.lit("rectificatif"),
        typeavis_lib=pl.lit("Avis rectificatif"),
    ).filter(pl.col("pub_day") <= clock.end)
    fixes = fixes.with_columns(
        dateparution=fmt_date(PUBLISHED),
        parution=_parution(PUBLISHED),
        numeroannonce=90_000 + pl.int_range(1, pl.len() + 1),
    ).with_columns(
        id=pl.format("{}{}{}", "publicationavis", "parution", pl.col("numeroannonce").cast(pl.String))
    )
    initial = rows.with_columns(
        parutionavisprecedent=pl.lit(None, pl.String),
        typeavis=pl.lit("annonce"),
        typeavis_lib=pl.lit("Avis initial"),
    )
    return pl.concat([initial, fixes], how="diagonal")


def _with_unusable_records(rng: np.random.Generator, rows: pl.DataFrame) -> pl.DataFrame:
    """A few unusable records: no SIREN in registre, or an impossible publication date."""
    no_siren = bad_sample(rng, rows, 0.0005, 1).with_columns(registre=pl.lit("[]"), id=pl.col("id") + "X")
    bad_date = bad_sample(rng, rows, 0.0005, 1).with_columns(
        dateparution=pl.col("dateparution").str.slice(0, 5) + "02-31", id=pl.col("id") + "Y"
    )
    return pl.concat([rows, no_siren, bad_date]).sort("dateparution", "id")


def _json_line() -> pl.Expr:
    """One export record as a JSON line, keys in the export's order."""
    head = pl.struct(
        "id",
        "publicationavis",
        publicationavis_facette=pl.format("Bodacc {}", "publicationavis"),
        parution="parution",
        dateparution="dateparution",
        numeroannonce="numeroannonce",
        typeavis="typeavis",
        typeavis_lib="typeavis_lib",
        familleavis="family",
        familleavis_lib=FAMILY.replace_strict(BODACC_FAMILY_LABEL),
        numerodepartement="departement_code",
        departement_nom_officiel="departement_name",
        region_code=pl.col("region_code").cast(pl.Int64),
        region_nom_officiel="region_name",
        tribunal=pl.format("GREFFE DU TRIBUNAL DE COMMERCE DE {}", GREFFE.str.to_uppercase()),
        commercant="name",
        ville="city",
    ).struct.json_encode()
    tail = pl.struct(
        cp="postcode",
        listepersonnes="listepersonnes",
        listeetablissements=pl.lit(None, pl.String),
        jugement="jugement",
        acte="acte",
        modificationsgenerales="modificationsgenerales",
        radiationaurcs="radiationaurcs",
        depot="depot",
        divers=pl.lit(None, pl.String),
        parutionavisprecedent="parutionavisprecedent",
        url_complete=pl.format("https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:{}", "id"),
    ).struct.json_encode()
    # `registre` is an array (API v2.1) or a string (v1): spliced in as raw JSON between the two halves.
    return pl.concat_str(
        head.str.strip_suffix("}"),
        pl.lit(',"registre":'),
        "registre",
        pl.lit(","),
        tail.str.strip_prefix("{"),
    )
