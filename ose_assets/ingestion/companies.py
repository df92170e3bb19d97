"""Companies: SIRENE stock files and Recherche d'entreprises JSON, merged into normalized.companies.

Merge rule (one row per SIREN): every record describing a SIREN (SIRENE unité légale rows, Recherche
d'entreprises objects) is ranked newest first by record_date (SIRENE dateDernierTraitementUniteLegale,
Recherche date_mise_a_jour), then by landing time, then by position in the file. The newest record
wins: its source, record_date and administrative state (is_active, closed_date) are taken as a whole;
each descriptive field (name, NAF, headcount, category, legal form, creation date, place, revenue…) is
the newest non-null value, so a SIRENE row still gets its revenue from an older Recherche record.
SIRENE rows take their commune, postcode and establishment count from StockEtablissement (the head
office; establishments counted when active, each SIRET at its newest state).
"""

from __future__ import annotations

import duckdb

from ose_assets.ingestion.readers import FileFingerprint, csv_header, parquet_columns
from ose_assets.ingestion.reference import load_reference_tables
from ose_assets.ingestion.spec import Check, RawSpec, date_checks, ensure_raw_table, siren_checks
from ose_assets.ingestion.sql import clean_text, parse_date, siren_digits
from ose_assets.warehouse import replace_table

TABLE = "normalized.companies"


def _fields(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in names}


def _text(field: str) -> str:
    return clean_text(f'f."{field}"')


UNITE_LEGALE_SPEC = RawSpec(
    table="raw.sirene_unite_legale",
    fields=_fields(
        "siren",
        "dateCreationUniteLegale",
        "sigleUniteLegale",
        "prenom1UniteLegale",
        "prenomUsuelUniteLegale",
        "trancheEffectifsUniteLegale",
        "dateDernierTraitementUniteLegale",
        "categorieEntreprise",
        "dateDebut",
        "etatAdministratifUniteLegale",
        "nomUniteLegale",
        "nomUsageUniteLegale",
        "denominationUniteLegale",
        "denominationUsuelle1UniteLegale",
        "categorieJuridiqueUniteLegale",
        "activitePrincipaleUniteLegale",
        "nomenclatureActivitePrincipaleUniteLegale",
        "nicSiegeUniteLegale",
        "activitePrincipaleNAF25UniteLegale",
    ),
    columns={
        "siren": siren_digits("f.siren"),
        "name": f"""coalesce({_text("denominationUniteLegale")}, {_text("denominationUsuelle1UniteLegale")},
            nullif(trim(concat_ws(' ',
                coalesce({_text("prenomUsuelUniteLegale")}, {_text("prenom1UniteLegale")}),
                coalesce({_text("nomUsageUniteLegale")}, {_text("nomUniteLegale")}))), ''))""",
        "sigle": _text("sigleUniteLegale"),
        "naf_code_raw": _text("activitePrincipaleUniteLegale"),
        "naf_nomenclature": _text("nomenclatureActivitePrincipaleUniteLegale"),
        "naf25_code_raw": _text("activitePrincipaleNAF25UniteLegale"),
        "headcount_band": _text("trancheEffectifsUniteLegale"),
        "category": _text("categorieEntreprise"),
        "legal_form_code": _text("categorieJuridiqueUniteLegale"),
        "creation_date": parse_date('f."dateCreationUniteLegale"'),
        "state_start_date": parse_date('f."dateDebut"'),
        "administrative_state": _text("etatAdministratifUniteLegale"),
        "nic_siege": _text("nicSiegeUniteLegale"),
        "record_date": parse_date('f."dateDernierTraitementUniteLegale"'),
    },
    checks=(
        *siren_checks("siren", "siren"),
        *date_checks("creation_date", "dateCreationUniteLegale", required=False, event=False),
        *date_checks("state_start_date", "dateDebut", required=False, event=False),
        *date_checks("record_date", "dateDernierTraitementUniteLegale", required=False, event=False),
    ),
    formats=("csv", "parquet"),
)

