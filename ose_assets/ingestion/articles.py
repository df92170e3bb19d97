"""Press articles: landing, event type and polarity from French keywords, links to companies.

Key: `article_id` is `source:id` (see ARTICLE_KEY): two outlets reusing an id are two articles.

Links (normalized.article_companies):
- `siren`: the article lists its SIRENs (confidence 1).
- `exact_name`: otherwise, word n-grams of the article's opening (title + first characters of the text,
  normalised like company names: lower case, no accents, legal forms removed) equal to a company's
  normalised name held by exactly one SIREN (confidence 1). A matched name inside a longer matched
  name is ignored ("dupont" inside "dupont conseil").
- `fuzzy_name`: for articles with no exact match, title n-grams are compared with rapidfuzz
  (`fuzz.ratio`, batched with `process.cpdist`) to the company names sharing a word with them; the best
  score >= ingestion.fuzzy_min_score links with confidence score / 100.
A name held by several companies, or fuzzy candidates of different companies within
ingestion.fuzzy_ambiguity_margin points of the best, leave the article unlinked (counted as ambiguous).
One link per (article_id, siren).
"""

from __future__ import annotations

import duckdb
import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from ose_assets.ingestion.spec import Check, RawSpec, date_checks, ensure_raw_table
from ose_assets.ingestion.sql import clean_text, luhn_valid, normalized_name, parse_timestamp, quote_literal
from ose_assets.ingestion.vocabulary import vocabulary_values
from ose_assets.settings import model_config
from ose_assets.warehouse import replace_table

ARTICLES_TABLE = "normalized.articles"
LINKS_TABLE = "normalized.article_companies"
MAX_NAME_TOKENS = 8

SIRENS = (
    r"list_transform(regexp_extract_all(coalesce(f.sirens, ''), '\d[\d \x{00A0}\x{202F}]*\d|\d'),"
    r" lambda x: regexp_replace(x, '[\s\x{00A0}\x{202F}]', '', 'g'))"
)

ARTICLE_SPEC = RawSpec(
    table="raw.article_records",
    fields={
        "id": ("id", "article_id"),
        "url": ("url",),
        "published_at": ("published_at", "date", "published"),
        "title": ("title",),
        "text": ("text", "body", "content"),
        "source": ("source",),
        "sirens": ("sirens", "siren"),
    },
    columns={
        "article_id": f"coalesce({clean_text('f.id')}, md5({clean_text('f.url')}))",
        "url": clean_text("f.url"),
        "published_at": parse_timestamp("f.published_at"),
        "title": clean_text("f.title"),
        "text": clean_text("f.text"),
        "source": clean_text("f.source"),
        "sirens": f"list_distinct({SIRENS})",
    },
    checks=(
        Check("article_id is null", "missing_id", "'no id and no url'"),
        *date_checks("published_at", "published_at", required=True, event=True),
        Check(
            "len(list_filter(sirens, lambda x: length(x) <> 9)) > 0",
            "bad_siren_length",
            "'sirens: ' || src.sirens",
        ),
        Check(
            f"len(list_filter(sirens, lambda x: not {luhn_valid('x')})) > 0",
            "bad_siren_luhn",
            "'sirens: ' || src.sirens",
        ),
    ),
    formats=("jsonl", "json", "csv", "parquet"),
    document_fields=("text",),
)


def event_type_sql(text: str) -> str:
    """First ingestion.article_event_keywords rule whose pattern matches the text, else 'other'."""
    whens = " ".join(
        f"when regexp_matches({text}, {quote_literal('|'.join(rule['patterns']))}) "
        f"then {quote_literal(rule['signal_type'])}"
        for rule in model_config()["ingestion"]["article_event_keywords"]
    )
    return f"case {whens} else 'other' end"


# An article is identified by its feed and the feed's id, `article_id = source:id` (just the id when the
# record names no source): outlets number their articles independently, so two outlets reusing an id
# are two articles, while the same (source, id) delivered again replaces the older record (newest landing
# wins). Every table below is built from this one newest record per article.
ARTICLE_KEY = "concat_ws(':', source, article_id)"
LATEST_QUERY = f"""
select * exclude (article_id), {ARTICLE_KEY} as article_id from {ARTICLE_SPEC.table}
qualify row_number() over (partition by {ARTICLE_KEY} order by ingested_at desc, record_number desc) = 1
"""

