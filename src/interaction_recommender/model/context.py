"""Recommendation contexts, as the Java callers send them (docs/contract.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

__all__ = ["Context", "parse_context"]

ContextKind = Literal["home", "detail", "similar", "search"]


@dataclass(frozen=True)
class Context:
    kind: ContextKind
    movie_id: UUID | None = None
    fallback: bool = False
    """True when the caller asked for something the service answered with the home policy
    (an unknown context, or a detail row without a movie)."""

    @property
    def label(self) -> str:
        """The context as served: `home`, `similar:<uuid>`, ..."""
        return f"{self.kind}:{self.movie_id}" if self.movie_id else self.kind

    @property
    def policy(self) -> str:
        return "home:fallback" if self.fallback else self.kind


def parse_context(raw: str | None, movie_id: UUID | None = None) -> Context:
    """`home`, `search`, `detail`, `detail:<uuid>` (or `detail` + movie_id), `similar:<uuid>`.
    An unknown context, or a detail without a movie, gets the home policy (the caller cannot
    recover from an error). A `similar:`/`detail:` id that is not a UUID raises ValueError."""
    text = (raw or "home").strip()
    name, _, argument = text.partition(":")
    name = name.lower()
    if name in ("similar", "detail") and argument:
        return Context(name, UUID(argument))  # type: ignore[arg-type]
    if name == "detail":
        return Context("detail", movie_id) if movie_id else Context("home", fallback=True)
    if name == "similar":
        return Context("similar", movie_id) if movie_id else Context("home", fallback=True)
    if name in ("home", "search") and not argument:
        return Context(name)  # type: ignore[arg-type]
    return Context("home", fallback=True)
