"""RFC 9457 problem details: every error leaves the API as ``application/problem+json``.

Overload is a 503 with ``Retry-After``, never a 500 or a long wait: ``StoreBusy`` (no
turn at the store in time: ``app.web.deps.StoreGate``, ``Database.write_turn``), the
pool out of connections, and the store turning work away for contention (SQLite's
write lock held past the wait, PostgreSQL out of connections or a lock wait timed out).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.db.engine import StoreBusy, store_busy
from app.errors import CrosswatchError

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER_SECONDS = 1
log = logging.getLogger(__name__)


class ProblemError(BaseModel):
    """One thing wrong with a request."""

    loc: list[str | int] = Field(description='Where: e.g. `["query", "limit"]`')
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem; validation errors add ``errors`` (each ``loc`` and ``msg``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str = Field(min_length=1, description="What was wrong, for a person to read")
    errors: list[ProblemError] = Field(
        default_factory=list, description="Invalid requests (422): each problem found"
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries declaring that a route may answer ``statuses`` as problems."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA_REF}},
        }
        for status in statuses
    }


def problem(status: int, detail: str, *, title: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(CrosswatchError)
    async def _domain(_request: Request, exc: CrosswatchError) -> JSONResponse:
        busy = isinstance(exc, StoreBusy)
        # Shedding is counted in the request metrics (status 503), not logged per request.
        if exc.status >= 500 and not busy:
            log.error("request failed: %s", exc.detail)
        response = problem(exc.status, exc.detail, title=exc.title)
        response.headers.update(getattr(exc, "headers", None) or {})
        if busy:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, _exc: PoolTimeout) -> JSONResponse:
        return await _domain(request, StoreBusy("the store is busy: every connection is in use"))

    @app.exception_handler(DBAPIError)
    async def _store_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if not store_busy(exc):
            raise exc  # a real failure: the 500 handler below logs it
        return await _domain(request, StoreBusy("the store is busy with other work"))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        detail = "; ".join(_describe(error) for error in errors) or "invalid request"
        return problem(
            422,
            detail,
            title="Invalid request",
            errors=[{"loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in errors],
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            # Starlette names only the first route whose path matched; one path may be
            # served by several routes (GET and POST /v1/webhooks), so list them all.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "an internal error occurred; it has been logged")

    _declare_problems(app)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app serves at this request's path."""
    allowed = []
    for method in HTTP_METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _declare_problems(app: FastAPI) -> None:
    """Make the OpenAPI description say what the handlers above send.

    Every error response is problem+json (FastAPI's default 422 ``HTTPValidationError``
    is not what this app sends); an operation with path parameters may answer 404 (they
    name a symbol, a subscription or a delivery that may not exist), and one with a
    request body 400 (a body that is not JSON at all).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _declare_operation_problems(operation)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        declared = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(declared.pop("$defs", {}))
        schemas["Problem"] = declared
        # Every error response now refers to Problem: FastAPI's own shapes are unused.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_operation_problems(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if any(parameter.get("in") == "path" for parameter in operation.get("parameters", [])):
        responses.setdefault("404", problem_responses(404)[404])
    if "requestBody" in operation:
        responses.setdefault("400", problem_responses(400)[400])
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA_REF}}