ARTICLES_QUERY = f"""
select a.article_id, a.url, cast(a.published_at as date) as published_date, a.published_at, a.title, a.text,
    a.source, a.event_type, cast(coalesce(v.polarity, 0) as tinyint) as polarity
from (
    select *, {event_type_sql("lower(strip_accents(coalesce(title, '') || ' ' || coalesce(text, '')))")}
        as event_type
    from article_latest
) a left join {vocabulary_values()} v on v.signal_type = a.event_type
order by a.published_at, a.article_id
"""

# One link per (article, company): listed SIRENs first, then exact, then fuzzy name matches.
LINKS_QUERY = """
select article_id, siren::varchar(9) as siren, match_method, cast(confidence as double) as confidence
from (
    select article_id, unnest(sirens) as siren, 'siren' as match_method, 1.0 as confidence, 1 as priority
    from article_latest
    union all
    select article_id, siren, 'exact_name', 1.0, 2 from article_exact_matches where companies = 1
    union all
    select article_id, siren, 'fuzzy_name', confidence, 3 from fuzzy_links
)
qualify row_number() over (partition by article_id, siren order by priority, confidence desc) = 1
order by article_id, siren
"""


def build_articles(con: duckdb.DuckDBPyConnection) -> dict:
    """Rebuild normalized.articles and normalized.article_companies; return link counts."""
    ensure_raw_table(con, ARTICLE_SPEC)
    settings = model_config()["ingestion"]
    con.execute(f"create or replace temp table article_latest as {LATEST_QUERY}")
    articles = replace_table(con, ARTICLES_TABLE, ARTICLES_QUERY)
    _name_index(con, settings["name_min_chars"])
    _exact_matches(con, settings["name_match_chars"])
    fuzzy, fuzzy_ambiguous = _fuzzy_links(
        con,
        settings["fuzzy_min_score"],
        settings["fuzzy_ambiguity_margin"],
        settings["fuzzy_block_max_names"],
    )
    con.register("fuzzy_links", fuzzy.to_arrow())
    links = replace_table(con, LINKS_TABLE, LINKS_QUERY)
    con.unregister("fuzzy_links")
    counts = con.execute(
        f"""select
            (select count(distinct article_id) from {LINKS_TABLE} where match_method = 'siren'),
            (select count(distinct article_id) from {LINKS_TABLE} where match_method = 'exact_name'),
            (select count(distinct article_id) from {LINKS_TABLE} where match_method = 'fuzzy_name'),
            (select count(distinct article_id) from article_exact_matches where companies > 1
                and article_id not in (select article_id from article_exact_matches where companies = 1)),
            (select count(*) from {ARTICLES_TABLE}
                where article_id not in (select article_id from {LINKS_TABLE}))"""
    ).fetchone()
    return {
        "articles": articles,
        "links": links,
        "articles_linked_by_siren": counts[0],
        "articles_linked_by_exact_name": counts[1],
        "articles_linked_by_fuzzy_name": counts[2],
        "articles_ambiguous_name": counts[3] + fuzzy_ambiguous,
        "articles_unlinked": counts[4],
    }


def _name_index(con, min_chars: int) -> None:
    """Normalised company names -> how many companies hold them (one SIREN kept when unique).

    Short names are deleted afterwards: DuckDB pushes a WHERE on norm_name down into the scan, where
    it normalised every name a second time (half of this step's CPU)."""
    con.execute(
        f"""create or replace temp table company_names as
        select norm_name, count(distinct siren) as companies, min(siren) as siren,
            len(string_split(norm_name, ' ')) as tokens
        from (select siren, {normalized_name("name")} as norm_name from normalized.companies)
        group by norm_name"""
    )
    con.execute(f"delete from company_names where norm_name is null or length(norm_name) < {int(min_chars)}")


