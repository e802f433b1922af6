"""Reading the movie service's catalog: the client side of `recommender catalog sync`.

No database here: `fetch_catalog` (paged walk) and `fetch_all_movies` (one request) return a
`CatalogSnapshot` that the caller applies. A snapshot is only ever returned for a walk that reached
the last page; a page that still fails after its retries raises `CatalogSyncIncomplete`, so that a
partial walk can never be mistaken for the whole catalog (docs/contract.md, "Outbound: the
movie-service catalog").

Mapping of a movie-service Movie onto `MovieBatchItem` (`map_movie`): any field may be null or
missing, unknown fields are ignored, a value that is unusable (wrong type, out of range, too long)
becomes None ("not given") without losing the movie; only a missing or invalid id skips a movie.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import partial
from math import isfinite
from typing import Any, TypeVar
from uuid import UUID

import httpx
import orjson
import structlog
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from interaction_recommender.catalog.schemas import MovieBatchItem, MovieFields

__all__ = [
    "DEFAULT_MAX_PAGES",
    "MOVIES_PATH",
    "VIP_TAG",
    "CatalogSnapshot",
    "CatalogSyncIncomplete",
    "InvalidMovie",
    "fetch_all_movies",
    "fetch_catalog",
    "map_movie",
]

log = structlog.get_logger(__name__)

MOVIES_PATH = "/api/v1/movies"
DEFAULT_MAX_PAGES = 100_000  # a server whose total_pages keeps growing must not walk forever
MAX_BACKOFF_S = 30.0
VIP_TAG = "vip"

_MIN_YEAR, _MAX_YEAR = 1870, 2100  # MovieFields.release_year's range
_MAX_AGE = 21
_MAX_LABELS = 50
_MAX_REPORTED_ID = 64
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T.*)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d{1,9}", re.ASCII)
_NIL_UUID = UUID(int=0)

_T = TypeVar("_T")


@dataclass(frozen=True)
class CatalogSnapshot:
    """The whole catalog as the movie service listed it, one item per movie id."""

    movies: list[MovieBatchItem]
    pages: int  # pages fetched
    skipped: list[tuple[str, str]]  # (id as sent, or "?"; reason) of items that could not be mapped
    complete: bool = True  # a snapshot is only returned for a walk that finished
    duplicates: int = 0  # items seen again on a later page (unstable sort): the last one was kept


class CatalogSyncIncomplete(Exception):
    """The catalog could not be read to the end: do not treat what was read as the catalog."""

    def __init__(self, page: int | None, reason: str, *, pages_fetched: int = 0) -> None:
        where = f"{MOVIES_PATH}/all" if page is None else f"page {page}"
        super().__init__(f"catalog sync incomplete at {where}: {reason}")
        self.page = page  # None: the one-request GET /movies/all
        self.reason = reason
        self.pages_fetched = pages_fetched


class InvalidMovie(ValueError):
    """A movie that cannot be mapped at all (no usable id): skipped, never fatal to a sync."""

    def __init__(self, movie_id: str, reason: str) -> None:
        super().__init__(f"movie {movie_id}: {reason}")
        self.movie_id = movie_id
        self.reason = reason


class _RequestFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


# --- Fetching -------------------------------------------------------------------------------


async def fetch_catalog(
    client: httpx.AsyncClient,
    base_url: str,
    *,
    page_size: int = 100,
    attempts: int = 3,
    backoff_s: float = 0.5,
    sort_by: str = "title",
    max_pages: int = DEFAULT_MAX_PAGES,
) -> CatalogSnapshot:
    """Walk `GET {base_url}/api/v1/movies?page=N&size=S&sortBy=...&sortDirection=asc` from page 1
    to the last page (`meta.total_pages`, re-read on every page).

    Each page is tried up to `attempts` times (exponential backoff from `backoff_s`) on a
    connection error, a timeout, HTTP 5xx or 429, invalid JSON or a body without `data`/`meta`;
    any other non-2xx status fails at once. Raises `CatalogSyncIncomplete` when a page still
    fails, or when the server reports more than `max_pages` pages.
    """
    _check_arguments(attempts=attempts, backoff_s=backoff_s)
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    if not sort_by:
        raise ValueError("sort_by must not be empty")
    url = _movies_url(base_url)
    collector = _Collector()
    page = 1
    while True:
        params: dict[str, str | int] = {
            "page": page,
            "size": page_size,
            "sortBy": sort_by,
            "sortDirection": "asc",
        }
        try:
            data, total_pages = await _with_retry(
                partial(_fetch_page, client, url, params, page),
                what=f"page {page}",
                attempts=attempts,
                backoff_s=backoff_s,
            )
        except _RequestFailed as exc:
            raise CatalogSyncIncomplete(
                page, _give_up_reason(exc, attempts), pages_fetched=page - 1
            ) from exc
        collector.add_all(data)
        if total_pages > max_pages:
            raise CatalogSyncIncomplete(
                page,
                f"the server reports {total_pages} pages, more than the cap of {max_pages}",
                pages_fetched=page,
            )
        if page >= total_pages:  # the last page (or none at all: an empty catalog)
            break
        page += 1
    snapshot = collector.snapshot(pages=page)
    log.debug(
        "movie_service_catalog_fetched",
        pages=snapshot.pages,
        movies=len(snapshot.movies),
        skipped=len(snapshot.skipped),
        duplicates=snapshot.duplicates,
    )
    return snapshot


async def fetch_all_movies(
    client: httpx.AsyncClient,
    base_url: str,
    *,
    attempts: int = 3,
    backoff_s: float = 0.5,
) -> CatalogSnapshot:
    """`GET {base_url}/api/v1/movies/all` in one request; same retries and mapping as
    `fetch_catalog`. Raises `CatalogSyncIncomplete` (page None) when it still fails."""
    _check_arguments(attempts=attempts, backoff_s=backoff_s)
    url = f"{_movies_url(base_url)}/all"
    try:
        data = await _with_retry(
            partial(_fetch_all, client, url),
            what="all movies",
            attempts=attempts,
            backoff_s=backoff_s,
        )
    except _RequestFailed as exc:
        raise CatalogSyncIncomplete(None, _give_up_reason(exc, attempts)) from exc
    collector = _Collector()
    collector.add_all(data)
    return collector.snapshot(pages=1)


def _check_arguments(*, attempts: int, backoff_s: float) -> None:
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if not (backoff_s >= 0 and isfinite(backoff_s)):
        raise ValueError("backoff_s must be a finite number >= 0")


def _movies_url(base_url: str) -> str:
    return base_url.rstrip("/") + MOVIES_PATH


def _give_up_reason(exc: _RequestFailed, attempts: int) -> str:
    if exc.retryable and attempts > 1:
        return f"{exc.reason} (gave up after {attempts} attempts)"
    return exc.reason


async def _with_retry(
    fetch: Callable[[], Awaitable[_T]], *, what: str, attempts: int, backoff_s: float
) -> _T:
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff_s, max=MAX_BACKOFF_S) + wait_random(0, backoff_s),
        retry=retry_if_exception(lambda exc: isinstance(exc, _RequestFailed) and exc.retryable),
        before_sleep=partial(_log_retry, what),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fetch()
    raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover


def _log_retry(what: str, state: RetryCallState) -> None:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    log.warning(
        "movie_service_request_failed",
        what=what,
        attempt=state.attempt_number,
        reason=exc.reason if isinstance(exc, _RequestFailed) else repr(exc),
        retry_in_s=round(state.next_action.sleep, 3) if state.next_action else None,
    )


async def _get_object(
    client: httpx.AsyncClient, url: str, params: Mapping[str, str | int] | None = None
) -> dict[str, Any]:
    """GET a JSON object. Failures are classified as retryable (transient) or not."""
    try:
        response = await client.get(url, params=params)
    except httpx.TimeoutException as exc:
        raise _RequestFailed(f"timeout ({type(exc).__name__})", retryable=True) from exc
    except httpx.RequestError as exc:
        raise _RequestFailed(
            f"connection error ({type(exc).__name__}: {exc})", retryable=True
        ) from exc
    except httpx.InvalidURL as exc:
        raise _RequestFailed(f"invalid URL ({exc})", retryable=False) from exc
    status = response.status_code
    if status == 429 or status >= 500:
        raise _RequestFailed(f"HTTP {status}", retryable=True)
    if not 200 <= status < 300:
        raise _RequestFailed(f"HTTP {status}", retryable=False)
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise _RequestFailed(f"invalid JSON ({exc})", retryable=True) from exc
    if not isinstance(body, dict):
        raise _RequestFailed("the body is not a JSON object", retryable=True)
    outcome = body.get("status")
    if outcome is not None and outcome != "success":
        raise _RequestFailed(f"status {str(outcome)[:50]!r} instead of 'success'", retryable=True)
    return body


def _data(body: Mapping[str, Any]) -> list[Any]:
    data = body.get("data")
    if not isinstance(data, list):
        raise _RequestFailed("`data` is missing or not a list", retryable=True)
    return data


async def _fetch_page(
    client: httpx.AsyncClient, url: str, params: Mapping[str, str | int], page: int
) -> tuple[list[Any], int]:
    body = await _get_object(client, url, params)
    data = _data(body)
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise _RequestFailed("`meta` is missing or not an object", retryable=True)
    total_pages = meta.get("total_pages")
    if not isinstance(total_pages, int) or isinstance(total_pages, bool) or total_pages < 0:
        raise _RequestFailed("`meta.total_pages` is missing or not an integer >= 0", retryable=True)
    current = meta.get("current_page")
    if _is_int(current) and current != page:
        # e.g. a server that ignores `page`: walking on would read page 1 again and again
        raise _RequestFailed(f"asked for page {page}, got page {current}", retryable=True)
    return data, total_pages


async def _fetch_all(client: httpx.AsyncClient, url: str) -> list[Any]:
    return _data(await _get_object(client, url))


class _Collector:
    """Maps items as pages arrive; one item per movie id, the last one seen wins."""

    def __init__(self) -> None:
        self._movies: dict[UUID, MovieBatchItem] = {}
        self._skipped: list[tuple[str, str]] = []
        self._duplicates = 0

    def add_all(self, items: list[Any]) -> None:
        for raw in items:
            if not isinstance(raw, dict):
                self._skipped.append(("?", "not a JSON object"))
                continue
            try:
                item = map_movie(raw)
            except InvalidMovie as exc:
                self._skipped.append((exc.movie_id, exc.reason))
                continue
            if item.movie_id in self._movies:
                self._duplicates += 1
            self._movies[item.movie_id] = item

    def snapshot(self, *, pages: int) -> CatalogSnapshot:
        return CatalogSnapshot(
            movies=list(self._movies.values()),
            pages=pages,
            skipped=list(self._skipped),
            complete=True,
            duplicates=self._duplicates,
        )


# --- Mapping --------------------------------------------------------------------------------


def map_movie(raw: Mapping[str, Any]) -> MovieBatchItem:
    """A movie-service Movie -> MovieBatchItem. Raises `InvalidMovie` when the id is missing or
    not a UUID; any other unusable value is dropped (None = not given) on its own."""
    movie_id = _movie_id(raw.get("id"))
    release_date = _release_date(raw.get("releaseDate"))
    year = _whole_number(raw.get("year"))
    if year is None or not _MIN_YEAR <= year <= _MAX_YEAR:
        year = release_date.year if release_date is not None else None
    age = _whole_number(raw.get("age"))
    duration = _number(raw.get("duration"))
    vip = raw.get("isVip")
    status = raw.get("status")
    public = status is None or (isinstance(status, str) and status.strip().upper() == "PUBLIC")
    fields: dict[str, Any] = {
        "title": _text(raw.get("title")),
        "genres": _genres(raw.get("categories")),
        "release_year": year,
        "release_date": release_date,
        "duration_minutes": round(duration) if duration is not None and duration >= 0 else None,
        "minimum_age": min(age, _MAX_AGE) if age is not None and age >= 0 else None,
        "country": _label(raw.get("country")),
        "available": public,
        "tags": ([VIP_TAG] if vip else []) if isinstance(vip, bool) else None,
    }
    given = {name: value for name, value in fields.items() if value is not None}
    try:
        return MovieBatchItem.model_validate({"movie_id": movie_id, **given})
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    for name, value in given.items():
        try:
            MovieFields.model_validate({name: value})
        except ValidationError as exc:
            log.info(
                "movie_service_field_dropped",
                movie_id=str(movie_id),
                field=name,
                error=exc.errors()[0]["msg"],
            )
            continue
        kept[name] = value
    return MovieBatchItem.model_validate({"movie_id": movie_id, **kept})


def _movie_id(value: object) -> UUID:
    if value is None:
        raise InvalidMovie("?", "no id")
    if not isinstance(value, str):
        raise InvalidMovie("?", f"id is not a string ({type(value).__name__})")
    shown = value[:_MAX_REPORTED_ID]
    try:
        movie_id = UUID(value.strip())
    except ValueError:
        raise InvalidMovie(shown, "id is not a UUID") from None
    if movie_id == _NIL_UUID:
        raise InvalidMovie(shown, "id is the nil UUID")
    return movie_id


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> int | float | None:
    """A finite number, from a JSON number or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return number if isfinite(number) else None
    return None


