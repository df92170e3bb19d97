"""Reason sentences: one French and one English template per model feature, rendered set-wise.

A template is a pair of Polars expressions over the reasons frame, evaluated once per feature on all
the reasons of that feature (never per company). Columns they read:
  value          Float64, the company's value as the model sees it (booleans 0/1; null = missing)
  feature_value  String, the value as displayed (category label for categorical features)
  evidence_date  Date of the most recent evidence record behind the factor (red flags are dated with it)
  evidence_type  signal_type of that record
Every model feature of the features catalog has a template (checked by a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import polars as pl

from ose_assets.features.catalog import WINDOW_MONTHS, lookback_months
from ose_assets.settings import OSESettings, model_config

VALUE = pl.col("value")
TEXT = pl.col("feature_value")
DATE_FR = pl.col("evidence_date").dt.to_string("%d/%m/%Y")
DATE_EN = pl.col("evidence_date").dt.to_string("%Y-%m-%d")
EVIDENCE_TYPE = pl.col("evidence_type")
# Up to this many days a recency reads "il y a N jours"; beyond, "aucun … depuis N mois".
RECENT_DAYS = 60


@dataclass(frozen=True)
class Template:
    fr: pl.Expr
    en: pl.Expr


# French / English label of every signal type (and of articles of no known event type).
SIGNAL_TYPE_LABELS: dict[str, tuple[str, str]] = {
    "fundraising": ("levée de fonds", "fundraising"),
    "capital_increase": ("augmentation de capital", "capital increase"),
    "hiring": ("recrutement", "hiring"),
    "new_site": ("ouverture d'un site", "new site"),
    "head_office_transfer": ("transfert du siège", "head office transfer"),
    "company_creation": ("création d'entreprise", "company creation"),
    "new_activity": ("nouvelle activité", "new activity"),
    "executive_change": ("changement de dirigeant", "executive change"),
    "contract_win": ("contrat remporté", "contract win"),
    "partnership": ("partenariat", "partnership"),
    "accounts_filed": ("dépôt des comptes", "accounts filed"),
    "business_sale": ("cession de fonds de commerce", "business sale"),
    "legal_modification": ("modification statutaire", "legal modification"),
    "conciliation": ("conciliation", "conciliation"),
    "professional_recovery": ("rétablissement professionnel", "professional recovery"),
    "safeguard_procedure": ("procédure de sauvegarde", "safeguard procedure"),
    "receivership": ("redressement judiciaire", "receivership"),
    "liquidation": ("liquidation judiciaire", "judicial liquidation"),
    "radiation": ("radiation du RCS", "removal from the trade register"),
    "layoffs": ("licenciements", "layoffs"),
    "other": ("autre actualité", "other news"),
}

# Red-flag events, dated with the BODACC publication of the most recent one.
RED_FLAG_EVENTS: dict[str, tuple[str, str]] = {
    "safeguard_procedure": ("Procédure de sauvegarde ouverte le {}", "Safeguard procedure opened on {}"),
    "receivership": (
        "Procédure de redressement judiciaire ouverte le {}",
        "Receivership (redressement judiciaire) opened on {}",
    ),
    "liquidation": ("Liquidation judiciaire prononcée le {}", "Judicial liquidation ordered on {}"),
    "professional_recovery": (
        "Procédure de rétablissement professionnel ouverte le {}",
        "Professional recovery procedure opened on {}",
    ),
    "radiation": ("Radiation du RCS publiée le {}", "Removed from the trade register on {}"),
}


@cache
def region_names() -> dict[str, str]:
    """INSEE région codes (2016 régions) to names, from the committed COG reference file."""
    departements = pl.read_csv(
        OSESettings().reference_dir / "cog_departements.csv", schema_overrides={"region_code": pl.String}
    )
    return dict(departements.select("region_code", "region_name").unique().iter_rows())


# INSEE headcount bands by headcount_band_rank (data/reference/tranches_effectifs.csv), French and English.
HEADCOUNT_BANDS = {
    str(rank): labels
    for rank, labels in enumerate(
        [
            ("unité non employeuse", "no employee (non-employer unit)"),
            ("0 salarié", "0 employees"),
            ("1 ou 2 salariés", "1 or 2 employees"),
            ("3 à 5 salariés", "3 to 5 employees"),
            ("6 à 9 salariés", "6 to 9 employees"),
            ("10 à 19 salariés", "10 to 19 employees"),
            ("20 à 49 salariés", "20 to 49 employees"),
            ("50 à 99 salariés", "50 to 99 employees"),
            ("100 à 199 salariés", "100 to 199 employees"),
            ("200 à 249 salariés", "200 to 249 employees"),
            ("250 à 499 salariés", "250 to 499 employees"),
            ("500 à 999 salariés", "500 to 999 employees"),
            ("1 000 à 1 999 salariés", "1,000 to 1,999 employees"),
            ("2 000 à 4 999 salariés", "2,000 to 4,999 employees"),
            ("5 000 à 9 999 salariés", "5,000 to 9,999 employees"),
            ("10 000 salariés et plus", "10,000 employees or more"),
        ]
    )
}
CATEGORY_LABELS = {
    "PME": ("PME", "SME"),
    "ETI": ("ETI", "mid-sized company"),
    "GE": ("grande entreprise", "large company"),
}
LEGAL_FORM_LABELS = {"sole_trader": ("entrepreneur individuel", "sole trader"), "other": ("autre", "other")}

WINDOW_PHRASES = {
    window: (f"ces {months} derniers mois", f"in the last {months} months")
    for window, months in WINDOW_MONTHS.items()
}

# Count nouns per signal family: (one, many, none) in French, then in English.
FAMILY_NOUNS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "funding": (
        (
            "levée de fonds ou augmentation de capital",
            "levées de fonds ou augmentations de capital",
            "Aucune levée de fonds ni augmentation de capital",
        ),
        (
            "fundraising or capital increase",
            "fundraisings or capital increases",
            "No fundraising or capital increase",
        ),
    ),
    "hiring": (
        ("offre d'emploi publiée", "offres d'emploi publiées", "Aucune offre d'emploi publiée"),
        ("job posting", "job postings", "No job posting"),
    ),
    "expansion": (
        (
            "signal d'expansion (site, transfert, activité)",
            "signaux d'expansion (sites, transferts, activités)",
            "Aucun signal d'expansion",
        ),
        (
            "expansion signal (site, move, activity)",
            "expansion signals (sites, moves, activities)",
            "No expansion signal",
        ),
    ),
    "leadership": (
        ("changement de dirigeant", "changements de dirigeants", "Aucun changement de dirigeant"),
        ("executive change", "executive changes", "No executive change"),
    ),
    "contracts": (
        (
            "contrat ou partenariat annoncé",
            "contrats ou partenariats annoncés",
            "Aucun contrat ni partenariat annoncé",
        ),
        ("contract win or partnership", "contract wins or partnerships", "No contract win or partnership"),
    ),
    "legal": (
        (
            "annonce légale (comptes, cession, modification)",
            "annonces légales (comptes, cessions, modifications)",
            "Aucune annonce légale",
        ),
        (
            "legal notice (accounts, sale, change)",
            "legal notices (accounts, sales, changes)",
            "No legal notice",
        ),
    ),
    "negative": (
        (
            "événement négatif (procédure, licenciements)",
            "événements négatifs (procédures, licenciements)",
            "Aucun événement négatif",
        ),
        ("negative event (procedure, layoffs)", "negative events (procedures, layoffs)", "No negative event"),
    ),
}


# ---- expression helpers ----------------------------------------------------------------------------
def _int(expr: pl.Expr = VALUE) -> pl.Expr:
    return expr.round(0).cast(pl.Int64).cast(pl.String)


def _decimal_fr(expr: pl.Expr) -> pl.Expr:
    return expr.round(1).cast(pl.String).str.replace(".", ",", literal=True)


def _label(mapping: dict[str, tuple[str, str]], lang: int, expr: pl.Expr = TEXT) -> pl.Expr:
    return expr.replace_strict({k: v[lang] for k, v in mapping.items()}, default=expr, return_dtype=pl.String)


def _count(window: str, fr: tuple[str, str, str], en: tuple[str, str, str]) -> Template:
    """'3 offres d'emploi publiées ces 3 derniers mois' / 'Aucune offre d'emploi publiée …'."""
    suffix_fr, suffix_en = WINDOW_PHRASES.get(window, ("", ""))

    def sentence(forms, suffix):
        one, many, none = forms
        n = VALUE.fill_null(0)
        text = (
            pl.when(n == 0)
            .then(pl.lit(none))
            .when(n == 1)
            .then(pl.lit(f"1 {one}"))
            .otherwise(pl.format(f"{{}} {many}", _int(n)))
        )
        return pl.format("{} {}", text, pl.lit(suffix)).str.strip_chars() if suffix else text

    return Template(sentence(fr, suffix_fr), sentence(en, suffix_en))


def _duration(days: pl.Expr, lang: int) -> pl.Expr:
    words = [("jour", "jours", "mois", "an", "ans"), ("day", "days", "months", "year", "years")][lang]
    months = (days / 30.44).floor()
    years = (days / 365.25).floor()
    return (
        pl.when(days <= 1)
        .then(pl.lit(f"1 {words[0]}"))
        .when(days < RECENT_DAYS)
        .then(pl.format(f"{{}} {words[1]}", _int(days)))
        .when(days < 730)
        .then(pl.format(f"{{}} {words[2]}", _int(months)))
        .otherwise(pl.format(f"{{}} {words[4]}", _int(years)))
    )


def _recency(fr: tuple[str, str], en: tuple[str, str]) -> Template:
    """'Dernier signal il y a 12 jours' / 'Aucun signal depuis 8 mois' / 'Aucun signal depuis 12 mois'.
    fr, en: (noun, sentence when there is none within the lookback)."""

    def sentence(noun, none, lang):
        recent, stale = [("Dernier {} il y a {}", "Aucun {} depuis {}"), ("Last {} {} ago", "No {} for {}")][
            lang
        ]
        return (
            pl.when(VALUE.is_null())
            .then(pl.lit(none))
            .when(VALUE <= RECENT_DAYS)
            .then(pl.format(recent, pl.lit(noun), _duration(VALUE, lang)))
            .otherwise(pl.format(stale, pl.lit(noun), _duration(VALUE, lang)))
        )

    return Template(sentence(*fr, 0), sentence(*en, 1))


def red_flag_event(lang: int) -> pl.Expr:
    """'Procédure de redressement judiciaire ouverte le 12/03/2026' from the most recent evidence record;
    null when there is no evidence."""
    date = (DATE_FR, DATE_EN)[lang]
    expr = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for signal_type, sentences in RED_FLAG_EVENTS.items():
        expr = expr.when(EVIDENCE_TYPE == signal_type).then(pl.format(sentences[lang], date))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def _flag(yes: tuple[str, str], no: tuple[str, str]) -> Template:
    """A red flag: the dated event when evidence exists, else a plain sentence."""
    return Template(
        *(
            pl.when(VALUE.fill_null(0) > 0)
            .then(pl.coalesce(red_flag_event(lang), pl.lit(yes[lang])))
            .otherwise(pl.lit(no[lang]))
            for lang in (0, 1)
        )
    )


def _red_flag_count(one: tuple[str, str], many: tuple[str, str], none: tuple[str, str]) -> Template:
    """1 -> the dated event (else `one`); n -> 'n jugements … (dernier le 12/03/2026)'."""
    latest = ("{} {} (dernier le {})", "{} {} (latest on {})")
    dates = (DATE_FR, DATE_EN)

    def sentence(lang):
        n = VALUE.fill_null(0)
        return (
            pl.when(n == 0)
            .then(pl.lit(none[lang]))
            .when(n == 1)
            .then(pl.coalesce(red_flag_event(lang), pl.lit(one[lang])))
            .otherwise(
                pl.coalesce(
                    pl.format(latest[lang], _int(n), pl.lit(many[lang]), dates[lang]),
                    pl.format("{} {}", _int(n), pl.lit(many[lang])),
                )
            )
        )

    return Template(sentence(0), sentence(1))


def _attribute(fr: pl.Expr, en: pl.Expr, unknown: tuple[str, str]) -> Template:
    missing = VALUE.is_null() & TEXT.is_null()
    return Template(
        pl.when(missing).then(pl.lit(unknown[0])).otherwise(fr),
        pl.when(missing).then(pl.lit(unknown[1])).otherwise(en),
    )


def _money(lang: int) -> pl.Expr:
    millions, thousands = VALUE / 1e6, VALUE / 1e3
    if lang == 0:
        return (
            pl.when(VALUE.abs() >= 1e6)
            .then(pl.format("{} M€", _decimal_fr(millions)))
            .when(VALUE.abs() >= 1e3)
            .then(pl.format("{} k€", _int(thousands)))
            .otherwise(pl.format("{} €", _int()))
        )
    return (
        pl.when(VALUE.abs() >= 1e6)
        .then(pl.format("€{}M", millions.round(1).cast(pl.String)))
        .when(VALUE.abs() >= 1e3)
        .then(pl.format("€{}k", _int(thousands)))
        .otherwise(pl.format("€{}", _int()))
    )


def _build_templates() -> dict[str, Template]:
    windows = list(WINDOW_MONTHS)
    # A null recency: nothing within the lookback (older records are not read).
    within = (f"depuis {lookback_months()} mois", f"for {lookback_months()} months")
    templates: dict[str, Template] = {
        "days_since_last_signal": _recency(
            ("signal", f"Aucun signal {within[0]}"), ("signal", f"No signal {within[1]}")
        ),
        "days_since_last_positive_signal": _recency(
            ("signal positif", f"Aucun signal positif {within[0]}"),
            ("positive signal", f"No positive signal {within[1]}"),
        ),
        "days_since_last_red_flag": Template(
            *(
                pl.when(VALUE.is_null())
                .then(pl.lit(none))
                .otherwise(pl.coalesce(red_flag_event(lang), pl.format(fallback, _duration(VALUE, lang))))
                for lang, none, fallback in (
                    (
                        0,
                        f"Aucune procédure collective ni radiation {within[0]}",
                        "Dernière procédure collective ou radiation il y a {}",
                    ),
                    (
                        1,
                        f"No collective procedure or removal {within[1]}",
                        "Last collective procedure or removal {} ago",
                    ),
                )
            )
        ),
        "days_since_last_article": _recency(
            ("article de presse", f"Aucun article de presse {within[0]}"),
            ("press article", f"No press article {within[1]}"),
        ),
        "distinct_signal_types_12m": _count(
            "12m",
            ("seul type de signal", "types de signaux différents", "Aucun signal"),
            ("signal type", "different signal types", "No signal"),
        ),
        "distinct_sources_12m": _count(
            "12m",
            ("seule source de signaux", "sources de signaux différentes", "Aucune source de signaux"),
            ("signal source", "different signal sources", "No signal source"),
        ),
        "decayed_signal_intensity": Template(
            pl.when(VALUE.fill_null(0) == 0)
            .then(pl.lit("Aucun signal récent"))
            .when(VALUE > 0)
            .then(pl.format("Signaux récents favorables (intensité {})", _decimal_fr(VALUE)))
            .otherwise(pl.format("Signaux récents défavorables (intensité {})", _decimal_fr(VALUE))),
            pl.when(VALUE.fill_null(0) == 0)
            .then(pl.lit("No recent signal"))
            .when(VALUE > 0)
            .then(pl.format("Favourable recent signals (intensity {})", VALUE.round(1).cast(pl.String)))
            .otherwise(
                pl.format("Unfavourable recent signals (intensity {})", VALUE.round(1).cast(pl.String))
            ),
        ),
        "red_flag_count": _red_flag_count(
            ("Procédure collective ou radiation publiée", "Collective procedure or removal published"),
            ("procédures collectives ou radiations", "collective procedures or removals"),
            ("Aucune procédure collective ni radiation", "No collective procedure or removal"),
        ),
        "has_red_flag": _flag(
            ("Procédure collective ou radiation publiée", "Collective procedure or removal published"),
            ("Aucune procédure collective ni radiation", "No collective procedure or removal"),
        ),
        "collective_procedure_count": _red_flag_count(
            ("Jugement de procédure collective publié", "Collective procedure judgment published"),
            ("jugements de procédure collective", "collective procedure judgments"),
            ("Aucune procédure collective", "No collective procedure"),
        ),
        "has_collective_procedure": _flag(
            ("Procédure collective en cours", "Collective procedure under way"),
            ("Aucune procédure collective", "No collective procedure"),
        ),
        "is_radiated": _flag(
            ("Radiée du RCS", "Removed from the trade register"),
            ("Inscrite au RCS (non radiée)", "Registered (not removed from the trade register)"),
        ),
        "is_closed": Template(
            pl.when(VALUE.fill_null(0) > 0)
            .then(pl.lit("Entreprise fermée"))
            .otherwise(pl.lit("Entreprise en activité")),
            pl.when(VALUE.fill_null(0) > 0)
            .then(pl.lit("Company closed"))
            .otherwise(pl.lit("Company active")),
        ),
        "layoffs_count_12m": _count(
            "12m",
            ("annonce de licenciements", "annonces de licenciements", "Aucune annonce de licenciements"),
            ("layoff announcement", "layoff announcements", "No layoff announcement"),
        ),
        "negative_press_count_12m": _count(
            "12m",
            ("article de presse négatif", "articles de presse négatifs", "Aucun article de presse négatif"),
            ("negative press article", "negative press articles", "No negative press article"),
        ),
        "momentum_3m_vs_9m": Template(
            pl.when(VALUE.is_null())
            .then(pl.lit("Aucun signal ces 12 derniers mois"))
            .when(VALUE >= 0.2)
            .then(pl.lit("Activité en accélération : plus de signaux ces 3 derniers mois qu'avant"))
            .when(VALUE <= -0.2)
            .then(pl.lit("Activité en ralentissement : moins de signaux ces 3 derniers mois qu'avant"))
            .otherwise(pl.lit("Rythme de signaux stable sur 12 mois")),
            pl.when(VALUE.is_null())
            .then(pl.lit("No signal in the last 12 months"))
            .when(VALUE >= 0.2)
            .then(pl.lit("Accelerating: more signals in the last 3 months than before"))
            .when(VALUE <= -0.2)
            .then(pl.lit("Slowing down: fewer signals in the last 3 months than before"))
            .otherwise(pl.lit("Steady signal rate over 12 months")),
        ),
        "press_positive_share_12m": _attribute(
            pl.format("{} % des articles de presse des 12 derniers mois sont positifs", _int(VALUE * 100)),
            pl.format("{}% of press articles in the last 12 months are positive", _int(VALUE * 100)),
            ("Aucun article de presse ces 12 derniers mois", "No press article in the last 12 months"),
        ),
        "latest_article_event_type": _attribute(
            pl.format("Dernier article de presse : {}", _label(SIGNAL_TYPE_LABELS, 0)),
            pl.format("Latest press article: {}", _label(SIGNAL_TYPE_LABELS, 1)),
            ("Aucun article de presse", "No press article"),
        ),
        "company_age_years": _attribute(
            pl.when(VALUE < 1)
            .then(pl.lit("Entreprise créée il y a moins d'un an"))
            .when(VALUE < 2)
            .then(pl.lit("Entreprise créée il y a 1 an"))
            .otherwise(pl.format("Entreprise créée il y a {} ans", _int(VALUE.floor()))),
            pl.when(VALUE < 1)
            .then(pl.lit("Company founded less than a year ago"))
            .when(VALUE < 2)
            .then(pl.lit("Company founded 1 year ago"))
            .otherwise(pl.format("Company founded {} years ago", _int(VALUE.floor()))),
            ("Date de création inconnue", "Founding date unknown"),
        ),
        "headcount_band_rank": _attribute(
            pl.format("Effectif : {}", _label(HEADCOUNT_BANDS, 0, _int())),
            pl.format("Headcount: {}", _label(HEADCOUNT_BANDS, 1, _int())),
            ("Effectif inconnu", "Headcount unknown"),
        ),
        "headcount_midpoint": _attribute(
            pl.when(VALUE == 0)
            .then(pl.lit("Aucun salarié"))
            .otherwise(pl.format("Environ {} salariés", _int())),
            pl.when(VALUE == 0)
            .then(pl.lit("No employee"))
            .otherwise(pl.format("About {} employees", _int())),
            ("Effectif inconnu", "Headcount unknown"),
        ),
        "category": _attribute(
            pl.format("Catégorie d'entreprise : {}", _label(CATEGORY_LABELS, 0)),
            pl.format("Company category: {}", _label(CATEGORY_LABELS, 1)),
            ("Catégorie d'entreprise inconnue", "Company category unknown"),
        ),
        "legal_form_family": _attribute(
            pl.format("Forme juridique : {}", _label(LEGAL_FORM_LABELS, 0)),
            pl.format("Legal form: {}", _label(LEGAL_FORM_LABELS, 1)),
            ("Forme juridique inconnue", "Legal form unknown"),
        ),
        "naf_section": _attribute(
            pl.format("Secteur d'activité : section NAF {}", TEXT),
            pl.format("Industry: NAF section {}", TEXT),
            ("Secteur d'activité inconnu", "Industry unknown"),
        ),
        "naf_division": _attribute(
            pl.format("Activité : division NAF {}", TEXT),
            pl.format("Activity: NAF division {}", TEXT),
            ("Activité inconnue", "Activity unknown"),
        ),
        "region_code": _attribute(
            pl.format(
                "Siège en région {}",
                TEXT.replace_strict(region_names(), default=TEXT, return_dtype=pl.String),
            ),
            pl.format(
                "Head office in {}", TEXT.replace_strict(region_names(), default=TEXT, return_dtype=pl.String)
            ),
            ("Région du siège inconnue", "Head office region unknown"),
        ),
        "establishment_count": _attribute(
            pl.when(VALUE <= 1)
            .then(pl.lit("Un seul établissement"))
            .otherwise(pl.format("{} établissements", _int())),
            pl.when(VALUE <= 1)
            .then(pl.lit("A single establishment"))
            .otherwise(pl.format("{} establishments", _int())),
            ("Nombre d'établissements inconnu", "Number of establishments unknown"),
        ),
        "latest_revenue": _attribute(
            pl.format("Chiffre d'affaires de {}", _money(0)),
            pl.format("Revenue of {}", _money(1)),
            ("Chiffre d'affaires non publié", "Revenue not published"),
        ),
    }
    counts = {
        "signals": (("signal", "signaux", "Aucun signal"), ("signal", "signals", "No signal")),
        "positive_signals": (
            ("signal positif", "signaux positifs", "Aucun signal positif"),
            ("positive signal", "positive signals", "No positive signal"),
        ),
        "articles": (
            ("article de presse", "articles de presse", "Aucun article de presse"),
            ("press article", "press articles", "No press article"),
        ),
        **{f"{family}_signals": FAMILY_NOUNS[family] for family in model_config()["signal_families"]},
    }
    for prefix, (fr, en) in counts.items():
        for window in windows:
            templates[f"{prefix}_{window}"] = _count(window, fr, en)
    return templates


TEMPLATES: dict[str, Template] = _build_templates()


def render_reasons(reasons: pl.DataFrame) -> pl.DataFrame:
    """Add reason_fr and reason_en, feature by feature (one vectorised pass per feature).

    A feature without a template (a model trained on a newer catalog) reads '<feature> : <value>'.
    """
    parts = []
    for (feature,), part in reasons.partition_by("feature", as_dict=True).items():
        template = TEMPLATES.get(feature)
        if template is None:
            generic = pl.format(f"{feature} : {{}}", TEXT.fill_null("—"))
            template = Template(generic, generic)
        parts.append(part.with_columns(reason_fr=template.fr, reason_en=template.en))
    if not parts:
        return reasons.with_columns(reason_fr=pl.lit(None, pl.String), reason_en=pl.lit(None, pl.String))
    return pl.concat(parts)
