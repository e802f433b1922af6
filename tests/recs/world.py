"""A tiny synthetic world with a known answer: two taste clusters, planted twin movies."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.events.messages import SCHEMA_VERSION, EventMessage
from interaction_recommender.events.schemas import EventType

__all__ = ["PlantedWorld", "catalog_movie", "completed_watch", "planted_world"]

END = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class PlantedWorld:
    catalog: list[CatalogMovie]
    events: list[EventMessage]
    drama: list[uuid.UUID]
    comedy: list[uuid.UUID]
    users: dict[uuid.UUID, str]
    """User -> cluster ("drama" or "comedy")."""
    twins: tuple[uuid.UUID, uuid.UUID]
    """Two drama movies always watched together: each is the other's nearest neighbour."""


def catalog_movie(movie_id: uuid.UUID, title: str, genre: str, year: int) -> CatalogMovie:
    """A catalog movie of one genre, available."""
    return CatalogMovie(
        movie_id=movie_id,
        title=title,
        genres=(genre,),
        release_year=year,
        release_date=None,
        duration_minutes=100,
        minimum_age=None,
        country=None,
        available=True,
        tags=(),
        source="demo",
        updated_at=END,
    )


def completed_watch(
    user: uuid.UUID, movie: uuid.UUID, sequence: int, when: datetime
) -> EventMessage:
    return EventMessage.model_construct(
        schema_version=SCHEMA_VERSION,
        event_id=uuid.uuid4(),
        sequence=sequence,
        request_id=uuid.uuid4(),
        event_type=EventType.WATCH,
        user_id=user,
        movie_id=movie,
        client_timestamp=when,
        server_timestamp=when,
        metadata={"watchDuration": 6000, "progressPercent": 100.0, "sessionId": str(uuid.uuid4())},
    )


def planted_world(seed: int = 3, users_per_cluster: int = 60) -> PlantedWorld:
    rng = random.Random(seed)
    drama = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(30)]
    comedy = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(30)]
    # Each cluster spans three genres, so a genre cap still leaves room for the cluster.
    serious, funny = ("Drama", "Romance", "History"), ("Comedy", "Family", "Animation")
    catalog = [
        catalog_movie(m, f"Quiet River {i}", serious[i % 3], 2000 + i % 20)
        for i, m in enumerate(drama)
    ]
    catalog += [
        catalog_movie(m, f"Laughing Cat {i}", funny[i % 3], 2000 + i % 20)
        for i, m in enumerate(comedy)
    ]
    twins = (drama[0], drama[1])
    users: dict[uuid.UUID, str] = {}
    events: list[EventMessage] = []
    sequence = 0
    start = END - timedelta(days=60)
    for cluster, movies in (("drama", drama), ("comedy", comedy)):
        for _ in range(users_per_cluster):
            user = uuid.UUID(int=rng.getrandbits(128), version=4)
            users[user] = cluster
            picks = rng.sample(movies[2:], 8)
            if cluster == "drama" and rng.random() < 0.5:
                picks += list(twins)  # the twins always come together
            for movie in picks:
                sequence += 1
                when = start + timedelta(minutes=sequence)
                events.append(completed_watch(user, movie, sequence, when))
    return PlantedWorld(catalog, events, drama, comedy, users, twins)