def _whole_number(value: object) -> int | None:
    number = _number(value)
    if isinstance(number, float):
        return int(number) if number.is_integer() else None
    return number


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _label(value: object) -> str | None:
    """A genre or country name as MovieFields stores it (stripped, 1..100 chars), else None."""
    if not isinstance(value, str):
        return None
    try:
        return MovieFields.model_validate({"country": value}).country
    except ValidationError:
        return None


def _genres(categories: object) -> list[str] | None:
    """`categories[].name`, blank and invalid names skipped, case-insensitively deduplicated.
    None when the movie service gave no list (unknown); [] when it gave no usable name."""
    if not isinstance(categories, list):
        return None
    names: list[str] = []
    seen: set[str] = set()
    for category in categories:
        raw_name = category.get("name") if isinstance(category, dict) else category
        name = _label(raw_name)
        if name is None or name.lower() in seen:
            continue
        seen.add(name.lower())
        names.append(name)
    return names[:_MAX_LABELS]


def _release_date(value: object) -> date | None:
    """A "YYYY-MM-DD" date (a time part, if any, is ignored); invalid or out of range: None."""
    if not isinstance(value, str):
        return None
    match = _DATE.fullmatch(value.strip())
    if match is None:
        return None
    try:
        parsed = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return parsed if _MIN_YEAR <= parsed.year <= _MAX_YEAR else None
