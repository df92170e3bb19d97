"""The OSE REST API: scores, reasons and rankings read from the serving copy (docs/api_spec.md)."""

import datetime as dt
import hmac
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from stdnum import luhn

from ose_assets.api import queries
from ose_assets.api.errors import (
    ApiException,
    BodyGuard,
    excerpt,
    install_error_handlers,
    reject_unknown_query_parameters,
)
from ose_assets.api.pages import install_pages
from ose_assets.api.reader import ServingStore, ServingUnavailable, ServingVersion
from ose_assets.api.schemas import (
    ApiError,
    BatchRequest,
    BatchResponse,
    Health,
    ScoreResponse,
    TopResponse,
    TrackRecordResponse,
)
from ose_assets.settings import OSESettings, model_config

API_PREFIX = "/api/v1"
MAX_TOP = 100
# Invalid SIRENs of a batch listed in the 422's details (each quoted as a short excerpt).
MAX_INVALID_LISTED = 100

Lang = Annotated[Literal["fr", "en"], Query(description="language of the reasons (French by default)")]
# A SIREN is normalised before it is checked: full-width digits and dot (U+FF10-FF19, U+FF0E) become ASCII,
# then spaces of any kind (U+0020, no-break, ideographic...) and dots are removed.
FULL_WIDTH = {0xFF10 + digit: ord("0") + digit for digit in range(10)} | {0xFF0E: ord(".")}
SIREN_SEPARATORS = re.compile(r"[\s.]+")
ASCII_DIGITS = re.compile(r"[0-9]*")


def _error_responses(*codes: int) -> dict:
    return {code: {"model": ApiError} for code in codes}


def normalise_siren(value: str) -> str:
    """The 9-digit SIREN, or a 422 that says what is wrong with it.

    Normalisation (docs/api_spec.md): full-width forms to ASCII, then spaces and dots removed. What remains
    must be exactly nine ASCII digits 0-9 (other digits, e.g. Arabic-Indic or superscripts, are refused)
    with a valid Luhn checksum.
    """
    compact = SIREN_SEPARATORS.sub("", value.translate(FULL_WIDTH))
    if not ASCII_DIGITS.fullmatch(compact):
        message = f"SIREN {excerpt(value)} must contain only digits 0-9 (spaces and dots are allowed)"
    elif len(compact) != 9:
        message = f"SIREN {excerpt(value)} must have 9 digits, it has {len(compact)}"
    elif not luhn.is_valid(compact):
        message = f"SIREN {excerpt(value)} fails the Luhn checksum: a digit is wrong or swapped"
    else:
        return compact
    raise ApiException(422, "invalid_siren", message)


