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


class TrackRecordGroup(BaseModel):
    grouping: Literal["band", "decile", "top"]
    group_value: str = Field(
        description="band letter, decile (1 = highest scores), or a top list: 'overall:top10', "
        "'overall:top100', 'region:<code>:top10', 'naf_section:<letter>:top10'"
    )
    companies: int
    expected_wins: float = Field(description="sum of the published probabilities")
    realised_wins: int = Field(description="won within the horizon (so far, for an open window)")


class TrackRecordWindow(BaseModel):
    as_of_date: dt.date
    model_version: str
    window_status: Literal["closed", "in_progress"] = Field(
        description="closed once as_of + horizon <= known_until"
    )
    window_end: dt.date
    sample_type: Literal["out_of_sample", "in_sample", "unknown"] = Field(
        description="in_sample: the model was trained on outcomes after this as-of date (not a forecast)"
    )
    companies: int = Field(
        description="companies eligible that day (open deals and closed companies left out)"
    )
    expected_wins: float
    expected_wins_low: float = Field(description="calibration interval of the realised wins")
    expected_wins_high: float
    realised_wins: int
    top10_wins: int
    top100_wins: int
    realised_roc_auc: float | None
    realised_brier: float | None
    realised_ece: float | None
    realised_top_decile_lift: float | None
    test_roc_auc: float | None = Field(description="the same model's figure on its test period")
    test_brier: float | None
    test_ece: float | None
    test_top_decile_lift: float | None
    summary: str = Field(description="the window in one sentence, in the requested language")
    groups: list[TrackRecordGroup] = Field(
        description="per band (every window), plus deciles and top lists when as_of is given"
    )


class TrackRecordResponse(BaseModel):
    known_until: dt.date = Field(description="outcomes are counted up to this date")
    windows: list[TrackRecordWindow] = Field(description="newest as-of date first")
