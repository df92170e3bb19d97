"""The signal vocabulary of model_config.yaml as SQL: feed aliases, families, polarities, French labels."""

from __future__ import annotations

from ose_assets.ingestion.labels import label_key, label_key_sql
from ose_assets.ingestion.sql import quote_literal
from ose_assets.settings import model_config

# Short French descriptions of feed and press signals (BODACC signals carry the announcement's own text).
LABELS_FR = {
    "fundraising": "Levée de fonds",
    "capital_increase": "Augmentation de capital",
    "hiring": "Recrutement",
    "new_site": "Ouverture d'un nouveau site",
    "head_office_transfer": "Transfert du siège social",
    "company_creation": "Création de l'entreprise",
    "new_activity": "Nouvelle activité",
    "executive_change": "Changement de dirigeant",
    "contract_win": "Contrat remporté",
    "partnership": "Partenariat",
    "accounts_filed": "Dépôt des comptes annuels",
    "business_sale": "Vente ou cession de fonds",
    "legal_modification": "Modification juridique",
    "conciliation": "Procédure de conciliation",
    "professional_recovery": "Rétablissement professionnel",
    "safeguard_procedure": "Procédure de sauvegarde",
    "receivership": "Redressement judiciaire",
    "liquidation": "Liquidation judiciaire",
    "radiation": "Radiation",
    "layoffs": "Plan social ou licenciements",
}


def signal_type_sql(expr: str) -> str:
    """The vocabulary signal_type of a feed's type text (a vocabulary key or an alias), else NULL.

    Both sides go through label_key: `Offre d’emploi` and the alias `offre_emploi` meet."""
    mapping = {label_key(key): key for key in model_config()["signal_types"]}
    aliases = model_config()["ingestion"].get("signal_type_aliases", {})
    mapping.update({label_key(alias): key for alias, key in aliases.items()})
    whens = " ".join(f"when {quote_literal(k)} then {quote_literal(v)}" for k, v in mapping.items())
    return f"case {label_key_sql(expr)} {whens} end"


def vocabulary_values() -> str:
    """VALUES relation (signal_type, signal_family, polarity, label_fr) of the vocabulary."""
    rows = ", ".join(
        f"({quote_literal(name)}, {quote_literal(spec['family'])}, {int(spec['polarity'])}, "
        f"{quote_literal(LABELS_FR.get(name, name))})"
        for name, spec in model_config()["signal_types"].items()
    )
    return f"(select * from (values {rows}) as t(signal_type, signal_family, polarity, label_fr))"
