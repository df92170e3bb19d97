"""BODACC announcements (open-data export): landing, SIREN extraction and mapping onto signal types.

- SIRENs come from `registre` in either spelling (array `["853479236","853 479 236"]`, or v1 string
  `"833 310 592,833310592"`): every distinct Luhn-valid 9-digit number; one signal per company.
- Signal type: `familleavis` (or `acte.creation` when the family is missing), then `jugement.nature`
  for collective procedures, `acte` for creations (the standard "… suite à création d'un établissement
  principal" -> company_creation; a secondary establishment or an opening -> new_site) and
  `modificationsgenerales` for modifications. Texts are compared after label_key (labels.py).
- Corrections: a `rectificatif` replaces the announcement it corrects (its content, the original's
  id and date), an `annulation` removes it. The corrected announcement is the one named in
  `parutionavisprecedent` (numeroParution + numeroAnnonce), else the latest earlier announcement of
  the same family for the same SIREN. A rectificatif whose original is unknown stands for the event;
  an orphan annulation yields nothing.
"""

from __future__ import annotations

from ose_assets.ingestion.labels import label_key_sql
from ose_assets.ingestion.spec import Check, RawSpec, date_checks
from ose_assets.ingestion.sql import clean_text, luhn_valid, parse_date

FIELDS = (
    "id",
    "dateparution",
    "typeavis",
    "familleavis",
    "familleavis_lib",
    "registre",
    "jugement",
    "acte",
    "modificationsgenerales",
    "depot",
    "parutionavisprecedent",
    "parution",
    "numeroannonce",
    "commercant",
)
# Header labels of the CSV export made with labels turned on (compared lower-case).
LABELS = {
    "id": "id",
    "date de parution": "dateparution",
    "type d'avis": "typeavis",
    "famille de l'avis": "familleavis",
    "famille de l'avis (libellé)": "familleavis_lib",
    "catégorie d'avis": "familleavis_lib",
    "registre du commerce et des sociétés": "registre",
    "registre": "registre",
    "jugement": "jugement",
    "acte": "acte",
    "modifications générales": "modificationsgenerales",
    "dépôt des comptes": "depot",
    "parution de l'avis précédent": "parutionavisprecedent",
    "numéro de parution": "parution",
    "numéro d'annonce": "numeroannonce",
    "commerçant": "commercant",
}
SIREN_CANDIDATES = (
    r"list_distinct(regexp_extract_all("
    r"regexp_replace(coalesce(f.registre, ''), '[\s\x{00A0}\x{202F}]', '', 'g'), '\d+'))"
)

BODACC_SPEC = RawSpec(
    table="raw.bodacc_records",
    fields={name: (name,) for name in FIELDS},
    columns={
        "announcement_id": clean_text("f.id"),
        "publication_date": parse_date("f.dateparution"),
        "typeavis": f"lower({clean_text('f.typeavis')})",
        "familleavis": f"lower({clean_text('f.familleavis')})",
        "familleavis_lib": clean_text("f.familleavis_lib"),
        "sirens": f"list_sort(list_filter({SIREN_CANDIDATES}, "
        f"lambda x: length(x) = 9 and {luhn_valid('x')}))",
        "siren_candidates": SIREN_CANDIDATES,
        "jugement": clean_text("f.jugement"),
        "acte": clean_text("f.acte"),
        "modificationsgenerales": clean_text("f.modificationsgenerales"),
        "depot": clean_text("f.depot"),
        "parutionavisprecedent": clean_text("f.parutionavisprecedent"),
        "parution": clean_text("f.parution"),
        "numeroannonce": clean_text("f.numeroannonce"),
        "commercant": clean_text("f.commercant"),
    },
    checks=(
        Check("announcement_id is null", "missing_id", "'no id'"),
        *date_checks("publication_date", "dateparution", required=True, event=True),
        Check(
            "len(siren_candidates) = 0", "missing_siren", "'registre: ' || coalesce(src.registre, '<empty>')"
        ),
        Check(
            "len(sirens) = 0 and len(list_filter(siren_candidates, lambda x: length(x) <> 9)) > 0",
            "bad_siren_length",
            "'registre: ' || src.registre",
        ),
        Check("len(sirens) = 0", "bad_siren_luhn", "'registre: ' || src.registre"),
    ),
    formats=("csv", "jsonl", "json", "parquet"),
    labels=LABELS,
    document_fields=("jugement", "acte", "modificationsgenerales", "depot", "parutionavisprecedent"),
)


