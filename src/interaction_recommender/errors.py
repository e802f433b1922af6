"""One error hierarchy and the one JSON shape every error is rendered in.

Tree::

    ServiceError (500 internal_error)
    ├── BadRequest (400 bad_request)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    ├── NotFound (404 not_found)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── Unprocessable (422 validation_error)
    └── ServiceUnavailable (503 service_unavailable, Retry-After)

The body is always ``{"error", "message", "details"?, "errorId"}``; never a stack trace, SQL text,
URL or secret. The ``errorId`` appears in the structured log line of the same failure. Nothing
here knows HTTP frameworks: the edge (http.py) turns these into responses.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
import redis.exceptions
import sqlalchemy.exc

__all__ = [
    "BadRequest",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceError",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "error_body",
    "is_dependency_failure",
    "validation_details",
]

# Raised by asyncpg on the ingest hot path (no SQLAlchemy wrapping there): the server is gone,
# restarting, out of connections, too slow (statement timeout), or a deadlock victim.
_ASYNCPG_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,
    asyncpg.DeadlockDetectedError,
)


class ServiceError(Exception):
    status_code = 500
    error = "internal_error"
    default_message = "The service failed to handle the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = list(details) if details is not None else None
        self.headers = dict(headers or {})
        super().__init__(self.message)


class BadRequest(ServiceError):
    status_code = 400
    error = "bad_request"
    default_message = "The request is malformed."


class Unauthorized(ServiceError):
    status_code = 401
    error = "unauthorized"
    default_message = "A valid bearer token is required."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status_code = 403
    error = "forbidden"
    default_message = "This token may not use this route."


class NotFound(ServiceError):
    status_code = 404
    error = "not_found"
    default_message = "Not found."


class PayloadTooLarge(ServiceError):
    status_code = 413
    error = "payload_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(ServiceError):
    status_code = 415
    error = "unsupported_media_type"
    default_message = "The request body must be JSON (Content-Type: application/json)."


class Unprocessable(ServiceError):
    status_code = 422
    error = "validation_error"
    default_message = "The request is not valid."


class ServiceUnavailable(ServiceError):
    status_code = 503
    error = "service_unavailable"
    default_message = "A dependency is unavailable; retry later."

    def __init__(self, message: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


def error_body(
    error: str,
    message: str,
    *,
    error_id: str | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    body: dict[str, Any] = {"error": error, "message": message}
    if details is not None:
        body["details"] = list(details)
    body["errorId"] = error_id or str(uuid.uuid4())
    return orjson.dumps(body)


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Field path + short message per problem; the offending value is never echoed (it may be
    personal data such as a search query)."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        details.append(
            {
                "field": ".".join(loc),
                "message": str(err.get("msg", "invalid value")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return details


def is_dependency_failure(exc: BaseException) -> bool:
    """True when the database (or another dependency) is unreachable, slow or out of connections,
    as opposed to a bug: these become a 503 with Retry-After instead of a 500."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True  # redis-py's own classes, not subclasses of the builtin ones
    if isinstance(exc, _ASYNCPG_TRANSIENT):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
    return isinstance(exc, OSError)