ETABLISSEMENT_SPEC = RawSpec(
    table="raw.sirene_etablissement",
    fields=_fields(
        "siren",
        "nic",
        "siret",
        "dateCreationEtablissement",
        "etablissementSiege",
        "codePostalEtablissement",
        "codeCommuneEtablissement",
        "etatAdministratifEtablissement",
    ),
    columns={
        "siren": siren_digits("f.siren"),
        "siret": siren_digits("f.siret"),
        "is_head_office": f"lower({_text('etablissementSiege')}) in ('true', 't', '1', 'oui', 'o')",
        "postcode": _text("codePostalEtablissement"),
        "commune_code": _text("codeCommuneEtablissement"),
        "administrative_state": _text("etatAdministratifEtablissement"),
        "creation_date": parse_date('f."dateCreationEtablissement"'),
    },
    checks=(
        *siren_checks("siren", "siren"),
        *date_checks("creation_date", "dateCreationEtablissement", required=False, event=False),
    ),
    formats=("csv", "parquet"),
)

COMPANY_JSON_SPEC = RawSpec(
    table="raw.company_json",
    fields={
        **_fields(
            "siren",
            "nom_complet",
            "nom_raison_sociale",
            "sigle",
            "activite_principale",
            "tranche_effectif_salarie",
            "categorie_entreprise",
            "nature_juridique",
            "date_creation",
            "date_fermeture",
            "etat_administratif",
            "nombre_etablissements_ouverts",
            "nombre_etablissements",
            "finances",
            "dirigeants",
            "date_mise_a_jour",
        ),
        "siege_commune": ("siege.commune",),
        "siege_code_postal": ("siege.code_postal",),
    },
    columns={
        "siren": siren_digits("f.siren"),
        "name": f"coalesce({_text('nom_raison_sociale')}, {_text('nom_complet')})",
        "sigle": _text("sigle"),
        "naf_code_raw": _text("activite_principale"),
        "headcount_band": _text("tranche_effectif_salarie"),
        "category": _text("categorie_entreprise"),
        "legal_form_code": _text("nature_juridique"),
        "creation_date": parse_date("f.date_creation"),
        "closed_date": parse_date("f.date_fermeture"),
        "administrative_state": _text("etat_administratif"),
        "establishment_count": f"try_cast(coalesce({_text('nombre_etablissements_ouverts')}, "
        f"{_text('nombre_etablissements')}) as integer)",
        "commune_code": _text("siege_commune"),
        "postcode": _text("siege_code_postal"),
        "finances": _text("finances"),
        "dirigeants": _text("dirigeants"),
        "record_date": parse_date("f.date_mise_a_jour"),
    },
    checks=(
        *siren_checks("siren", "siren"),
        *date_checks("creation_date", "date_creation", required=False, event=False),
        *date_checks("closed_date", "date_fermeture", required=False, event=False),
        *date_checks("record_date", "date_mise_a_jour", required=False, event=False),
        Check("src.finances is not null and not json_valid(src.finances)", "bad_json_field", "'finances'"),
    ),
    formats=("jsonl", "json"),
    document_fields=("finances", "dirigeants"),
)


def raw_spec(fp: FileFingerprint) -> RawSpec | None:
    """Which company file this is: Recherche JSON, SIRENE unités légales or établissements (by columns)."""
    if fp.file_format in ("jsonl", "json"):
        return COMPANY_JSON_SPEC
    if fp.file_format == "csv":
        columns = csv_header(fp.path, fp.encoding)[1]
    else:
        columns = parquet_columns(fp.path)
    names = {column.strip().lower() for column in columns}
    if {"siren", "siret", "etablissementsiege"} <= names:
        return ETABLISSEMENT_SPEC
    if "siren" in names and any(name.endswith("unitelegale") for name in names):
        return UNITE_LEGALE_SPEC
    return None


