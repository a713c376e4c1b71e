"""Every error of the service is ``{"error": "<one line>"}`` with a 4xx/5xx status, never a stack trace: typed
errors by the one table ``ERROR_STATUS``, validation failures (422), the framework's own 404/405/400, and 503s
that say when to retry."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..api import (BridgeError, ClusterRefused, ClusterUnreachable, ConfigError, IndexNotBridged, IndexNotFound,
                   ModelMismatch, QueryError, as_bridge_error)
from .batcher import Unavailable
from .schema import describe_invalid

log = logging.getLogger(__name__)

# typed errors -> HTTP status, first match wins (the one table of the service); a request the cluster refuses as
# malformed (400) is the caller's: 400 with the cluster's reason
ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (IndexNotFound, 404),
    (ModelMismatch, 409),
    (QueryError, 400),
    (IndexNotBridged, 400),
    (ConfigError, 400),
    (ClusterUnreachable, 503),
    (Unavailable, 503),
    (ClusterRefused, 502),
)


def http_status(exc: BaseException) -> int:
    if isinstance(exc, ClusterRefused) and getattr(exc, "status", None) == 400:
        return 400
    return next((status for kind, status in ERROR_STATUS if isinstance(exc, kind)), 500)


class ApiError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after

    @classmethod
    def of(cls, exc: BaseException) -> "ApiError":
        """The response for a failure: its typed error's status and one-line message."""
        if isinstance(exc, ApiError):
            return exc
        typed = as_bridge_error(exc)
        if not isinstance(typed, BridgeError):
            raise exc
        status = http_status(typed)
        return cls(status, str(typed), 1 if status == 503 else None)


def error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        return error(422, describe_invalid(exc.errors()))

    @app.exception_handler(HTTPException)
    async def framework(_: Request, exc: HTTPException):  # unknown path, wrong method, unreadable body
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.retry_after)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return error(500, "internal error")
