"""What the API answers when a request is wrong: one error body (ApiError) for every status, request bodies
checked before FastAPI parses them, unknown query parameters refused (docs/api_spec.md, "Errors").

Client input is never echoed back whole: messages and details quote at most EXCERPT_CHARS of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ose_assets.api.reader import ServingUnavailable
from ose_assets.api.schemas import ApiError

EXCERPT_CHARS = 60
# Request bodies are a list of SIRENs: anything nested deeper is not a request of this API.
MAX_JSON_DEPTH = 32
# Validation errors listed in `details` (a 1,000-item body can fail 1,000 times).
MAX_DETAILS = 20
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "serving_unavailable",
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

log = logging.getLogger("ose.api")


class ApiException(Exception):
    def __init__(self, status_code: int, error: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = ApiError(error=error, message=message, **extra)


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """repr(value), cut to `limit` characters with the full length said."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def error_response(
    status: int, error: str, message: str, headers: dict | None = None, **extra
) -> JSONResponse:
    body = ApiError(error=error, message=message, **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status, headers=headers)


def _short(value: object) -> object:
    """A JSON-safe, short stand-in for one piece of client input inside a validation error."""
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, str) and len(value) <= EXCERPT_CHARS:
        return value
    return excerpt(value)


def validation_details(errors: Iterable[dict]) -> tuple[str, list[dict]]:
    """(message, details) of pydantic errors: location, type and message, the input only as an excerpt."""
    errors = list(errors)
    details = [
        {
            "type": error.get("type"),
            "loc": [_short(part) for part in error.get("loc", ())],
            "msg": error.get("msg"),
            **({"input": _short(error["input"])} if "input" in error else {}),
        }
        for error in errors[:MAX_DETAILS]
    ]
    message = "; ".join(
        f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}" for detail in details[:5]
    )
    if len(errors) > 5:
        message += f"; … ({len(errors)} errors)"
    return message, jsonable_encoder(details)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app answers, whatever raised it, in the ApiError shape."""

    @app.exception_handler(ApiException)
    async def api_exception(_: Request, exc: ApiException) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status_code == 401 else None
        return JSONResponse(exc.body.model_dump(exclude_none=True), exc.status_code, headers=headers)

    @app.exception_handler(ServingUnavailable)
    async def unavailable(_: Request, exc: ServingUnavailable) -> JSONResponse:
        return error_response(503, "serving_unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = validation_details(exc.errors())
        return error_response(422, "invalid_request", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's 404 (unknown path), 405 (wrong method, with its Allow header) and 400s.
        message = exc.detail if isinstance(exc.detail, str) else excerpt(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {excerpt(request.url.path)}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {excerpt(request.url.path)}"
        code = ERROR_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        message = f"internal error ({type(exc).__name__}); see the server log"
        return error_response(500, "internal_error", message)


def _depth(document: object) -> int:
    """Nesting depth of a parsed JSON document, without recursion."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    return deepest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number (RFC 8259 has no NaN or Infinity)")


def check_json_body(body: bytes) -> str | None:
    """Why this body is not an acceptable JSON document (None when it is)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"the body is not UTF-8: byte 0x{body[error.start]:02x} at offset {error.start}"
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        return f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
    except ValueError as error:
        return f"the body is not valid JSON: {error}"
    except RecursionError:
        return f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
    if _depth(document) > MAX_JSON_DEPTH:
        return f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
    return None


class BodyGuard:
    """ASGI middleware for requests under `prefix`: a body over `max_bytes` is 413 (read no further), a JSON
    body that is not UTF-8, not strict JSON (NaN, Infinity) or nested too deep is 400. Other paths (the HTML
    pages, /docs) pass through untouched."""

    def __init__(self, app: ASGIApp, prefix: str, max_bytes: int) -> None:
        self.app = app
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send, int(declared))
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"application/json").decode("latin-1").lower()
        problem = check_json_body(body) if body and "json" in content_type else None
        if problem is not None:
            await error_response(400, "invalid_json", problem)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        size = f"{declared:,} bytes" if declared is not None else f"more than {self.max_bytes:,} bytes"
        response = error_response(
            413,
            "body_too_large",
            f"the request body has {size}; the limit is {self.max_bytes:,} bytes (OSE_API_MAX_BODY_BYTES)",
            # The rest of the body is never read: the connection cannot carry another request.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _query_parameter_names(dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_parameter_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """A 422 naming every query parameter the route does not declare (a typo would otherwise be ignored)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    # Computed once per route and kept on it: this runs on every request.
    accepted = getattr(route, "ose_accepted_query_parameters", None)
    if accepted is None:
        accepted = sorted(_query_parameter_names(dependant))
        route.ose_accepted_query_parameters = accepted
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in accepted]
    if unknown:
        shown = ", ".join(excerpt(name) for name in unknown[:5])
        raise ApiException(
            422,
            "unknown_parameter",
            f"unknown query parameter(s) {shown}; accepted: {', '.join(accepted) or 'none'}",
            accepted_values=accepted,
        )
