"""The feature catalog: every column of features.company_features, documented once.

Names are the contract with training (model_feature_names()), scoring (reason sentences keyed by
feature name) and docs/data_dictionary.md (generated from this list by data_dictionary_section()).
Signal-type sets come from model_config.yaml's `signal_types`, so a new type joins its family's
features without touching code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ose_assets.settings import REPO_ROOT, model_config

SIGNALS = "normalized.signals"
ARTICLES = "normalized.articles, normalized.article_companies"
COMPANIES = "normalized.companies"
ARTICLES_EVIDENCE = ("__articles__",)

# Windows: trailing calendar months ending at the as-of date (inclusive), the lookback shared by
# training and scoring ('lookback', model_config features.lookback_months), every record up to the as-of
# date ('all': only the ranking gates), or the company record in force at the as-of date ('as_of').
WINDOW_MONTHS = {"3m": 3, "6m": 6, "12m": 12}
WINDOWS = (*WINDOW_MONTHS, "lookback", "all", "as_of")
DTYPES = ("int", "float", "bool", "category", "date")

# French collective insolvency procedures (Livre VI du Code de commerce); radiation is a red flag too
# but ends the company rather than opening a procedure.
COLLECTIVE_PROCEDURE_TYPES = ("safeguard_procedure", "receivership", "liquidation", "professional_recovery")
RADIATION_TYPE = "radiation"
LAYOFFS_TYPE = "layoffs"

DATA_DICTIONARY_PATH = REPO_ROOT / "docs" / "data_dictionary.md"
DATA_DICTIONARY_HEADING = "## features.company_features"


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str
    window: str
    family: str
    meaning: str
    source: str
    min_value: float | None = None
    max_value: float | None = None
    is_model_feature: bool = True
    evidence_signal_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES or self.window not in WINDOWS:
            raise ValueError(f"feature {self.name}: bad dtype {self.dtype!r} or window {self.window!r}")


def signal_types() -> dict[str, dict]:
    return model_config()["signal_types"]


def lookback_months() -> int:
    """Months of history every history-based feature reads (model_config features.lookback_months)."""
    months = int(model_config()["features"]["lookback_months"])
    if months < max(WINDOW_MONTHS.values()):
        raise ValueError(f"features.lookback_months ({months}) is shorter than the 12-month window counts")
    return months


def _types(predicate) -> tuple[str, ...]:
    return tuple(name for name, spec in signal_types().items() if predicate(spec))


def _window_phrase(window: str) -> str:
    months = lookback_months() if window == "lookback" else WINDOW_MONTHS.get(window)
    return {"all": "up to the as-of date"}.get(window, f"in the {months} months up to the as-of date")


def _build_catalog() -> list[Feature]:
    all_types = tuple(signal_types())
    positive = _types(lambda s: s["polarity"] > 0)
    red_flags = _types(lambda s: s["red_flag"])
    missing = set(COLLECTIVE_PROCEDURE_TYPES + (RADIATION_TYPE, LAYOFFS_TYPE)) - set(all_types)
    if missing:
        raise ValueError(f"model_config signal_types lacks {sorted(missing)} used by the feature catalog")

    def recency(name, what, evidence, source=SIGNALS):
        return Feature(
            name,
            "int",
            "lookback",
            "recency",
            f"Days from the latest {what} to the as-of date (0 = that day); null when there is none "
            f"{_window_phrase('lookback')}.",
            source,
            0,
            None,
            True,
            evidence,
        )

    def count(name, what, window, evidence, family, source=SIGNALS, max_value=None):
        return Feature(
            name,
            "int",
            window,
            family,
            f"Number of {what} {_window_phrase(window)}; 0 when none.",
            source,
            0,
            max_value,
            True,
            evidence,
        )

    features = [
        recency("days_since_last_signal", "signal of any type", all_types),
        recency("days_since_last_positive_signal", "positive signal (polarity +1)", positive),
        recency("days_since_last_red_flag", "red-flag signal (collective procedure, radiation)", red_flags),
        recency("days_since_last_article", "linked press article", ARTICLES_EVIDENCE, ARTICLES),
    ]
    features += [count(f"signals_{w}", "signals of any type", w, all_types, "volume") for w in WINDOW_MONTHS]
    for family in model_config()["signal_families"]:
        family_types = _types(lambda s, f=family: s["family"] == f)
        features += [
            count(
                f"{family}_signals_{w}",
                f"'{family}' family signals ({', '.join(family_types)})",
                w,
                family_types,
                "volume",
            )
            for w in WINDOW_MONTHS
        ]
    features += [
        count(
            "distinct_signal_types_12m",
            "distinct signal types",
            "12m",
            all_types,
            "diversity",
            max_value=len(all_types),
        ),
        count(
            "distinct_sources_12m",
            "distinct signal sources (e.g. bodacc, france_travail)",
            "12m",
            all_types,
            "diversity",
        ),
        Feature(
            "decayed_signal_intensity",
            "float",
            "lookback",
            "intensity",
            f"Sum over signals {_window_phrase('lookback')} of weight * 0.5^(age_days / half_life_days), "
            "weight and half-life per signal type from model_config.yaml (negative weights: risk); "
            "0 when none.",
            SIGNALS,
            None,
            None,
            True,
            all_types,
        ),
        count("positive_signals_3m", "positive signals (polarity +1)", "3m", positive, "positive"),
        count("positive_signals_12m", "positive signals (polarity +1)", "12m", positive, "positive"),
        count(
            "red_flag_count",
            "red-flag signals (collective procedure, radiation)",
            "lookback",
            red_flags,
            "red_flag",
        ),
        Feature(
            "has_red_flag",
            "bool",
            "lookback",
            "red_flag",
            "True when a red-flag signal (collective procedure, radiation) is dated "
            f"{_window_phrase('lookback')}.",
            SIGNALS,
            None,
            None,
            True,
            red_flags,
        ),
        count(
            "collective_procedure_count",
            "collective-procedure judgments (sauvegarde, redressement, "
            "liquidation, rétablissement professionnel)",
            "lookback",
            COLLECTIVE_PROCEDURE_TYPES,
            "red_flag",
        ),
        Feature(
            "has_collective_procedure",
            "bool",
            "all",
            "red_flag",
            "True when a collective-procedure judgment is dated at or before the as-of date, however old "
            "(a ranking gate, not limited to the lookback; training snapshots see it from the start of "
            "history only).",
            SIGNALS,
            None,
            None,
            True,
            COLLECTIVE_PROCEDURE_TYPES,
        ),
        Feature(
            "is_radiated",
            "bool",
            "all",
            "red_flag",
            "True when a radiation (removal from the RCS) is published at or before the as-of date, however "
            "old (a ranking gate, as has_collective_procedure).",
            SIGNALS,
            None,
            None,
            True,
            (RADIATION_TYPE,),
        ),
        Feature(
            "is_closed",
            "bool",
            "as_of",
            "red_flag",
            "True when the company's closed_date is at or before the as-of date (or it is inactive with an "
            "unknown closing date in a record dated at or before the as-of date).",
            COMPANIES,
            None,
            None,
            True,
            (),
        ),
        count("layoffs_count_12m", "layoff signals", "12m", (LAYOFFS_TYPE,), "red_flag"),
        count(
            "negative_press_count_12m",
            "linked press articles of negative polarity",
            "12m",
            ARTICLES_EVIDENCE,
            "red_flag",
            ARTICLES,
        ),
        Feature(
            "last_signal_date",
            "date",
            "lookback",
            "recency",
            f"Event date of the latest signal of any type {_window_phrase('lookback')}; null when none.",
            SIGNALS,
            None,
            None,
            False,
            all_types,
        ),
        Feature(
            "last_positive_signal_date",
            "date",
            "lookback",
            "recency",
            f"Event date of the latest positive signal {_window_phrase('lookback')}; null when none.",
            SIGNALS,
            None,
            None,
            False,
            positive,
        ),
        Feature(
            "last_red_flag_date",
            "date",
            "lookback",
            "red_flag",
            f"Event date of the latest red-flag signal {_window_phrase('lookback')}; null when none.",
            SIGNALS,
            None,
            None,
            False,
            red_flags,
        ),
        Feature(
            "momentum_3m_vs_9m",
            "float",
            "12m",
            "momentum",
            "(r3 - r9) / (r3 + r9) where r3 = signals per month over the last 3 months and r9 = signals per "
            "month over the 9 months before: +1 all recent, -1 all older; null when no signal in 12 months.",
            SIGNALS,
            -1,
            1,
            True,
            all_types,
        ),
        count("articles_3m", "linked press articles", "3m", ARTICLES_EVIDENCE, "press", ARTICLES),
        count("articles_12m", "linked press articles", "12m", ARTICLES_EVIDENCE, "press", ARTICLES),
        Feature(
            "press_positive_share_12m",
            "float",
            "12m",
            "press",
            "Share of linked articles of the last 12 months with positive polarity; null when none.",
            ARTICLES,
            0,
            1,
            True,
            ARTICLES_EVIDENCE,
        ),
        Feature(
            "latest_article_event_type",
            "category",
            "lookback",
            "press",
            f"Event type (signal_type or 'other') of the latest linked article {_window_phrase('lookback')}; "
            "null when none.",
            ARTICLES,
            None,
            None,
            True,
            ARTICLES_EVIDENCE,
        ),
        Feature(
            "company_age_years",
            "float",
            "as_of",
            "company",
            "Years from creation_date to the as-of date (days / 365.25); null when creation date unknown.",
            COMPANIES,
            0,
            None,
        ),
        Feature(
            "headcount_band_rank",
            "int",
            "as_of",
            "company",
            "Ordinal of the SIRENE headcount band (0 = no employee .. 15 = 10,000+); null when unknown. "
            "Latest record: SIRENE gives no history.",
            COMPANIES,
            0,
            15,
        ),
        Feature(
            "headcount_midpoint",
            "float",
            "as_of",
            "company",
            "Midpoint of the headcount band range (lower bound for the open top band); null when unknown.",
            COMPANIES,
            0,
            None,
        ),
        Feature(
            "category",
            "category",
            "as_of",
            "company",
            "INSEE company category: PME, ETI or GE; null when unknown.",
            COMPANIES,
        ),
        Feature(
            "legal_form_family",
            "category",
            "as_of",
            "company",
            "Legal form family (SAS, SARL, SA, sole_trader, other).",
            COMPANIES,
        ),
        Feature("naf_section", "category", "as_of", "company", "NAF section letter (e.g. J).", COMPANIES),
        Feature(
            "naf_division", "category", "as_of", "company", "NAF division, 2 digits (e.g. 62).", COMPANIES
        ),
        Feature(
            "region_code", "category", "as_of", "company", "INSEE region code of the head office.", COMPANIES
        ),
        Feature(
            "establishment_count",
            "int",
            "as_of",
            "company",
            "Number of establishments in the latest record; null when unknown.",
            COMPANIES,
            0,
            None,
        ),
        Feature(
            "latest_revenue",
            "float",
            "as_of",
            "company",
            "Latest revenue (EUR) of a fiscal year before the as-of year (accounts are published the year "
            "after); null when unknown.",
            COMPANIES,
        ),
    ]
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ValueError("duplicate feature names in the catalog")
    return features


FEATURE_CATALOG: list[Feature] = _build_catalog()
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURE_CATALOG}


def feature_names() -> list[str]:
    return [f.name for f in FEATURE_CATALOG]


def model_feature_names() -> list[str]:
    return [f.name for f in FEATURE_CATALOG if f.is_model_feature]


def categorical_feature_names() -> list[str]:
    return [f.name for f in FEATURE_CATALOG if f.is_model_feature and f.dtype == "category"]


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def data_dictionary_section() -> str:
    """The `## features.company_features` section of docs/data_dictionary.md, generated from the catalog."""
    lines = [
        DATA_DICTIONARY_HEADING,
        "",
        "One row per company existing at the as-of date (creation_date <= as_of or unknown), computed only "
        "from records dated at or before it (signals: event_date; articles: published_date; BODACC: "
        "publication date). Built by `ose_assets.features.compute.features_query`, the same SQL for the "
        "training snapshots and for scoring. Generated from `ose_assets/features/catalog.py` by "
        "`python -m ose_assets.features.catalog`; do not edit by hand.",
        "",
        "Windows: `3m`/`6m`/`12m` = event date after the as-of date minus that many calendar months and at "
        "or before the as-of date; `lookback` = the same over `features.lookback_months` "
        f"({lookback_months()}) months, the observation window shared by training and scoring (training "
        "snapshots exist only where every source's history covers it); `all` = every record up to the "
        "as-of date (the two ranking gates); `as_of` = company record in force at the as-of date. Press "
        "features count articles linked with confidence >= "
        f"`press.min_link_confidence` ({model_config()['press']['min_link_confidence']}).",
        "",
        "| column | type | window | family | meaning | source | range | model feature |",
        "|---|---|---|---|---|---|---|---|",
        "| siren | varchar | - | id | SIREN of the company. | normalized.companies | | no |",
        "| as_of_date | date | - | id | Date the features are computed at. | spine | | no |",
    ]
    for f in FEATURE_CATALOG:
        bounds = (
            ""
            if f.min_value is None and f.max_value is None
            else f"[{_fmt(f.min_value)}, {_fmt(f.max_value)}]"
        )
        lines.append(
            f"| {f.name} | {f.dtype} | {f.window} | {f.family} | {f.meaning} | {f.source} | {bounds} | "
            f"{'yes' if f.is_model_feature else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def write_data_dictionary(path: Path = DATA_DICTIONARY_PATH) -> None:
    """Replace (or append) this table's section, leaving other sections as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# OSE data dictionary\n"
    section = data_dictionary_section()
    start = text.find(DATA_DICTIONARY_HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(DATA_DICTIONARY_HEADING))
        text = text[:start] + section + ("" if end < 0 else text[end:])
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_data_dictionary()
