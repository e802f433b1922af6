"""The movie-service client of `catalog sync`, against a stub movie service served over real HTTP
(uvicorn in a thread) with the contract's response shapes, plus table tests of the mapping."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from interaction_recommender.catalog.movie_service import (
    CatalogSnapshot,
    CatalogSyncIncomplete,
    InvalidMovie,
    fetch_all_movies,
    fetch_catalog,
    map_movie,
)
from interaction_recommender.catalog.schemas import MOVIE_FIELDS, MovieBatchItem
from tests.fixtures.movie_service import Stub, full_movie, movie_id, null_movie, uid
from tests.fixtures.services import free_port

FAST: dict[str, Any] = {"attempts": 3, "backoff_s": 0.001}  # retries without waiting


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as http:
        yield http


def by_id(snapshot: CatalogSnapshot) -> dict[uuid.UUID, MovieBatchItem]:
    return {item.movie_id: item for item in snapshot.movies}


# --- The walk -------------------------------------------------------------------------------


def catalog_of_23() -> list[dict[str, Any]]:
    movies = [full_movie(number) for number in range(23)]
    movies[0] = {
        "id": movie_id(0),
        "title": "Arrival",
        "description": "Linguist meets heptapods.",
        "status": "PUBLIC",
        "horizontalPoster": None,
        "verticalPoster": "https://img.example/arrival.jpg",
        "releaseDate": "2016-11-11",
        "trailerUrl": None,
        "age": 12,
        "year": 2016,
        "country": "USA",
        "isVip": True,
        "rank": 4,
        "duration": 116,
        "categories": [
            {"id": "c1", "name": "Drama", "description": None},
            {"id": "c2", "name": " Sci-Fi ", "description": "Science fiction"},
            {"id": "c3", "name": None},
            {"id": "c4", "name": "  "},
            {"id": "c5", "name": "drama"},
        ],
        "actors": [{"id": "a1", "name": "Amy Adams"}],
        "directors": [{"id": "d1", "name": "Denis Villeneuve"}],
        "somethingNew": {"nested": True},
    }
    movies[1] = null_movie(1)
    movies[2] = {"id": movie_id(2)}
    movies[5] = full_movie(5, id="not-a-uuid")
    movies[13] = full_movie(13, status="PRIVATE", year=None, releaseDate="1999-12-31", age=30)
    movies[22] = full_movie(22, title="x" * 600, duration=-3, categories=[])
    return movies


async def test_walks_every_page_and_maps_the_movies(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.movies = catalog_of_23()

    snapshot = await fetch_catalog(client, stub.base_url, page_size=10, **FAST)

    assert stub.state.requested_pages() == [1, 2, 3]
    _, query = stub.state.requests[0]
    assert query == {"page": "1", "size": "10", "sortBy": "title", "sortDirection": "asc"}
    assert snapshot.complete
    assert snapshot.pages == 3
    assert snapshot.skipped == [("not-a-uuid", "id is not a UUID")]
    assert len(snapshot.movies) == 22
    movies = by_id(snapshot)
    assert set(movies) == {uid(number) for number in range(23) if number != 5}
    assert movies[uid(0)] == MovieBatchItem(
        movie_id=uid(0),
        title="Arrival",
        genres=["Drama", "Sci-Fi"],
        release_year=2016,
        release_date=date(2016, 11, 11),
        duration_minutes=116,
        minimum_age=12,
        country="USA",
        available=True,
        tags=["vip"],
    )
    # All null: nothing is given but availability (null status = not hidden).
    assert movies[uid(1)] == MovieBatchItem(movie_id=uid(1), available=True)
    assert movies[uid(2)] == MovieBatchItem(movie_id=uid(2), available=True)
    assert movies[uid(13)].available is False
    assert movies[uid(13)].release_year == 1999  # from releaseDate
    assert movies[uid(13)].minimum_age == 21
    # The last page (3 movies): a 600-character title and a negative duration are dropped alone.
    last = movies[uid(22)]
    assert last.title is None
    assert last.duration_minutes is None
    assert last.genres == []
    assert last.release_year == 2002
    assert last.country == "France"
    assert movies[uid(7)].given() == {
        "title": "Movie 07",
        "genres": ["Drama"],
        "release_year": 2007,
        "release_date": date(2007, 6, 15),
        "duration_minutes": 97,
        "minimum_age": 12,
        "country": "France",
        "available": True,
        "tags": [],
    }


async def test_a_one_page_catalog_and_an_empty_one(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.movies = [full_movie(number) for number in range(4)]
    snapshot = await fetch_catalog(client, stub.base_url + "/", page_size=10, **FAST)
    assert (snapshot.pages, len(snapshot.movies)) == (1, 4)

    stub.state.movies = []
    snapshot = await fetch_catalog(client, stub.base_url, page_size=10, **FAST)
    assert (snapshot.pages, snapshot.movies, snapshot.skipped) == (1, [], [])


async def test_pages_may_hold_fewer_items_than_asked(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.pages = [
        [full_movie(n) for n in range(10)],
        [full_movie(n) for n in range(10, 14)],
        [full_movie(n) for n in range(14, 24)],
    ]
    snapshot = await fetch_catalog(client, stub.base_url, page_size=10, **FAST)
    assert stub.state.requested_pages() == [1, 2, 3]
    assert {item.movie_id for item in snapshot.movies} == {uid(n) for n in range(24)}


async def test_a_movie_seen_twice_is_kept_once_last_wins(
    stub: Stub, client: httpx.AsyncClient
) -> None:
    stub.state.pages = [
        [full_movie(1, title="Old title"), full_movie(2)],
        [full_movie(1, title="New title"), full_movie(3)],
    ]
    snapshot = await fetch_catalog(client, stub.base_url, page_size=2, **FAST)
    assert [item.movie_id for item in snapshot.movies] == [uid(1), uid(2), uid(3)]
    assert by_id(snapshot)[uid(1)].title == "New title"
    assert snapshot.duplicates == 1


async def test_items_that_are_not_objects_are_skipped(
    stub: Stub, client: httpx.AsyncClient
) -> None:
    stub.state.pages = [[full_movie(1), "junk", None, {"id": 42}, {"title": "no id"}]]
    snapshot = await fetch_catalog(client, stub.base_url, page_size=5, **FAST)
    assert [item.movie_id for item in snapshot.movies] == [uid(1)]
    assert snapshot.skipped == [
        ("?", "not a JSON object"),
        ("?", "not a JSON object"),
        ("?", "id is not a string (int)"),
        ("?", "no id"),
    ]


@pytest.mark.parametrize(
    "faults", [["500"], ["503", "502"], ["429"], ["invalid-json"], ["no-data"], ["no-meta"]]
)
async def test_a_page_that_fails_then_succeeds_is_retried(
    stub: Stub, client: httpx.AsyncClient, faults: list[str]
) -> None:
    stub.state.movies = [full_movie(number) for number in range(23)]
    stub.state.faults = {2: list(faults)}

    snapshot = await fetch_catalog(client, stub.base_url, page_size=10, **FAST)

    assert stub.state.requested_pages() == [1] + [2] * (len(faults) + 1) + [3]
    assert len(snapshot.movies) == 23
    assert snapshot.pages == 3


async def test_a_timeout_is_retried(stub: Stub) -> None:
    stub.state.movies = [full_movie(number) for number in range(3)]
    stub.state.faults = {1: ["slow"]}
    async with httpx.AsyncClient(timeout=0.1) as client:
        snapshot = await fetch_catalog(client, stub.base_url, page_size=10, **FAST)
    assert stub.state.requested_pages() == [1, 1]
    assert len(snapshot.movies) == 3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "HTTP 500 (gave up after 3 attempts)"),
        ("429", "HTTP 429 (gave up after 3 attempts)"),
        ("no-meta", "`meta` is missing or not an object (gave up after 3 attempts)"),
        ("error-status", "status 'error' instead of 'success' (gave up after 3 attempts)"),
    ],
)
async def test_a_page_that_keeps_failing_makes_the_sync_incomplete(
    stub: Stub, client: httpx.AsyncClient, fault: str, reason: str
) -> None:
    stub.state.movies = [full_movie(number) for number in range(23)]
    stub.state.always = {2: fault}

    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_catalog(client, stub.base_url, page_size=10, **FAST)

    assert caught.value.page == 2
    assert caught.value.reason == reason
    assert caught.value.pages_fetched == 1
    assert "page 2" in str(caught.value)
    assert stub.state.requested_pages() == [1, 2, 2, 2]  # three attempts, page 3 never asked


@pytest.mark.parametrize("fault", ["404", "400", "401", "403"])
async def test_client_errors_fail_at_once(
    stub: Stub, client: httpx.AsyncClient, fault: str
) -> None:
    stub.state.movies = [full_movie(number) for number in range(23)]
    stub.state.always = {3: fault}

    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_catalog(client, stub.base_url, page_size=10, **FAST)

    assert (caught.value.page, caught.value.reason) == (3, f"HTTP {fault}")
    assert stub.state.requested_pages() == [1, 2, 3]


@pytest.mark.timeout(30)  # without the cap the walk never ends
async def test_a_growing_page_count_is_capped(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.grow = True
    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_catalog(client, stub.base_url, page_size=1, max_pages=5, **FAST)
    assert caught.value.page == 5
    assert "more than the cap of 5" in caught.value.reason
    assert stub.state.requested_pages() == [1, 2, 3, 4, 5]


async def test_a_server_that_ignores_the_page_parameter_is_not_trusted(
    stub: Stub, client: httpx.AsyncClient
) -> None:
    stub.state.movies = [full_movie(number) for number in range(23)]
    stub.state.ignore_page = True
    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_catalog(client, stub.base_url, page_size=10, **FAST)
    assert caught.value.page == 2
    assert caught.value.reason.startswith("asked for page 2, got page 1")


async def test_an_unreachable_service_makes_the_sync_incomplete(
    client: httpx.AsyncClient,
) -> None:
    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_catalog(client, f"http://127.0.0.1:{free_port()}", **FAST)
    assert caught.value.page == 1
    assert caught.value.reason.startswith("connection error (ConnectError")
    assert caught.value.reason.endswith("(gave up after 3 attempts)")


async def test_attempts_one_means_no_retry(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.movies = [full_movie(1)]
    stub.state.faults = {1: ["500"]}
    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_catalog(client, stub.base_url, attempts=1, backoff_s=0)
    assert caught.value.reason == "HTTP 500"
    assert stub.state.requested_pages() == [1]


async def test_the_backoff_grows(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.always = {1: "500"}
    started = time.monotonic()
    with pytest.raises(CatalogSyncIncomplete):
        await fetch_catalog(client, stub.base_url, attempts=3, backoff_s=0.1)
    # waits of 0.1 then 0.2 seconds (plus up to 0.1 jitter each)
    assert 0.3 <= time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "arguments",
    [{"page_size": 0}, {"attempts": 0}, {"backoff_s": -1}, {"max_pages": 0}, {"sort_by": ""}],
)
async def test_bad_arguments_are_refused(
    client: httpx.AsyncClient, arguments: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="must"):
        await fetch_catalog(client, "http://127.0.0.1:1", **arguments)


# --- GET /movies/all ------------------------------------------------------------------------


async def test_fetch_all_movies(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.movies = catalog_of_23()
    stub.state.faults = {0: ["500", "invalid-json"]}

    snapshot = await fetch_all_movies(client, stub.base_url, **FAST)

    assert [path for path, _ in stub.state.requests] == ["/api/v1/movies/all"] * 3
    assert snapshot.complete
    assert snapshot.pages == 1
    assert len(snapshot.movies) == 22
    assert snapshot.skipped == [("not-a-uuid", "id is not a UUID")]
    walked = await fetch_catalog(client, stub.base_url, page_size=10, **FAST)
    assert by_id(snapshot) == by_id(walked)


async def test_fetch_all_movies_that_keeps_failing(stub: Stub, client: httpx.AsyncClient) -> None:
    stub.state.always = {0: "no-data"}
    with pytest.raises(CatalogSyncIncomplete) as caught:
        await fetch_all_movies(client, stub.base_url, **FAST)
    assert caught.value.page is None
    assert caught.value.reason == "`data` is missing or not a list (gave up after 3 attempts)"
    assert "/api/v1/movies/all" in str(caught.value)


# --- Mapping --------------------------------------------------------------------------------

NOTHING_GIVEN: dict[str, Any] = dict.fromkeys(MOVIE_FIELDS) | {"available": True}
LONG = "y" * 101


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({}, {}, id="only-id"),
        pytest.param({"rank": 3, "unknown": {"a": 1}, "actors": None}, {}, id="unknown-ignored"),
        # title
        pytest.param({"title": "  Heat  "}, {"title": "Heat"}, id="title-stripped"),
        pytest.param({"title": "   "}, {}, id="title-blank"),
        pytest.param({"title": 42}, {}, id="title-number"),
        pytest.param({"title": "t" * 500}, {"title": "t" * 500}, id="title-500"),
        pytest.param({"title": "t" * 600, "year": 1990}, {"release_year": 1990}, id="title-600"),
        pytest.param({"title": "a\x00b", "country": "Italy"}, {"country": "Italy"}, id="title-nul"),
        # year and releaseDate
        pytest.param({"year": 1994}, {"release_year": 1994}, id="year"),
        pytest.param({"year": "1994"}, {"release_year": 1994}, id="year-string"),
        pytest.param({"year": 1994.0}, {"release_year": 1994}, id="year-float"),
        pytest.param({"year": True}, {}, id="year-bool"),
        pytest.param({"year": 1500}, {}, id="year-too-early"),
        pytest.param(
            {"releaseDate": "1999-03-31"},
            {"release_year": 1999, "release_date": date(1999, 3, 31)},
            id="year-from-date",
        ),
        pytest.param(
            {"year": 2000, "releaseDate": "1999-03-31"},
            {"release_year": 2000, "release_date": date(1999, 3, 31)},
            id="year-wins",
        ),
        pytest.param(
            {"year": 3000, "releaseDate": "2001-01-02"},
            {"release_year": 2001, "release_date": date(2001, 1, 2)},
            id="bad-year-date-fallback",
        ),
        pytest.param(
            {"releaseDate": "2001-01-02T10:00:00Z"},
            {"release_year": 2001, "release_date": date(2001, 1, 2)},
            id="date-with-time",
        ),
        pytest.param({"releaseDate": "2021-02-30"}, {}, id="date-impossible"),
        pytest.param({"releaseDate": "31/03/1999"}, {}, id="date-other-format"),
        pytest.param({"releaseDate": "20210101"}, {}, id="date-basic-format"),
        pytest.param({"releaseDate": "0001-01-01"}, {}, id="date-sentinel"),
        pytest.param({"releaseDate": 19990331}, {}, id="date-number"),
        # duration (minutes)
        pytest.param({"duration": 95}, {"duration_minutes": 95}, id="duration"),
        pytest.param({"duration": 0}, {"duration_minutes": 0}, id="duration-zero"),
        pytest.param({"duration": 95.6}, {"duration_minutes": 96}, id="duration-fraction"),
        pytest.param({"duration": "120"}, {"duration_minutes": 120}, id="duration-string"),
        pytest.param({"duration": -5}, {}, id="duration-negative"),
        pytest.param({"duration": "long"}, {}, id="duration-text"),
        pytest.param({"duration": "NaN"}, {}, id="duration-nan"),
        pytest.param({"duration": 20_000}, {}, id="duration-too-long"),
        pytest.param({"duration": [90]}, {}, id="duration-list"),
        # age
        pytest.param({"age": 0}, {"minimum_age": 0}, id="age-zero"),
        pytest.param({"age": 18}, {"minimum_age": 18}, id="age"),
        pytest.param({"age": "16"}, {"minimum_age": 16}, id="age-string"),
        pytest.param({"age": 25}, {"minimum_age": 21}, id="age-clamped"),
        pytest.param({"age": -1}, {}, id="age-negative"),
        pytest.param({"age": 12.5}, {}, id="age-fraction"),
        # country
        pytest.param({"country": " France "}, {"country": "France"}, id="country"),
        pytest.param({"country": ""}, {}, id="country-empty"),
        pytest.param({"country": LONG}, {}, id="country-too-long"),
        pytest.param({"country": ["FR"]}, {}, id="country-list"),
        # status -> available
        pytest.param({"status": "PUBLIC"}, {"available": True}, id="public"),
        pytest.param({"status": "public"}, {"available": True}, id="public-lowercase"),
        pytest.param({"status": None}, {"available": True}, id="status-null"),
        pytest.param({"status": "PRIVATE"}, {"available": False}, id="private"),
        pytest.param({"status": "DRAFT"}, {"available": False}, id="draft"),
        pytest.param({"status": "DELETED"}, {"available": False}, id="deleted"),
        pytest.param({"status": ""}, {"available": False}, id="status-empty"),
        pytest.param({"status": 1}, {"available": False}, id="status-number"),
        # isVip -> tags
        pytest.param({"isVip": True}, {"tags": ["vip"]}, id="vip"),
        pytest.param({"isVip": False}, {"tags": []}, id="not-vip"),
        pytest.param({"isVip": None}, {}, id="vip-null"),
        pytest.param({"isVip": "yes"}, {}, id="vip-string"),
        # categories -> genres
        pytest.param({"categories": None}, {}, id="categories-null"),
        pytest.param({"categories": []}, {"genres": []}, id="categories-empty"),
        pytest.param({"categories": "Drama"}, {}, id="categories-string"),
        pytest.param(
            {
                "categories": [
                    {"id": "1", "name": "Drama"},
                    {"id": "2", "name": None},
                    {"id": "3", "name": "   "},
                    {"id": "4"},
                    None,
                    {"id": "5", "name": " Comedy "},
                    {"id": "6", "name": "DRAMA"},
                    {"id": "7", "name": LONG},
                    {"id": "8", "name": 7},
                ]
            },
            {"genres": ["Drama", "Comedy"]},
            id="categories-cleaned",
        ),
        pytest.param(
            {"categories": [{"name": f"G{n}"} for n in range(60)]},
            {"genres": [f"G{n}" for n in range(50)]},
            id="categories-capped",
        ),
    ],
)
def test_map_movie(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    item = map_movie({"id": movie_id(9)} | raw)
    assert item.movie_id == uid(9)
    assert item.model_dump(exclude={"movie_id"}) == NOTHING_GIVEN | expected


def test_map_movie_accepts_any_uuid_spelling() -> None:
    assert map_movie({"id": movie_id(9).upper()}).movie_id == uid(9)
    assert map_movie({"id": f" {movie_id(9)} "}).movie_id == uid(9)


@pytest.mark.parametrize(
    ("raw", "shown", "reason"),
    [
        ({}, "?", "no id"),
        ({"id": None}, "?", "no id"),
        ({"id": 123}, "?", "id is not a string (int)"),
        ({"id": "not-a-uuid"}, "not-a-uuid", "id is not a UUID"),
        ({"id": ""}, "", "id is not a UUID"),
        ({"id": "z" * 100}, "z" * 64, "id is not a UUID"),
        ({"id": str(uuid.UUID(int=0))}, str(uuid.UUID(int=0)), "id is the nil UUID"),
    ],
)
def test_map_movie_refuses_a_bad_id(raw: dict[str, Any], shown: str, reason: str) -> None:
    with pytest.raises(InvalidMovie) as caught:
        map_movie(raw | {"title": "Fine"})
    assert (caught.value.movie_id, caught.value.reason) == (shown, reason)
