"""The HTTP edge's dependencies: how a route gets the one thing it uses, and the token checks.

The lifespan (app.py) puts every long-lived object of the process on ``app.state`` under its
``Runtime`` field name. A route never sees the whole runtime: each package's endpoints.py declares
one ``Annotated`` dependency per thing its routes use, e.g.
``Recommendations = Annotated[RecommendationService, Depends(from_state("recommendations"))]``,
which reads that one attribute.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from interaction_recommender.errors import Forbidden, Unauthorized
from interaction_recommender.settings import Settings

__all__ = ["SettingsDep", "from_state", "require_admin", "require_api_token"]


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that reads ``app.state.<name>``. Async: FastAPI runs a plain ``def``
    dependency in a thread pool, which costs more than the lookup itself."""

    async def read(request: Request) -> Any:
        return getattr(request.app.state, name)

    read.__name__ = f"state_{name}"
    return read


SettingsDep = Annotated[Settings, Depends(from_state("settings"))]


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


async def require_api_token(request: Request, settings: SettingsDep) -> None:
    """When API_TOKENS is set, every non-health route needs one of them (or the admin token)."""
    if not settings.api_tokens:
        return
    token = _bearer(request)
    accepted = [*settings.api_tokens, *([settings.admin_token] if settings.admin_token else [])]
    if token is None or not _matches(token, accepted):
        raise Unauthorized()


async def require_admin(request: Request, settings: SettingsDep) -> None:
    """Admin routes: the ADMIN_TOKEN bearer; refused outright when ADMIN_TOKEN is unset."""
    if settings.admin_token is None:
        raise Forbidden("Admin routes are disabled: ADMIN_TOKEN is not set.")
    token = _bearer(request)
    if token is None:
        raise Unauthorized()
    if not _matches(token, [settings.admin_token]):
        raise Forbidden()
