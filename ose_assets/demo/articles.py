"""Press articles (JSON Lines) about business events and about nothing in particular: some carry
SIRENs, others name the company only; plus the true article -> company links for evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from faker import Faker

from ose_assets.demo import reference as ref
from ose_assets.demo.common import Clock, day_to_date, write_lines

PRESS_OUTLETS = [
    ("Les Échos", "lesechos.fr"),
    ("La Tribune", "latribune.fr"),
    ("Le Parisien", "leparisien.fr"),
    ("Ouest-France", "ouest-france.fr"),
    ("L'Usine Nouvelle", "usinenouvelle.com"),
    ("Maddyness", "maddyness.com"),
    ("BFM Business", "bfmtv.com"),
    ("Actu.fr", "actu.fr"),
    ("Le Journal des Entreprises", "lejournaldesentreprises.com"),
]

ARTICLE_TEMPLATES = {
    "fundraising": [
        (
            "{n} lève {a} M€ pour accélérer",
            "{n}, entreprise {c} spécialisée dans l'activité « {s} », annonce une levée de fonds de {a} "
            "millions d'euros. Ces fonds financeront le recrutement et le développement commercial.",
        ),
        (
            "Levée de fonds : {n} boucle un tour de table de {a} M€",
            "Nouvelle levée de fonds pour {n}, qui réunit {a} "
            "millions d'euros auprès d'investisseurs pour accélérer sa croissance en France et en Europe.",
        ),
    ],
    "hiring": [
        (
            "{n} recrute {k} personnes",
            "{n} ({s}) prévoit de recruter {k} collaborateurs {c} dans les prochains mois "
            "pour accompagner sa croissance.",
        ),
        (
            "Emploi : {n} va embaucher {k} salariés {c}",
            "Bonne nouvelle pour l'emploi local : {n} annonce {k} recrutements en CDI.",
        ),
    ],
    "new_site": [
        (
            "{n} ouvre un nouveau site à {o}",
            "{n}, implantée {c}, ouvre un nouveau site à {o} qui accueillera à terme "
            "plusieurs dizaines de salariés.",
        ),
        (
            "{n} s'agrandit avec une nouvelle implantation à {o}",
            "Pour répondre à la demande, {n} inaugure un établissement à {o}.",
        ),
    ],
    "executive_change": [
        (
            "{n} nomme un nouveau directeur général",
            "{p} prend la direction générale de {n}, entreprise {c} active dans l'activité « {s} ».",
        ),
        ("Changement de direction chez {n}", "{n} annonce avoir nommé {p} à sa tête."),
    ],
    "contract_win": [
        (
            "{n} remporte un contrat de {a} M€",
            "{n} a été retenue pour un contrat d'un montant de {a} millions d'euros sur trois ans.",
        ),
        (
            "{n} décroche un important marché public",
            "L'entreprise {n}, basée {c}, remporte un marché de {a} M€.",
        ),
    ],
    "partnership": [
        (
            "{n} noue un partenariat stratégique",
            "{n} annonce un partenariat avec un acteur européen de son secteur "
            "pour développer de nouvelles offres.",
        ),
        (
            "Partenariat : {n} s'allie à un groupe industriel",
            "{n} et un grand groupe s'associent pour accélérer.",
        ),
    ],
    "layoffs": [
        (
            "{n} annonce un plan social",
            "{n} prévoit la suppression de {k} postes {c} dans le cadre d'un plan de sauvegarde de l'emploi.",
        ),
        ("{n} va supprimer {k} postes", "Coup dur {c} : {n} annonce {k} suppressions d'emplois."),
    ],
    "receivership": [
        (
            "{n} placée en redressement judiciaire",
            "Le tribunal de commerce a placé {n} en redressement judiciaire. "
            "L'entreprise {c} poursuit son activité pendant la période d'observation.",
        ),
        ("Le tribunal place {n} en redressement judiciaire", "{n} ({s}) cherche un repreneur."),
    ],
    "liquidation": [
        (
            "{n} placée en liquidation judiciaire",
            "Le tribunal de commerce a prononcé la liquidation judiciaire de {n}, entreprise {c}.",
        ),
        ("Fin de l'aventure pour {n}, placée en liquidation judiciaire", "{n} cesse son activité {c}."),
    ],
    "other": [
        (
            "{n} présente ses nouveautés au salon professionnel organisé à {o}",
            "{n} ({s}) était présente au salon organisé à {o}.",
        ),
        ("{n} fête ses dix ans", "Retour sur le parcours de {n}, entreprise {c}."),
    ],
}


def write_articles(
    rng: np.random.Generator,
    faker: Faker,
    firms: pl.DataFrame,
    events: pl.DataFrame,
    clock: Clock,
    path: Path,
) -> tuple[int, pl.DataFrame]:
    """Press articles (JSON Lines): some carry SIRENs, others name the company only; plus the true links."""
    about_events = events.filter("in_article").select(
        "idx", "signal_type", "day", "amount", "count", "variant"
    )
    # Articles about no business event at all, on companies the press covers.
    covered = firms.filter((pl.col("legal_form") != "1000") & pl.col("closed_day").is_null())
    k = min(covered.height, max(3, about_events.height // 8))
    others = pl.DataFrame(
        {
            "idx": covered["idx"].gather(rng.integers(0, covered.height, k)),
            "signal_type": ["other"] * k,
            "day": rng.integers(clock.start, clock.end + 1, k),
            "variant": rng.integers(0, 6, k),
        }
    )
    articles = pl.concat([about_events, others], how="diagonal").join(
        firms.select("idx", "siren", "name", "legal_form", "city", "departement_code", "naf_label"), on="idx"
    )
    m = articles.height
    people = pl.Series(sorted({faker.name() for _ in range(500)}))
    outlets = pl.Series([o[0] for o in PRESS_OUTLETS])
    domains = pl.Series([o[1] for o in PRESS_OUTLETS])
    big_cities = pl.Series(sorted({c[0] for c in ref.CITIES}))
    outlet = rng.integers(0, len(PRESS_OUTLETS), m)
    abbreviation = {code: abbr for code, (_, abbr) in ref.LEGAL_FORMS.items()}
    style = pl.Series(rng.random(m))
    articles = (
        articles.with_columns(
            published=(
                day_to_date(pl.col("day") + pl.Series(rng.integers(0, 3, m))).cast(pl.Datetime)
                + pl.duration(minutes=pl.Series(rng.integers(6 * 60, 21 * 60, m)))
            ).dt.replace_time_zone("Europe/Paris", ambiguous="earliest"),
            shown=pl.when(style < 0.45)
            .then(pl.concat_str("name", pl.col("legal_form").replace_strict(abbreviation), separator=" "))
            .when(style < 0.8)
            .then(pl.col("name").str.to_titlecase())
            .otherwise("name"),
            has_sirens=pl.Series(rng.random(m) < 0.4),
            source=outlets.gather(outlet),
            domain=domains.gather(outlet),
            p=people.gather(rng.integers(0, len(people), m)),
            o=big_cities.gather(rng.integers(0, len(big_cities), m)),
            c=pl.when(pl.col("city").is_not_null())
            .then(pl.format("à {}", "city"))
            .otherwise(pl.format("du {}", "departement_code")),
            a=_millions(pl.col("amount")),
            k=pl.coalesce(pl.col("count"), pl.lit(10)).cast(pl.String),
        )
        .sort("published", "idx", "signal_type")
        .with_columns(
            article_id=pl.format("ART-{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8))
        )
    )
    title, text = pl.lit(None, pl.String), pl.lit(None, pl.String)
    fields = {
        "n": pl.col("shown"),
        "c": pl.col("c"),
        "a": pl.col("a"),
        "k": pl.col("k"),
        "s": pl.col("naf_label").str.to_lowercase(),
        "o": pl.col("o"),
        "p": pl.col("p"),
    }
    for signal_type, variants in ARTICLE_TEMPLATES.items():
        for i, (title_template, text_template) in enumerate(variants):
            chosen = (pl.col("signal_type") == signal_type) & (pl.col("variant") % len(variants) == i)
            title = pl.when(chosen).then(_template(title_template, fields)).otherwise(title)
            text = pl.when(chosen).then(_template(text_template, fields)).otherwise(text)
    record = pl.struct(
        id="article_id",
        url=pl.format(
            "https://www.{}/entreprises/{}.html", "domain", pl.col("article_id").str.to_lowercase()
        ),
        published_at=pl.col("published").dt.to_string("%Y-%m-%dT%H:%M:%S%:z"),
        title=title,
        text=text,
        source="source",
        sirens=pl.when("has_sirens").then(pl.concat_list("siren")),
    ).struct.json_encode()
    lines = articles.select(record).to_series()
    # A few lines cut in the middle (a crawler dying mid-write): broken JSON.
    broken = np.sort(rng.choice(m, size=min(m, max(2, m // 1000)), replace=False))
    lines = lines.scatter(broken, lines.gather(broken).str.slice(0, 60))
    links = articles.select(
        "article_id", "siren", event_type="signal_type", name_in_text="shown", carries_siren="has_sirens"
    )
    return write_lines(lines, path), links


def _millions(amount: pl.Expr) -> pl.Expr:
    """EUR amount as French millions: 2500000 -> '2,5'."""
    tenths = (amount / 1e5).round().cast(pl.Int64).clip(1)
    return (
        pl.when(tenths % 10 == 0)
        .then((tenths // 10).cast(pl.String))
        .otherwise(pl.format("{},{}", tenths // 10, tenths % 10))
    )


def _template(template: str, fields: dict[str, pl.Expr]) -> pl.Expr:
    """A '{x}' template as a Polars string expression."""
    parts: list[pl.Expr] = []
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        key, _, rest = after.partition("}")
        parts += [pl.lit(before), fields[key]]
    return pl.concat_str([*parts, pl.lit(rest)])
