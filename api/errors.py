"""One error shape for every failure: `{"error": {"code", "message", "details"}}`.

FastAPI's own errors (validation, unknown routes, wrong methods) and ours go through the handlers here, so a
client parses one shape whatever went wrong; the OpenAPI description declares it for every status code.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from access.roles import PermissionDenied

log = logging.getLogger("nightwatch.api")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        details: Any = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"no {what} {ident!r}", {what.replace(" ", "_"): ident})


def invalid(message: str, parameter: str) -> ApiError:
    return ApiError(422, message, [{"location": f"query.{parameter}", "message": message}])


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _described(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every route, so the OpenAPI file (and clients generated from it) know the error shape.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _described("No API key, an unknown key, or a revoked key"),
    403: _described("The key's role does not allow this"),
    404: _described("Nothing with that id"),
    422: _described("A parameter is missing, malformed or out of range"),
    429: _described("Rate limit exceeded: retry after the Retry-After header's seconds"),
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only location, message and type: pydantic's `ctx` may hold exception objects that are not JSON.
        details = [
            {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        first = details[0] if details else {"location": "request", "message": "invalid request"}
        return error_response(422, "invalid_request", f"{first['location']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, CODES.get(exc.status_code, "error"), message, None, headers)

    @app.exception_handler(PermissionDenied)
    async def _denied(_request: Request, exc: PermissionDenied) -> JSONResponse:
        return error_response(403, "forbidden", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error: the server logged it", None)