def _naf_format(expr: str) -> str:
    """`6201Z`, `62.01z`, ` 62 01 Z` -> `62.01Z`; other shapes are kept (upper case) and get no hierarchy.

    SIRENE's own `62.01Z` is kept as it is, tested by one RE2 match: cleaning every code took 14 of the
    90 s of this build on a 28 M-row stock."""
    code = rf"upper(regexp_replace({expr}, '[\s.]', '', 'g'))"
    return rf"""case when regexp_full_match({expr}, '\d{{2}}\.\d{{2}}[A-Z]') then {expr}
        when regexp_full_match({code}, '\d{{4}}[A-Z]')
        then substr({code}, 1, 2) || '.' || substr({code}, 3) else upper(trim({expr})) end"""


NEWEST_FIRST = "record_date desc nulls last, ingested_at desc, record_number desc"
NAF25 = r"regexp_full_match(m.naf_code, '\d{2}\.\d{2}Y')"

# Unsorted: an ORDER BY siren was a third of this build on a 28 M-row SIRENE stock (53 of 156 s, the
# sort spilling); readers that need an order sort (scores by siren, training rows by date and siren).
COMPANIES_QUERY = f"""
with etab_latest as (
    select * from raw.sirene_etablissement
    qualify row_number() over (partition by siret order by ingested_at desc, record_number desc) = 1
), etab as materialized (
    select siren,
        count(*) filter (where administrative_state = 'A') as establishment_count,
        arg_max({{'commune_code': commune_code, 'postcode': postcode}},
                (administrative_state = 'A')::int * 100000 + coalesce(year(creation_date), 0))
            filter (where is_head_office) as head_office
    from etab_latest group by siren
), sirene as not materialized (
    -- Not materialized although `records` reads it twice: a copy of a 28 M-row stock cost 15 s more.
    select u.siren, u.name, u.sigle,
        coalesce(case when coalesce(u.naf_nomenclature, 'NAFRev2') = 'NAFRev2' then u.naf_code_raw end,
                 u.naf25_code_raw, u.naf_code_raw) as naf_code,
        u.headcount_band, u.category, u.legal_form_code, u.creation_date,
        case when u.administrative_state = 'C' then coalesce(u.state_start_date, u.record_date) end
            as closed_date,
        case u.administrative_state when 'A' then true when 'C' then false end as is_active,
        e.establishment_count, e.head_office.commune_code as commune_code, e.head_office.postcode as postcode,
        cast(null as varchar) as finances, cast(null as varchar) as dirigeants,
        'sirene' as source, u.record_date, u.ingested_at, u.record_number
    from raw.sirene_unite_legale u left join etab e using (siren)
), recherche as (
    select siren, name, sigle, naf_code_raw as naf_code, headcount_band, category, legal_form_code,
        creation_date, closed_date,
        case administrative_state when 'A' then true when 'C' then false end as is_active,
        establishment_count, commune_code, postcode, finances, dirigeants,
        'recherche_entreprises' as source, record_date, ingested_at, record_number
    from raw.company_json
), records as not materialized (
    -- Scanned twice (few rows in the ranking, the others once) rather than copied in full first.
    select * from sirene union all by name select * from recherche
), repeated as (
    -- SIRENs described by more than one record (a few, against millions of single ones): only they
    -- go through the ranking and the per-field merge.
    select siren from (select siren from raw.sirene_unite_legale union all select siren from raw.company_json)
    group by siren having count(*) > 1
), ranked as (
    select *, row_number() over (partition by siren order by {NEWEST_FIRST}) as recency
    from records semi join repeated using (siren)
), revenue as (
    -- Latest fiscal year with a turnover, from the newest record that has finances.
    select siren, arg_max(ca, year) as revenue, max(year) as revenue_year from (
        select siren, try_cast(year as integer) as year,
            try_cast(json_extract_string(finances, '$."' || year || '".ca') as double) as ca
        from (select siren, finances, unnest(json_keys(finances)) as year from (
                select siren, finances from raw.company_json where finances is not null
                qualify row_number() over (partition by siren order by {NEWEST_FIRST}) = 1))
    ) where ca is not null and year is not null group by siren
), merged as (
    select siren, source, record_date, {{'is_active': is_active, 'closed_date': closed_date}} as state,
        name, {_naf_format("naf_code")} as naf_code, headcount_band, category, legal_form_code,
        creation_date, establishment_count, commune_code, postcode,
        json_array_length(dirigeants) as executive_count
    from records anti join repeated using (siren)
    union all by name
    select siren,
        arg_min(source, recency) as source, arg_min(record_date, recency) as record_date,
        arg_min({{'is_active': is_active, 'closed_date': closed_date}}, recency) as state,
        arg_min(name, recency) as name, arg_min({_naf_format("naf_code")}, recency) as naf_code,
        arg_min(headcount_band, recency) as headcount_band, arg_min(category, recency) as category,
        arg_min(legal_form_code, recency) as legal_form_code,
        arg_min(creation_date, recency) as creation_date,
        arg_min(establishment_count, recency) as establishment_count,
        arg_min(commune_code, recency) as commune_code, arg_min(postcode, recency) as postcode,
        arg_min(json_array_length(dirigeants), recency) as executive_count
    from ranked group by siren
)
select m.siren::varchar(9) as siren, m.name, m.naf_code, n.naf_label,
    n.naf_section, n.naf_section_label,
    coalesce(n.naf_division, case when {NAF25} then left(m.naf_code, 2) end)
        as naf_division,
    coalesce(n.naf_group, case when {NAF25} then left(m.naf_code, 4) end)
        as naf_group,
    coalesce(n.naf_class, case when {NAF25} then left(m.naf_code, 5) end)
        as naf_class,
    h.headcount_band, h.headcount_band_rank, h.headcount_min, h.headcount_max,
    case when m.category in ('PME', 'ETI', 'GE') then m.category end as category,
    m.legal_form_code,
    case when m.legal_form_code is null then null
         when m.legal_form_code like '1%' then 'sole_trader'
         when m.legal_form_code in ('5710', '5720', '5785') then 'SAS'
         when m.legal_form_code like '54%' then 'SARL'
         when m.legal_form_code like '55%' or m.legal_form_code like '56%' then 'SA'
         else 'other' end as legal_form_family,
    m.creation_date, m.state.closed_date as closed_date,
    coalesce(m.state.is_active, m.state.closed_date is null) as is_active,
    m.establishment_count, r.revenue, r.revenue_year, m.executive_count,
    m.commune_code, m.postcode, d.departement_code, d.region_code, d.region_name,
    m.source, m.record_date
from merged m
left join ref_naf n on n.naf_code = m.naf_code
left join ref_headcount_bands h on h.headcount_band = m.headcount_band
left join ref_departements d on d.departement_code =
    case when m.commune_code like '97%' or m.commune_code like '98%' then left(m.commune_code, 3)
         else left(m.commune_code, 2) end
left join revenue r using (siren)
"""


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty raw company tables when no file of that kind was ever landed, so the merge always runs."""
    for spec in (UNITE_LEGALE_SPEC, ETABLISSEMENT_SPEC, COMPANY_JSON_SPEC):
        ensure_raw_table(con, spec)


def build_companies(con: duckdb.DuckDBPyConnection, reference_dir) -> dict:
    """Rebuild normalized.companies from the raw company tables; return counts for metadata."""
    ensure_raw_tables(con)
    load_reference_tables(con, reference_dir)
    rows = replace_table(con, TABLE, COMPANIES_QUERY)
    unknown_naf, naf25 = con.execute(
        rf"""select count(*) filter (where naf_code is not null and naf_label is null
                                     and not regexp_full_match(naf_code, '\d{{2}}\.\d{{2}}Y')),
                   count(*) filter (where regexp_full_match(naf_code, '\d{{2}}\.\d{{2}}Y'))
            from {TABLE}"""
    ).fetchone()
    return {"companies": rows, "unknown_naf_codes": unknown_naf, "naf2025_codes": naf25}