def create_app(settings: OSESettings | None = None) -> FastAPI:
    settings = settings or OSESettings()
    store = ServingStore(settings.serving_path)
    bands = sorted(model_config()["bands"])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Open the serving copy (model, booster) before the first request rather than during it.
        with suppress(ServingUnavailable):
            await run_in_threadpool(store.current)
        yield

    # Swagger UI and ReDoc from the assets bundled in fastapi-offline (under /static-offline-docs), no CDN.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="OSE — Opportunity Scoring Engine API",
        version="1",
        description="Scores, reasons and rankings of French companies, read from the OSE serving copy. "
        "See docs/api_spec.md.",
    )
    install_error_handlers(app)
    app.add_middleware(BodyGuard, prefix=API_PREFIX, max_bytes=settings.api_max_body_bytes)

    async def current() -> ServingVersion:
        # On the event loop when the file is unchanged (a stat: no thread hop per request); opening a newly
        # published file (seconds for 1,000,000 companies) runs in the thread pool.
        return store.unchanged() or await run_in_threadpool(store.current)

    Current = Annotated[ServingVersion, Depends(current)]

    api_key_header = APIKeyHeader(
        name="X-API-Key", auto_error=False, description="required when the server has OSE_API_KEY set"
    )

    async def require_api_key(provided: Annotated[str | None, Security(api_key_header)]) -> None:
        if settings.api_key is None:
            return
        if provided is None or not hmac.compare_digest(provided.encode(), settings.api_key.encode()):
            raise ApiException(401, "unauthorized", "missing or wrong X-API-Key header")

    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["health"])
    def health() -> Health | JSONResponse:
        """Served model, as-of date, scored companies, serving file age; 503 without a serving copy."""
        try:
            version = store.current()
        except ServingUnavailable as error:
            body = Health(status="unavailable", detail=str(error), serving_file=str(store.path))
            return JSONResponse(body.model_dump(mode="json"), 503)
        info = version.info
        return Health(
            status="ok",
            serving_file=str(store.path),
            serving_file_age_seconds=round(store.file_age_seconds(version), 1),
            model_version=info["model_version"],
            model_kind=info["model_kind"],
            is_learned_model=info["model_kind"] != "rules_prior",
            run_id=info["run_id"],
            as_of_date=info["as_of_date"],
            scored_at=info["scored_at"],
            published_at=info["published_at"],
            scored_companies=info["scored_companies"],
        )

    router = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(require_api_key), Depends(reject_unknown_query_parameters)],
        responses=_error_responses(401, 422, 503),
    )

    @router.get(
        "/score/{siren}", response_model=ScoreResponse, responses=_error_responses(404), tags=["scores"]
    )
    async def score(
        siren: Annotated[str, Path(description="9-digit SIREN; spaces are allowed (853 479 236)")],
        version: Current,
        lang: Lang = "fr",
    ) -> Response:
        """Score, band, rank, trend, exact top reasons with evidence and recent history of one company."""
        number = normalise_siren(siren)
        # One index probe (~0.3 ms) on the event loop: the body was built at publish for every company
        # whose exact reasons are stored. The others are explained now, in the thread pool.
        body = version.stored_response(number, lang) or await run_in_threadpool(
            explained_response, version, number, lang
        )
        return Response(body, media_type="application/json")

    def explained_response(version: ServingVersion, number: str, lang: str) -> bytes:
        body = version.responses.get((number, lang))
        if body is None:
            payloads, _ = queries.score_payloads(version, [number], lang)
            if not payloads:
                raise ApiException(
                    404,
                    "not_found",
                    f"SIREN {number} is not scored in the serving copy (as of {version.info['as_of_date']})",
                )
            # Validated and serialised by pydantic-core in one step (FastAPI's generic path costs more).
            body = ScoreResponse.model_validate(payloads[0]).model_dump_json().encode()
            version.responses.update({(number, lang): body})
        return body

    @router.post(
        "/score", response_model=BatchResponse, responses=_error_responses(400, 413), tags=["scores"]
    )
    def score_batch(body: BatchRequest, version: Current, lang: Lang = "fr") -> dict:
        """The same payload for up to 1,000 SIRENs, plus the valid SIRENs that are not scored."""
        numbers, invalid = [], []
        for value in body.sirens:
            try:
                numbers.append(normalise_siren(value))
            except ApiException as error:
                shown = value if len(value) <= 60 else excerpt(value)
                invalid.append({"siren": shown, "message": error.body.message})
        if invalid:
            raise ApiException(
                422,
                "invalid_siren",
                f"{len(invalid)} invalid SIREN(s)"
                + (f" (the first {MAX_INVALID_LISTED} listed)" if len(invalid) > MAX_INVALID_LISTED else "")
                + ": "
                + "; ".join(item["message"] for item in invalid[:5]),
                details=invalid[:MAX_INVALID_LISTED],
            )
        payloads, not_found = queries.score_payloads(version, list(dict.fromkeys(numbers)), lang)
        return {
            "results": payloads,
            "not_found": not_found,
            "model_version": version.info["model_version"],
            "as_of_date": version.info["as_of_date"],
        }

    @router.get("/top-opportunities", response_model=TopResponse, tags=["rankings"])
    def top_opportunities(
        version: Current,
        limit: Annotated[int, Query(ge=1, le=MAX_TOP)] = 10,
        region: Annotated[str | None, Query(description="INSEE region code, e.g. 11")] = None,
        naf_section: Annotated[str | None, Query(description="NAF section letter, e.g. J")] = None,
        band: Annotated[str | None, Query(description="score band, A to D")] = None,
        lang: Lang = "fr",
    ) -> Response:
        """Eligible companies in rank order (companies gated out by a red flag never appear)."""
        for name, value, accepted in (
            ("region", region, version.regions),
            ("naf_section", naf_section, version.naf_sections),
            ("band", band, bands),
        ):
            if value is not None and value not in accepted:
                raise ApiException(
                    422,
                    f"unknown_{name}",
                    f"unknown {name} {excerpt(value)}; accepted: {', '.join(accepted)}",
                    accepted_values=list(accepted),
                )

        def ranking() -> bytes:
            segment, source, items = queries.top_opportunities(
                version, limit, region, naf_section, band, lang
            )
            body = {
                "segment": segment,
                "source": source,
                "model_version": version.info["model_version"],
                "as_of_date": version.info["as_of_date"],
                "items": [item | {"segment_rank": position} for position, item in enumerate(items, start=1)],
            }
            return TopResponse.model_validate(body).model_dump_json().encode()

        key = (limit, region, naf_section, band, lang)
        return Response(version.cached_ranking(key, ranking), media_type="application/json")

    @router.get(
        "/track-record",
        response_model=TrackRecordResponse,
        responses=_error_responses(404),
        tags=["track record"],
    )
    def track_record(
        version: Current,
        as_of: Annotated[dt.date | None, Query(description="one published as-of date (YYYY-MM-DD)")] = None,
        lang: Lang = "fr",
    ) -> dict:
        """How past rankings turned out: realised vs expected wins per band and top list, realised ROC-AUC,
        Brier and ECE next to the model's test figures; closed and in-progress windows, in-sample apart."""
        body = queries.track_record(version, as_of, lang)
        if body is None:
            raise ApiException(404, "not_found", "this serving copy has no track record yet (run `ose run`)")
        if as_of is not None and not body["windows"]:
            raise ApiException(404, "not_found", f"no published ranking as of {as_of}")
        return body

    app.include_router(router)
    install_pages(app, settings, current)
    return app