def _json_text(column: str, path: str) -> str:
    """A key of a JSON-text column; NULL (not an error) when the column is not valid JSON."""
    return f"case when json_valid({column}) then json_extract_string({column}, '{path}') end"


def _json_words(column: str) -> str:
    """Every text value of a JSON-text column, decoded (`\\u00e9` is é); the text itself if not JSON."""
    values = f"array_to_string(json_extract_string({column}, '$.**'), ' ')"
    return f"case when json_valid({column}) then {values} else {column} end"


def _key(expr: str) -> str:
    """label_key of the text, '' when NULL: matched below with LIKE patterns written in key form."""
    return f"coalesce({label_key_sql(expr)}, '')"


# Each label key is computed once per record (a column the CASE below reads many times), not once per
# branch: repeated inline, the keys made classification most of the step's time.
KEYS = {
    "family_key": _key("familleavis"),
    "nature_key": _key(_json_text("jugement", "$.nature")),
    "acte_key": _key(_json_words("acte")),
    "modification_key": _key(_json_words("modificationsgenerales")),
    "has_creation": f"({_json_text('acte', '$.creation')} is not null)",
}

# Creations: the standard phrase "Immatriculation d'une personne morale (B, C, D) suite à création d'un
# établissement principal" (or "… personne physique …") is a company creation; a secondary
# establishment or an opening (of a company that already exists) is a new site.
SIGNAL_TYPE = """case
    when family_key = 'collective' then case
        when nature_key like '%liquidation%' or nature_key like '%insuffisance_actif%' then 'liquidation'
        when nature_key like '%redressement%' then 'receivership'
        when nature_key like '%sauvegarde%' then 'safeguard_procedure'
        when nature_key like '%retablissement_professionnel%' then 'professional_recovery'
        when nature_key like '%conciliation%' then 'conciliation'
        when nature_key like '%plan_de_cession%' then 'business_sale'
        else 'receivership' end
    when family_key = 'conciliation' then 'conciliation'
    when family_key = 'retablissement_professionnel' then 'professional_recovery'
    when family_key in ('creation', 'immatriculation') or (family_key = '' and has_creation) then case
        when acte_key like '%etablissement_principal%' then 'company_creation'
        when acte_key like '%etablissement_secondaire%' or acte_key like '%creation_un_etablissement%'
          or acte_key like '%ouverture_un_etablissement%' then 'new_site'
        else 'company_creation' end
    when family_key = 'modification' then case
        when modification_key like '%augmentation%capital%' or modification_key like '%capital%augment%'
            then 'capital_increase'
        when modification_key like '%transfert%siege%' or modification_key like '%siege_social%'
            then 'head_office_transfer'
        when modification_key like '%etablissement_secondaire%' then 'new_site'
        when modification_key like '%activite%' then 'new_activity'
        when modification_key similar to '.*(gerant|president|dirigeant|directeur_general|administrat).*'
            then 'executive_change'
        else 'legal_modification' end
    when family_key = 'vente' then 'business_sale'
    when family_key = 'dpc' then 'accounts_filed'
    when family_key = 'radiation' then 'radiation'
end"""

DESCRIPTION = f"""left(coalesce({_json_text("jugement", "$.nature")},
    {_json_text("modificationsgenerales", "$.descriptif")}, familleavis_lib, familleavis), 200)"""

