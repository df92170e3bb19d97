"""The score document (the body of GET /api/v1/score/{siren}: models below) and serving.score_responses,
that body in pieces of JSON text for every company whose exact reasons are stored, built set-wise when the
serving copy is published. It lives with the publish, its only writer; the API reads and documents it.

A row holds the company's own fields and its history once, and its reasons per language; the body is
those pieces spliced (stored_body). A lookup is then one index probe (~0.3 ms) instead of three table reads
and a payload assembled in Python, and the history (up to 12 points) is not stored twice. The JSON is built
by DuckDB from the fields of the response models, in their order, so it has the shape the API documents; a
test compares it, company by company, with the payload the API assembles from the other serving tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import duckdb
from pydantic import AfterValidator, BaseModel, Field

# The serving copy's TIMESTAMP columns hold UTC without a zone; RFC 3339 (OpenAPI date-time) wants one.
UtcDatetime = Annotated[dt.datetime, AfterValidator(lambda v: v if v.tzinfo else v.replace(tzinfo=dt.UTC))]


class Evidence(BaseModel):
    kind: str = Field(description="'signal', 'bodacc' or 'article'")
    id: str | None = Field(
        description="source reference: BODACC announcement id, feed reference or article id"
    )
    url: str | None
    date: str | None = Field(description="event or publication date, YYYY-MM-DD")
    type: str | None = Field(description="signal_type (or the article's event type)")
    # Older serving copies stored evidence without these two.
    source: str | None = Field(None, description="where the record came from: 'bodacc', the feed or the site")
    title: str | None = Field(None, description="the article's title; null for signals and BODACC")


class Reason(BaseModel):
    rank: int = Field(description="1 = strongest reason in its direction")
    feature: str
    feature_value: str | None
    contribution_points: float = Field(description="contribution to the score, in score points")
    text: str = Field(description="the reason in the requested language")
    evidence: list[Evidence]


class Reasons(BaseModel):
    positive: list[Reason] = Field(description="what raises the score, strongest first")
    negative: list[Reason] = Field(description="what lowers the score, strongest first")


class HistoryPoint(BaseModel):
    as_of_date: dt.date
    scored_at: UtcDatetime
    score: float
    band: str
    model_version: str


class CompanyScore(BaseModel):
    siren: str
    name: str | None
    naf_code: str | None
    naf_label: str | None
    naf_section: str | None
    region_code: str | None
    region_name: str | None
    departement_code: str | None = Field(description="INSEE département of the head office, e.g. 75")
    headcount_band: str | None = Field(description="SIRENE headcount band code (tranche d'effectif), e.g. 12")
    score: float = Field(description="calibrated probability of an opportunity within the horizon, x 100")
    band: str
    rank: int | None = Field(description="rank among eligible companies (1 = best); null when excluded")
    is_eligible: bool
    exclusion_reason: str | None = Field(
        description="why the company is left out of the rankings (comma-separated): collective_procedure, "
        "radiated, closed, open_opportunity (a CRM opportunity open at the as-of date); null when eligible"
    )
    score_change: float | None = Field(description="change since the previous scoring run, in points")
    trend: str | None = Field(description="'improving', 'steady' or 'declining'")
    explanation_method: str = Field(
        description="how the scoring run explained it; the API's reasons are exact"
    )
    last_positive_signal_date: dt.date | None
    model_version: str
    model_kind: str
    as_of_date: dt.date
    scored_at: UtcDatetime
    reasons: Reasons


class ScoreResponse(CompanyScore):
    history: list[HistoryPoint] = Field(description="recent scoring runs, newest first")


TABLE = "score_responses"
LANGUAGES = ("fr", "en")


def reasons_column(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; accepted: {', '.join(LANGUAGES)}")
    return f"reasons_{lang}"


def _utc(column: str) -> str:
    """A UTC TIMESTAMP as pydantic writes an aware datetime: microseconds only when not zero, then Z."""
    return (
        f"case when epoch_us({column}) % 1000000 = 0 then strftime({column}, '%Y-%m-%dT%H:%M:%SZ') "
        f"else strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ') end"
    )


def _struct(model: type[BaseModel], expressions: dict[str, str], omit: tuple[str, ...] = ()) -> str:
    """A DuckDB struct with the model's fields in order (but `omit`): a column of the same name unless
    overridden."""
    unknown = set(expressions) - set(model.model_fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    fields = (f"'{name}': {expressions.get(name, name)}" for name in model.model_fields if name not in omit)
    return "{" + ", ".join(fields) + "}"


def _siren_range(first: str | None, end: str | None) -> str:
    """SQL: siren in [first, end); None leaves that side open."""
    quoted = {op: "'" + bound.replace("'", "''") + "'" for op, bound in ((">=", first), ("<", end)) if bound}
    return " and ".join(f"siren {op} {bound}" for op, bound in quoted.items()) or "true"


# Reasons field -> score_reasons direction.
DIRECTIONS = {"positive": "up", "negative": "down"}
# The body's last fields, stored as JSON text and appended to the JSON object of the company's others.
SPLICED = ("reasons", "history")
if tuple(ScoreResponse.model_fields)[-len(SPLICED) :] != SPLICED:
    raise TypeError(f"ScoreResponse must end with the fields {SPLICED}, in this order")
# Columns of score_responses besides siren and reasons_<lang>: JSON text of the company's own fields (an
# object) and of its history (a list).
COMPANY_COLUMN = "company"
HISTORY_COLUMN = "history"


def stored_body(company: str, reasons: str, history: str) -> str:
    """The GET /score body from the pieces of a score_responses row."""
    return f'{company[:-1]},"reasons":{reasons},"history":{history}}}'


def _json(expression: str) -> str:
    """SQL: the JSON text of one value (null for NULL)."""
    return f"coalesce(to_json({expression})::varchar, 'null')"


def _members(fields: dict[str, str]) -> str:
    """SQL: the JSON members "name":value of `fields` (name -> SQL of the value's JSON text), in order."""
    return " || ',' || ".join(f"""'"{name}":' || {value}""" for name, value in fields.items())


def top_reason_rank(con: duckdb.DuckDBPyConnection, database: str) -> int:
    """The largest reason_rank of the score_reasons of `database` (0 when it is empty)."""
    return con.execute(f"select coalesce(max(reason_rank), 0) from {database}.score_reasons").fetchone()[0]


def score_responses_query(
    database: str, top_rank: int, sirens: tuple[str | None, str | None] = (None, None)
) -> str:
    """The score_responses rows (siren, company, history, reasons_fr, reasons_en) from the serving tables
    of `database` (top_rank: the largest reason_rank of its score_reasons), for the SIRENs in the half-open
    range `sirens` [first, end) (None: unbounded), so that a publish can build the table in parts whose
    memory stays bounded (publish.py).

    The JSON text of each reason is built once per language, member by member (a to_json of the whole
    struct took 3x longer), and the lists are the reasons of rank 1, 2, … picked per direction and joined:
    list(struct) aggregates, list_sort and to_json of whole bodies (a body per language) took twice as
    long.
    """
    fragments, reason_lists = [], []
    for lang in LANGUAGES:
        columns = {"rank": "reason_rank", "text": f"reason_{lang}"}
        # The evidence is stored as JSON text: taken as it is, not parsed again.
        members = {
            name: "coalesce(evidence, '[]')" if name == "evidence" else _json(columns.get(name, name))
            for name in Reason.model_fields
        }
        fragments.append(f"'{{' || {_members(members)} || '}}' as reason_{lang}")
        lists = {}
        for name, direction in DIRECTIONS.items():
            picked = ", ".join(
                f"any_value(reason_{lang}) filter (where direction = '{direction}' and reason_rank = {rank})"
                for rank in range(1, top_rank + 1)
            )
            # concat_ws skips NULLs: a company without reasons in a direction gets [].
            lists[name] = f"'[' || concat_ws(',', {picked}) || ']'" if picked else "'[]'"
        reason_lists.append(f"'{{' || {_members(lists)} || '}}' as reasons_{lang}")
    history_point = _struct(HistoryPoint, {"scored_at": _utc("scored_at")})
    company = _struct(ScoreResponse, {"scored_at": _utc("scored_at")}, omit=SPLICED)
    no_reasons = Reasons(positive=[], negative=[]).model_dump_json()
    reasons = [f"coalesce(r.reasons_{lang}, '{no_reasons}') as {reasons_column(lang)}" for lang in LANGUAGES]
    in_range = _siren_range(*sirens)
    return f"""
with reasons as (
    select siren, {", ".join(reason_lists)}
    from (select siren, direction, reason_rank, {", ".join(fragments)}
          from {database}.score_reasons
          where is_exact  -- only exactly explained companies get a stored body
              and {in_range})
    group by siren
),
history as (
    select siren, to_json(list_reverse_sort(list({history_point})))::varchar as history
    from {database}.score_history where {in_range} group by siren
)
select c.siren, to_json({company})::varchar as {COMPANY_COLUMN},
    coalesce(h.history, '[]') as {HISTORY_COLUMN}, {", ".join(reasons)}
from {database}.company_scores c
left join reasons r using (siren)
left join history h using (siren)
where c.explanation_method = 'exact' and {in_range}
order by c.siren
"""
