"""Request and response models of the REST API (they make the OpenAPI document served at /docs)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from ose_assets.scoring.responses import CompanyScore, ScoreResponse, UtcDatetime

__all__ = ["CompanyScore", "ScoreResponse"]

MAX_BATCH = 1_000


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
    """The body of every error status (400, 401, 404, 405, 413, 422, 500, 503); input quoted in excerpts."""

    error: str = Field(
        description="machine-readable code, e.g. 'invalid_siren', 'not_found', 'unknown_parameter', "
        "'invalid_json', 'body_too_large', 'unauthorized'"
    )
    message: str
    accepted_values: list[str] | None = None
    details: list[dict] | None = None