# Landed records typed once, without their JSON documents: read by BODACC_SIGNALS_QUERY and
# CORRECTION_COUNTS_QUERY (the caller materialises it as a temp table).
TYPED_TABLE = "bodacc_typed"
TYPED_QUERY = f"""
with keyed as (
    select *, {", ".join(f"{sql} as {name}" for name, sql in KEYS.items())} from {BODACC_SPEC.table}
)
select file_hash, record_number, ingested_at, announcement_id, publication_date, typeavis, familleavis,
    sirens, parution, numeroannonce, {SIGNAL_TYPE} as signal_type, {DESCRIPTION} as description,
    {_json_text("parutionavisprecedent", "$.numeroParution")} as corrected_parution,
    {_json_text("parutionavisprecedent", "$.numeroAnnonce")} as corrected_numeroannonce
from keyed
"""

# One row per (announcement, SIREN) event, corrections applied; columns of normalized.signals but
# signal_family / polarity (joined by the caller). A correction's candidate originals are found by an
# equi-join on SIREN then filtered: the OR inside a LEFT JOIN's ON made DuckDB compare every correction
# with every announcement (a nested-loop join).
BODACC_SIGNALS_QUERY = f"""
with announcements as (
    select t.* exclude (sirens), unnest(t.sirens) as siren from {TYPED_TABLE} t
), typed as (
    select * from announcements
    qualify row_number() over (
        partition by announcement_id, siren order by ingested_at desc, record_number desc) = 1
), originals as (
    select * from typed where coalesce(typeavis, 'annonce') not in ('rectificatif', 'annulation')
), corrections as (
    select * from typed where typeavis in ('rectificatif', 'annulation')
), candidates as (
    select c.announcement_id, c.siren, o.announcement_id as original_id,
        o.numeroannonce = c.corrected_numeroannonce as same_number, o.publication_date as original_date
    from corrections c join originals o on o.siren = c.siren
    where (o.parution = c.corrected_parution and o.numeroannonce = c.corrected_numeroannonce)
        or (c.corrected_numeroannonce is null and o.familleavis = c.familleavis
            and o.publication_date <= c.publication_date)
), linked as (
    select c.*, k.original_id
    from corrections c left join candidates k on k.announcement_id = c.announcement_id and k.siren = c.siren
    qualify row_number() over (
        partition by c.announcement_id, c.siren
        order by k.same_number desc nulls last, k.original_date desc) = 1
), latest_correction as (
    select * from linked where original_id is not null
    qualify row_number() over (
        partition by original_id, siren
        order by publication_date desc, ingested_at desc, record_number desc) = 1
), events as (
    select o.announcement_id as source_ref, o.siren, o.publication_date as event_date,
        case when c.typeavis = 'rectificatif' then c.signal_type else o.signal_type end as signal_type,
        case when c.typeavis = 'rectificatif' then c.description else o.description end as description,
        coalesce(c.file_hash, o.file_hash) as file_hash, coalesce(c.ingested_at, o.ingested_at) as ingested_at
    from originals o left join latest_correction c on c.original_id = o.announcement_id and c.siren = o.siren
    where c.typeavis is distinct from 'annulation'
    union all
    select announcement_id, siren, publication_date, signal_type, description, file_hash, ingested_at
    from linked where original_id is null and typeavis = 'rectificatif'
)
select md5('bodacc|' || source_ref || '|' || siren) as signal_id, siren, event_date, signal_type,
    cast(null as double) as magnitude, 'bodacc' as source, source_ref,
    'https://www.bodacc.fr/pages/annonces-commerciales-detail/?q.id=id:' || source_ref as source_url,
    description, file_hash, ingested_at
from events where signal_type is not null
"""

CORRECTION_COUNTS_QUERY = f"""
select count(*) filter (where typeavis = 'rectificatif') as rectificatifs,
       count(*) filter (where typeavis = 'annulation') as annulations,
       count(*) filter (where signal_type is null) as announcements_without_signal_type
from {TYPED_TABLE}
"""
