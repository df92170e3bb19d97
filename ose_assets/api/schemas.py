"""Request and response models of the REST API (they make the OpenAPI document served at /docs)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

MAX_BATCH = 1_000

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
    score: float = Field(description="calibrated probability of an opportunity within the horizon, x 100")
    band: str
    rank: int | None = Field(description="rank among eligible companies (1 = best); null when excluded")
    is_eligible: bool
    exclusion_reason: str | None
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


class BatchRequest(BaseModel):
    sirens: list[str] = Field(min_length=1, max_length=MAX_BATCH, examples=[["552100554", "356 000 000"]])


class BatchResponse(BaseModel):
    results: list[ScoreResponse] = Field(description="scored companies, in request order (duplicates once)")
    not_found: list[str] = Field(description="valid SIRENs that the serving copy does not score")
    model_version: str
    as_of_date: dt.date


class TopItem(CompanyScore):
    segment_rank: int = Field(description="position in this list (1 = best)")


class TopResponse(BaseModel):
    segment: str = Field(description="'overall', 'region:<code>', 'naf_section:<letter>' or a combination")
    source: Literal["top_opportunities", "company_scores"] = Field(
        description="table the ranking was read from (precomputed segment, or ranked on the fly)"
    )
    model_version: str
    as_of_date: dt.date
    items: list[TopItem]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None
    model_version: str | None = None
    model_kind: str | None = Field(None, description="'xgboost' (learned) or 'rules_prior'")
    is_learned_model: bool | None = None
    run_id: str | None = None
    as_of_date: dt.date | None = None
    scored_at: UtcDatetime | None = None
    published_at: UtcDatetime | None = None
    scored_companies: int | None = None
    serving_file: str
    serving_file_age_seconds: float | None = None


class ApiError(BaseModel):
    error: str = Field(description="machine-readable code, e.g. 'invalid_siren', 'not_found', 'unauthorized'")
    message: str
    accepted_values: list[str] | None = None
    details: list[dict] | None = None