def _exact_matches(con, match_chars: int) -> None:
    """Article n-grams equal to a company name; names inside a longer matched name dropped.

    Only positions whose word starts some company name open n-grams (a quarter of them at 200k
    companies), and matches, not n-grams, are made distinct: 3x less CPU for the same matches."""
    max_tokens = min(
        MAX_NAME_TOKENS, con.execute("select coalesce(max(tokens), 1) from company_names").fetchone()[0]
    )
    con.execute(
        f"""create or replace temp table article_tokens as
        select n.article_id, string_split({
            normalized_name(
                f"coalesce(n.title, '') || ' . ' || left(coalesce(n.text, ''), {int(match_chars)})"
            )
        }, ' ') as tokens,
            string_split({normalized_name("coalesce(n.title, '')")}, ' ') as title_tokens
        from {ARTICLES_TABLE} n join article_latest a using (article_id)
        where len(a.sirens) = 0"""
    )
    con.execute(
        f"""create or replace temp table article_exact_matches as
        with positions as (
            select article_id, tokens, unnest(range(1, len(tokens) + 1)) as i from article_tokens
        ), starts as (
            select p.* from positions p
            semi join (select distinct split_part(norm_name, ' ', 1) as word from company_names) w
                on w.word = p.tokens[p.i]
        ), ngrams as (
            select article_id, array_to_string(list_slice(tokens, i, i + n - 1), ' ') as ngram
            from starts, range(1, {max_tokens + 1}) t(n)
            where i + n - 1 <= len(tokens)
        ), matches as (
            select distinct g.article_id, c.norm_name, c.companies, c.siren
            from ngrams g join company_names c on c.norm_name = g.ngram
        )
        select * from matches m
        where not exists (
            select 1 from matches l where l.article_id = m.article_id and l.norm_name <> m.norm_name
              and contains(' ' || l.norm_name || ' ', ' ' || m.norm_name || ' '))"""
    )


def _fuzzy_links(con, min_score: float, margin: float, block_max_names: int) -> tuple[pl.DataFrame, int]:
    """(links of articles without exact match, number of ambiguous articles); scored in batches."""
    max_tokens = min(
        MAX_NAME_TOKENS, con.execute("select coalesce(max(tokens), 1) from company_names").fetchone()[0]
    )
    pairs = con.execute(
        f"""with todo as (
            select article_id, title_tokens as tokens from article_tokens
            where article_id not in (select article_id from article_exact_matches)
        ), ngrams as (
            select distinct article_id, array_to_string(list_slice(tokens, i, i + n - 1), ' ') as ngram,
                list_slice(tokens, i, i + n - 1) as words
            from (select article_id, tokens, unnest(range(1, len(tokens) + 1)) as i from todo),
                 range(1, {max_tokens + 1}) t(n)
            where i + n - 1 <= len(tokens)
        ), name_words as (
            select norm_name, companies, siren, unnest(string_split(norm_name, ' ')) as word
            from company_names
        ), blocks as (
            select * from name_words where length(word) >= 4
            qualify count(*) over (partition by word) <= {int(block_max_names)}
        )
        select distinct g.article_id, g.ngram, b.norm_name, b.companies, b.siren
        from (select article_id, ngram, unnest(words) as word from ngrams) g
        join blocks b using (word)
        where abs(length(g.ngram) - length(b.norm_name)) <= 0.25 * length(b.norm_name)"""
    ).pl()
    empty = pl.DataFrame(schema={"article_id": pl.String, "siren": pl.String, "confidence": pl.Float64})
    if pairs.is_empty():
        return empty, 0
    scores = cpdist(pairs["ngram"].to_list(), pairs["norm_name"].to_list(), scorer=fuzz.ratio, workers=-1)
    scored = (
        pairs.with_columns(score=pl.Series(scores, dtype=pl.Float64))
        .filter(pl.col("score") >= min_score)
        .with_columns(best=pl.col("score").max().over("article_id"))
        .filter(pl.col("score") >= pl.col("best") - margin)
    )
    per_article = scored.group_by("article_id").agg(
        siren=pl.col("siren").first(),
        confidence=(pl.col("best").first() / 100.0),
        ambiguous=(pl.col("norm_name").n_unique() > 1) | (pl.col("companies").max() > 1),
    )
    links = per_article.filter(~pl.col("ambiguous")).select("article_id", "siren", "confidence")
    return (links if not links.is_empty() else empty), int(per_article["ambiguous"].sum())
