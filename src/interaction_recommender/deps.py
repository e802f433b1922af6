"""What the lifespan builds once per process, and the FastAPI dependencies that hand it out."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.errors import Forbidden, Unauthorized
from interaction_recommender.runtime import Runtime
from interaction_recommender.settings import Settings

__all__ = [
    "Runtime",
    "RuntimeDep",
    "Transaction",
    "get_runtime",
    "require_admin",
    "require_api_token",
]


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    """The request's unit of work: committed when the endpoint returns (before the response is
    sent: scope="function"), rolled back if it raises. Services never commit."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.database.transaction() as conn:
        yield conn
    runtime.relay.notify()  # committed outbox rows may be waiting


Transaction = Annotated[AsyncConnection, Depends(_transaction, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _matches(token: str, candidates: list[str]) -> bool:
    # Compare against every candidate so timing says nothing about which (or whether one) matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(token.encode(), candidate.encode())
    return matched


async def require_api_token(request: Request) -> None:
    """When API_TOKENS is set, every non-health route needs one of them (or the admin token)."""
    settings: Settings = request.app.state.runtime.settings
    if not settings.api_tokens:
        return
    token = _bearer(request)
    accepted = [*settings.api_tokens, *([settings.admin_token] if settings.admin_token else [])]
    if token is None or not _matches(token, accepted):
        raise Unauthorized()


async def require_admin(request: Request) -> None:
    """Admin routes: the ADMIN_TOKEN bearer; refused outright when ADMIN_TOKEN is unset."""
    settings: Settings = request.app.state.runtime.settings
    if settings.admin_token is None:
        raise Forbidden("Admin routes are disabled: ADMIN_TOKEN is not set.")
    token = _bearer(request)
    if token is None:
        raise Unauthorized()
    if not _matches(token, [settings.admin_token]):
        raise Forbidden()
