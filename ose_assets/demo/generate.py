"""Demo data generator: a synthetic French company world written in the real public formats.

`generate_demo_data` draws companies (SIRENE-like), their business events over about two years, a
hidden monthly conversion hazard driven by those events, and CRM outcomes drawn from that hazard. It
writes the inbox files ingestion reads (SIRENE stocks, Recherche d'entreprises JSON, signals feed,
BODACC export, press articles, CRM outcomes) and the hidden truth (`truth/`), which the pipeline never
reads. Everything is set-based (numpy / Polars over whole arrays) so 1,000,000 companies work, and
deterministic for a seed and end date. One module per written format, as in `ingestion/`:
`sirene`, `recherche`, `signals`, `bodacc`, `articles`, `outcomes`; the world they describe comes from
`world` (companies) and `events`, the truth from `hazard`. This module only orchestrates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
from faker import Faker

from ose_assets.demo.articles import write_articles
from ose_assets.demo.bodacc import write_bodacc
from ose_assets.demo.common import Clock, write_csv
from ose_assets.demo.events import draw_events
from ose_assets.demo.hazard import monthly_hazard, write_propensity
from ose_assets.demo.outcomes import draw_outcomes
from ose_assets.demo.recherche import write_recherche
from ose_assets.demo.signals import write_signals
from ose_assets.demo.sirene import with_record_dates, write_establishments, write_units
from ose_assets.demo.truth import PROPENSITY_FILE
from ose_assets.demo.world import draw_companies
from ose_assets.settings import today_paris

INBOX_FILES = {
    "sirene": "inbox/companies/StockUniteLegale_utf8.csv",
    "establishments": "inbox/companies/StockEtablissement_utf8.csv",
    "recherche": "inbox/companies/recherche_entreprises.jsonl",
    "signals": "inbox/signals/signals.jsonl",
    "bodacc": "inbox/bodacc/bodacc.jsonl",
    "articles": "inbox/articles/articles.jsonl",
    "outcomes": "inbox/outcomes/crm_outcomes.csv",
}
TRUTH_FILES = {"propensity": f"truth/{PROPENSITY_FILE}", "article_links": "truth/article_links.parquet"}


def generate_demo_data(
    data_dir: Path,
    companies: int = 20_000,
    seed: int = 42,
    end_date: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write the demo inbox files and hidden truth under `data_dir`; return record counts per file."""
    say = progress or (lambda message: None)
    end = end_date or today_paris()
    data_dir = Path(data_dir)
    for relative in (*INBOX_FILES.values(), *TRUTH_FILES.values()):
        (data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    faker = Faker("fr_FR")
    faker.seed_instance(seed)
    clock = Clock(end)

    say(f"drawing {companies:,} companies")
    firms = draw_companies(rng, faker, companies, clock)
    say("drawing business events")
    firms, events = draw_events(rng, firms, clock)
    say(f"{events.height:,} events; computing the hidden monthly hazard")
    hazard = monthly_hazard(rng, firms, events, clock)
    say("drawing CRM outcomes from the hazard")
    outcomes = draw_outcomes(rng, firms, hazard, clock)

    counts: dict[str, int] = {}
    say("writing SIRENE stocks")
    firms = with_record_dates(rng, firms, clock)
    counts[INBOX_FILES["sirene"]] = write_units(firms, clock, data_dir / INBOX_FILES["sirene"])
    counts[INBOX_FILES["establishments"]], establishments = write_establishments(
        rng, firms, events, clock, data_dir / INBOX_FILES["establishments"]
    )
    counts[INBOX_FILES["recherche"]] = write_recherche(
        rng, faker, firms, establishments, clock, data_dir / INBOX_FILES["recherche"]
    )
    say("writing signals, BODACC and press articles")
    counts[INBOX_FILES["signals"]] = write_signals(
        rng, firms, events, clock, data_dir / INBOX_FILES["signals"]
    )
    counts[INBOX_FILES["bodacc"]] = write_bodacc(rng, firms, events, clock, data_dir / INBOX_FILES["bodacc"])
    counts[INBOX_FILES["articles"]], links = write_articles(
        rng, faker, firms, events, clock, data_dir / INBOX_FILES["articles"]
    )
    counts[INBOX_FILES["outcomes"]] = write_csv(outcomes, data_dir / INBOX_FILES["outcomes"])
    say("writing the hidden truth")
    counts[TRUTH_FILES["propensity"]] = write_propensity(
        firms, hazard, clock, data_dir / TRUTH_FILES["propensity"]
    )
    links.write_parquet(data_dir / TRUTH_FILES["article_links"])
    counts[TRUTH_FILES["article_links"]] = links.height
    say("done: " + ", ".join(f"{Path(k).name} {v:,}" for k, v in counts.items()))
    return counts
