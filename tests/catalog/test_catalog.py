"""The catalog API, its change messages and in-memory copy, placeholders and sync."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from interaction_recommender.catalog.movie_service import CatalogSyncIncomplete
from interaction_recommender.catalog.schemas import MovieFields
from interaction_recommender.catalog.service import upsert_movies
from interaction_recommender.catalog.sync import sync_catalog
from interaction_recommender.settings import Settings
from interaction_recommender.storage import Database
from interaction_recommender.storage.tables import movies
from tests.fixtures.app import Service, run_service
from tests.fixtures.bus import read_topic
from tests.fixtures.contract import assert_error_shape, assert_instant
from tests.fixtures.factories import event_payload, new_id
from tests.fixtures.movie_service import Stub, full_movie, uid
from tests.fixtures.serving import eventually

FULL = {
    "title": "Iron Harvest",
    "genres": ["Drama", "War"],
    "releaseYear": 2021,
    "releaseDate": "2021-03-04",
    "durationMinutes": 121,
    "minimumAge": 13,
    "country": "Poland",
    "tags": ["award-winner"],
}


async def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_put_creates_a_movie_and_get_reads_it(service: Service) -> None:
    movie_id = new_id()

    created = await service.client.put(f"/api/v1/movies/{movie_id}", json=FULL)
    read = await service.client.get(f"/movies/{movie_id}")

    assert created.status_code == 200, created.text
    body = created.json()
    assert body == read.json()
    assert body["movieId"] == movie_id
    assert {k: body[k] for k in FULL} == FULL
    assert body["available"] is True
    assert body["source"] == "api"
    assert_instant(body["createdAt"])
    assert_instant(body["updatedAt"])


async def test_absent_and_null_fields_leave_stored_values_unchanged(service: Service) -> None:
    movie_id = new_id()
    url = f"/api/v1/movies/{movie_id}"
    await service.client.put(url, json=FULL)

    nulls = await service.client.put(url, json=dict.fromkeys(FULL) | {"country": "France"})
    empty = await service.client.put(url, json={})
    hidden = await service.client.put(url, json={"available": False, "genres": ["Drama"]})
    still_hidden = await service.client.put(url, json={"available": None})

    assert nulls.json() | {"country": "Poland", "updatedAt": None} == (
        empty.json() | {"country": "Poland", "updatedAt": None}
    )
    assert nulls.json()["title"] == "Iron Harvest"
    assert nulls.json()["country"] == "France"
    assert empty.json()["country"] == "France"
    assert hidden.json()["available"] is False
    assert hidden.json()["genres"] == ["Drama"]
    assert still_hidden.json()["available"] is False
    assert still_hidden.json()["releaseYear"] == 2021


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_unknown_movie_and_bad_ids(service: Service) -> None:
    unknown = await service.client.get(f"/api/v1/movies/{new_id()}")
    bad_id = await service.client.get("/api/v1/movies/not-a-uuid")
    bad_year = await service.client.put(f"/api/v1/movies/{new_id()}", json={"releaseYear": 1500})

    assert unknown.status_code == 404
    assert_error_shape(unknown.json())
    assert bad_id.status_code == 422
    assert bad_year.status_code == 422
    assert_error_shape(bad_year.json())


async def test_batch_rejects_items_one_by_one(service: Service) -> None:
    good, with_nulls = new_id(), new_id()
    items: list[Any] = [
        {"movieId": good, **FULL},
        {"movieId": "nope", "title": "X"},
        {"movieId": new_id(), "durationMinutes": -5},
        {"movieId": with_nulls, "title": "Only a title", "genres": None, "available": None},
        "not an object",
    ]

    response = await service.client.post("/api/v1/movies/batch", json={"movies": items})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "upserted",
        "rejected",
        "rejected",
        "upserted",
        "rejected",
    ]
    assert (body["upserted"], body["rejected"]) == (2, 3)
    assert "durationMinutes" in body["results"][2]["error"]
    assert (await service.client.get(f"/movies/{good}")).json()["title"] == "Iron Harvest"
    stored = (await service.client.get(f"/movies/{with_nulls}")).json()
    assert (stored["title"], stored["genres"], stored["available"]) == ("Only a title", [], True)

    too_many = [{"movieId": new_id()} for _ in range(5001)]
    refused = await service.client.post("/movies/batch", json={"movies": too_many})
    assert refused.status_code == 422


async def test_only_real_changes_are_announced(service: Service) -> None:
    movie_id = new_id()
    url = f"/api/v1/movies/{movie_id}"
    await service.client.put(url, json=FULL)
    await service.client.put(url, json=FULL)  # the same again: no change
    await service.client.put(url, json={"title": "Iron Harvest II"})

    def about_this_movie(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in messages if m["movie"]["movieId"] == movie_id]

    messages = await read_topic(
        service.runtime,
        service.runtime.topics.movie_catalog,
        until=lambda ms: len(about_this_movie(ms)) >= 2,
    )
    await asyncio.sleep(0.5)  # a third (wrong) message would have arrived by now
    messages = about_this_movie(
        await read_topic(
            service.runtime, service.runtime.topics.movie_catalog, until=lambda _: True
        )
    )
    assert [m["movie"]["title"] for m in messages] == ["Iron Harvest", "Iron Harvest II"]
    assert {m["change"] for m in messages} == {"upserted"}
    assert all(m["schemaVersion"] == 1 for m in messages)


async def test_hiding_a_movie_reaches_the_in_memory_catalog_within_10s(service: Service) -> None:
    movie_id = new_id()
    url = f"/api/v1/movies/{movie_id}"
    catalog = service.runtime.catalog
    await service.client.put(url, json=FULL)
    await _wait_until(lambda: catalog.is_available(uuid.UUID(movie_id)))
    version = catalog.version

    await service.client.put(url, json={"available": False})

    await _wait_until(lambda: not catalog.is_available(uuid.UUID(movie_id)))
    assert catalog.version > version


async def test_changes_by_another_process_are_seen_within_10s(service: Service) -> None:
    movie_id = uuid.uuid4()
    other_process = Database(service.settings)  # its own engine and pool, as the CLI would
    try:
        async with other_process.transaction() as conn:
            await upsert_movies(
                conn,
                [(movie_id, MovieFields(title="Synced elsewhere"))],
                source="movie-service",
                topic=service.runtime.topics.movie_catalog,
            )
    finally:
        await other_process.dispose()

    await _wait_until(lambda: movie_id in service.runtime.catalog)
    movie = service.runtime.catalog.get(movie_id)
    assert movie is not None
    assert movie.title == "Synced elsewhere"


async def test_events_for_unknown_movies_create_one_placeholder_each(settings: Settings) -> None:
    consuming = settings.model_copy(update={"enable_consumers": True})
    new_movie, known_movie = new_id(), new_id()
    async with run_service(consuming) as service:
        await service.client.put(f"/api/v1/movies/{known_movie}", json=FULL)
        posts = [
            service.client.post(
                "/api/v1/events/watch", json=event_payload("watch", movie_id=new_movie)
            )
            for _ in range(20)
        ]
        posts.append(
            service.client.post(
                "/api/v1/events/rating", json=event_payload("rating", movie_id=known_movie)
            )
        )
        assert all(r.status_code == 200 for r in await asyncio.gather(*posts))

        movie_uuid = uuid.UUID(new_movie)
        await _wait_until(lambda: movie_uuid in service.runtime.catalog, timeout=20)
        placeholder = (await service.client.get(f"/api/v1/movies/{new_movie}")).json()
        known = (await service.client.get(f"/api/v1/movies/{known_movie}")).json()
        async with service.runtime.database.transaction() as conn:
            rows = (
                await conn.execute(select(func.count()).where(movies.c.movie_id == movie_uuid))
            ).scalar_one()
        filled = await service.client.put(f"/api/v1/movies/{new_movie}", json=FULL)

    assert rows == 1
    assert placeholder["source"] == "event"
    assert placeholder["available"] is True
    assert placeholder["title"] is None
    assert placeholder["genres"] == []
    assert known["source"] == "api"  # an event never turns a movie into a placeholder
    assert filled.json()["source"] == "api"  # metadata fills the placeholder in
    assert filled.json()["title"] == "Iron Harvest"


def _sync_settings(settings: Settings, stub: Stub) -> Settings:
    return settings.model_copy(
        update={
            "movie_service_url": stub.base_url,
            "movie_service_page_size": 10,
            "movie_service_attempts": 3,
        }
    )


async def test_sync_walks_every_page_and_hides_unlisted_movies_after_a_complete_walk(
    service: Service, stub: Stub
) -> None:
    settings = _sync_settings(service.settings, stub)
    topic = service.runtime.topics.movie_catalog
    database = service.runtime.database
    stub.state.movies = [full_movie(n) for n in range(1, 24)]  # 3 pages of 10, 10, 3
    stub.state.faults = {2: ["500"]}  # page 2 fails once: retried within the run

    first = await sync_catalog(database, settings, topic=topic)
    again = await sync_catalog(database, settings, topic=topic)
    stub.state.movies = stub.state.movies[3:]  # the movie service stops listing 1, 2 and 3
    third = await sync_catalog(database, settings, topic=topic)

    assert (first.pages, first.listed, first.changed, first.hidden) == (3, 23, 23, 0)
    assert (again.changed, again.hidden) == (0, 0)  # safe to re-run
    assert (third.listed, third.changed, third.hidden) == (20, 0, 3)
    movie = (await service.client.get(f"/api/v1/movies/{uid(5)}")).json()
    assert movie["title"] == "Movie 05"
    assert movie["genres"] == ["Drama"]
    assert (movie["releaseYear"], movie["durationMinutes"], movie["minimumAge"]) == (2005, 95, 12)
    assert movie["source"] == "movie-service"
    assert movie["available"] is True
    gone = (await service.client.get(f"/api/v1/movies/{uid(1)}")).json()
    assert gone["available"] is False


async def test_an_incomplete_sync_changes_nothing(service: Service, stub: Stub) -> None:
    settings = _sync_settings(service.settings, stub)
    topic = service.runtime.topics.movie_catalog
    stub.state.movies = [full_movie(n) for n in range(1, 24)]
    await sync_catalog(service.runtime.database, settings, topic=topic)

    stub.state.movies = [full_movie(n, title="Renamed") for n in range(4, 24)]
    stub.state.always = {2: "503"}  # the last page (of two) never answers
    with pytest.raises(CatalogSyncIncomplete):
        await sync_catalog(service.runtime.database, settings, topic=topic)

    unlisted = (await service.client.get(f"/api/v1/movies/{uid(1)}")).json()
    renamed = (await service.client.get(f"/api/v1/movies/{uid(5)}")).json()
    assert unlisted["available"] is True  # nothing hidden by a walk that did not finish
    assert renamed["title"] == "Movie 05"  # and nothing merged either


async def test_embedded_first_start_loads_the_demo_world_once(tmp_path: Path) -> None:
    from tests.fixtures.app import embedded_settings

    settings = embedded_settings(tmp_path, demo_data=True, demo_users=40, demo_movies=25)
    async with run_service(settings) as service:
        first_movies = len(service.runtime.catalog)

        async def demo_model_served() -> bool:  # trained in the background at first start
            info = (await service.client.get("/api/v1/model/info")).json()
            return bool(info["status"] == "loaded")

        await eventually(demo_model_served, timeout=60)
        async with service.runtime.database.transaction() as conn:
            from interaction_recommender.storage.tables import raw_events

            first_events = (
                await conn.execute(select(func.count()).select_from(raw_events))
            ).scalar_one()
    # Not empty any more: nothing is loaded again.
    async with run_service(settings) as service, service.runtime.database.transaction() as conn:
        second_events = (
            await conn.execute(select(func.count()).select_from(raw_events))
        ).scalar_one()

    assert first_movies == 25
    assert first_events > 40
    assert second_events == first_events


async def test_a_quiet_catalog_is_not_read_again(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a bulk load every movie is near the newest one; polls must still read only what
    changed since the previous poll (the overlap), not the whole catalog each time."""
    from interaction_recommender.catalog.cache import CatalogCache
    from interaction_recommender.catalog.repository import CatalogRepository

    body = {"movies": [{"movieId": new_id(), "title": f"Bulk {i}"} for i in range(50)]}
    assert (await service.client.post("/api/v1/movies/batch", json=body)).status_code == 200
    read: list[int] = []
    original = CatalogRepository.changed_since

    async def counting(self: CatalogRepository, since: Any) -> Any:
        rows = await original(self, since)
        read.append(len(rows))
        return rows

    monkeypatch.setattr(CatalogRepository, "changed_since", counting)
    cache = CatalogCache(service.runtime.database, poll_s=60, overlap_s=0.2)
    assert await cache.refresh() >= 50  # the first read takes everything
    await asyncio.sleep(0.3)
    await cache.refresh()  # within the overlap of the first read: may read the bulk again
    await asyncio.sleep(0.3)
    assert await cache.refresh() == 0
    assert read[-1] == 0  # quiet: nothing read

    await service.client.put(f"/api/v1/movies/{new_id()}", json={"title": "New"})
    assert await cache.refresh() == 1
