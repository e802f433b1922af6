"""The HTTP edge: the one pure-ASGI middleware (cheaper than a stack of BaseHTTPMiddleware), the
translation of the error hierarchy (errors.py) into responses, and JSON responses.

Per request the middleware: takes or makes a request id (echoed as X-Request-ID), refuses
non-JSON bodies (415) and oversized bodies (413) before the app reads them, turns an unhandled
exception into the error shape (503 with Retry-After when a dependency failed, else 500 with an
error id in the log), records Prometheus metrics by route template, and writes one structured
access-log line.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interaction_recommender import metrics
from interaction_recommender.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
    error_body,
    is_dependency_failure,
    validation_details,
)
from interaction_recommender.logs import AccessLog
from interaction_recommender.wire import dumps

__all__ = [
    "API_PREFIX",
    "EdgeMiddleware",
    "OrjsonRoute",
    "error_response",
    "install_error_handlers",
    "json_response",
]

API_PREFIX = "/api/v1"

log = structlog.get_logger("interaction_recommender.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException so that FastAPI's body reader passes it through (it turns any other
    exception raised while reading the body into a 400)."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_batch_body_bytes: int,
        access_log: bool,
        log_json: bool = True,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch_body_bytes = max_batch_body_bytes
        self.access_log = AccessLog(json=log_json) if access_log else None

    def _body_limit(self, path: str) -> int:
        # Bulk routes are the ones named ".../batch"; everything else carries one object.
        return self.max_batch_body_bytes if path.endswith("/batch") else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        headers = _headers(scope)
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = str(uuid.uuid4())
        trace: str | None = headers.get("traceparent", "")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if _TRACEPARENT.match(trace or ""):
            structlog.contextvars.bind_contextvars(traceparent=trace)
        else:
            trace = None

        status = 500
        response_started = False
        request_id_header = (b"x-request-id", request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), request_id_header]
            await send(message)

        limit = self._body_limit(scope["path"])
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        try:
            refusal = _refuse_early(scope["method"], headers, limit)
            if refusal is not None:
                raise refusal
            await self.app(scope, limited_receive, send_wrapper)
        except Exception as exc:  # the one place an unhandled error becomes the error shape
            if response_started:
                log.exception("response_aborted")
                raise
            error = _as_service_error(exc)
            error_id = str(uuid.uuid4())
            if error.status_code >= 500:
                log.error(
                    "request_error",
                    error=error.error,
                    error_id=error_id,
                    exc_type=type(exc).__name__,
                    exc_info=error.status_code == 500,
                )
            await _send_error(send_wrapper, error, error_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # The handler's template without the /api/v1 prefix: both spellings share a handler.
            template = (getattr(route, "path", None) or "unmatched").removeprefix(API_PREFIX)
            method = scope["method"]
            _count(template, method, status, elapsed)
            if self.access_log is not None:
                self.access_log.write(
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                    request_id=request_id,
                    traceparent=trace,
                )


# The labelled children of the two HTTP metrics, looked up once per (route, method, status):
# `.labels()` builds and locks on every call.
_REQUESTS: dict[tuple[str, str, int], Any] = {}
_LATENCIES: dict[tuple[str, str], Any] = {}


def _count(template: str, method: str, status: int, elapsed: float) -> None:
    requests = _REQUESTS.get((template, method, status))
    if requests is None:
        requests = _REQUESTS[template, method, status] = metrics.HTTP_REQUESTS.labels(
            template, method, str(status)
        )
    latency = _LATENCIES.get((template, method))
    if latency is None:
        latency = _LATENCIES[template, method] = metrics.HTTP_LATENCY.labels(template, method)
    requests.inc()
    latency.observe(elapsed)


_WANTED = frozenset(
    {b"x-request-id", b"traceparent", b"content-length", b"transfer-encoding", b"content-type"}
)


def _headers(scope: Scope) -> dict[str, str]:
    """The few headers the edge reads (lower-case names; servers send them lower-cased)."""
    return {
        name: v.decode("latin-1")
        for k, v in scope["headers"]
        if (lower := k.lower()) in _WANTED and (name := lower.decode("latin-1"))
    }


def _refuse_early(method: str, headers: dict[str, str], limit: int) -> ServiceError | None:
    if method not in _BODY_METHODS:
        return None
    length_text = headers.get("content-length")
    has_body = "transfer-encoding" in headers
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError:
            return PayloadTooLarge("Content-Length is not a number.")
        if length > limit:
            return PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        has_body = has_body or length > 0
    if has_body:
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            return UnsupportedMediaType()
    return None


def _as_service_error(exc: Exception) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, _BodyTooLarge):
        return PayloadTooLarge()
    if is_dependency_failure(exc):
        return ServiceUnavailable("The database or another dependency is unavailable; retry later.")
    return ServiceError()


async def _send_error(send: Any, error: ServiceError, error_id: str) -> None:
    body = error_body(error.error, error.message, error_id=error_id, details=error.details)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # orjson: several times faster than the standard library on 1,000-event batches,
            # and stricter (NaN, lone surrogates and integers over 64 bits are invalid JSON),
            # which FastAPI answers with a 422 since orjson's error is a JSONDecodeError.
            self._json = orjson.loads(await self.body())
        return self._json


class OrjsonRoute(APIRoute):
    """Routes whose JSON request bodies are parsed by orjson."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_orjson(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return with_orjson


def json_response(document: Any, status_code: int = 200) -> Response:
    """A document built by hand, serialised once by wire.dumps (no response model)."""
    return Response(dumps(document), status_code=status_code, media_type="application/json")


def error_response(exc: ServiceError, error_id: str | None = None) -> Response:
    return Response(
        error_body(exc.error, exc.message, error_id=error_id, details=exc.details),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_service_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        error_id = str(uuid.uuid4())
        if exc.status_code >= 500:
            log.warning(
                "request_failed", error=exc.error, error_id=error_id, status=exc.status_code
            )
        return error_response(exc, error_id)

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(Unprocessable(details=validation_details(exc.errors())))

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        mapped: dict[int, type[ServiceError]] = {
            400: BadRequest,
            401: Unauthorized,
            403: Forbidden,
            404: NotFound,
            413: PayloadTooLarge,
            415: UnsupportedMediaType,
            422: Unprocessable,
            503: ServiceUnavailable,
        }
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's body reader failed to decode the JSON (not UTF-8, nested too deep, an
            # integer too long): malformed input, a 422 like any other invalid JSON
            # (docs/contract.md).
            return error_response(
                Unprocessable(
                    "The request body is not valid JSON.",
                    details=[
                        {"field": "body", "message": "JSON decode error", "type": "json_invalid"}
                    ],
                )
            )
        if exc.status_code in mapped:
            return error_response(mapped[exc.status_code]())
        generic = ServiceError(str(exc.detail) if exc.status_code < 500 else None)
        generic.status_code = exc.status_code
        generic.error = "method_not_allowed" if exc.status_code == 405 else "http_error"
        generic.headers = dict(exc.headers or {})
        return error_response(generic)

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
