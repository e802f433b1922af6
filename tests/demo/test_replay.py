"""Simulated reactions to shown lists: taste and position drive clicks, deterministic by seed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interaction_recommender.demo.replay import (
    Audience,
    ReactionModel,
    position_bias,
    taste_match,
)
from interaction_recommender.demo.world import DemoUser, World, generate_world
from interaction_recommender.events.schemas import NewEvent, parse_batch_item

AT = datetime(2026, 11, 2, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(5, movies=120, users=40, days=10)


def _split(world: World, user: DemoUser) -> tuple[list[str], list[str]]:
    """The user's fully-on-taste movies and their fully-off-taste ones."""
    on, off = [], []
    for movie in world.movies:
        match = taste_match(user, movie["genres"])
        if match >= 1.0:
            on.append(movie["movieId"])
        elif match == 0.0:
            off.append(movie["movieId"])
    return on, off


def _clicks(
    audience: Audience,
    user: DemoUser,
    movie: str,
    position: int,
    n: int = 4000,
    shown_before: int = 0,
) -> int:
    """Clicks on ``movie`` shown alone at ``position`` (filler that nobody clicks above it)."""
    count = 0
    for visit in range(n):
        shown = ["no-such-movie"] * (position - 1) + [movie]
        before = {movie: shown_before}
        reaction = audience.react(user, shown, AT, f"visit-{visit}", before)
        count += reaction.movie_id == movie
    return count


def _within_binomial(count: int, n: int, p: float) -> bool:
    """``count`` of ``n`` draws agrees with chance ``p`` (four standard deviations)."""
    return abs(count - n * p) <= 4 * (n * p * (1 - p)) ** 0.5 + 1


def test_position_bias_falls_with_position() -> None:
    assert position_bias(1) == 1.0
    assert position_bias(3) == pytest.approx(0.5)
    assert [position_bias(p) for p in range(1, 11)] == sorted(
        (position_bias(p) for p in range(1, 11)), reverse=True
    )


def test_on_taste_movies_are_clicked_far_more_than_off_taste_ones(world: World) -> None:
    user = next(u for u in world.users if len(u.favourite_genres) == 1)
    on, off = _split(world, user)
    audience = Audience(world, seed=1)
    on_chance = audience.click_chance(user, on[0], 1)
    off_chance = audience.click_chance(user, off[0], 1)

    on_clicks = _clicks(audience, user, on[0], 1)

    assert _within_binomial(on_clicks, 4000, on_chance)  # the draws follow the stated chance
    assert on_chance > 5 * off_chance
    model = ReactionModel()
    assert on_chance <= model.click_on_taste * (1 + model.popularity_pull / 2)  # a plausible CTR


def test_popular_movies_draw_more_clicks_at_equal_taste(world: World) -> None:
    user = next(u for u in world.users if len(u.favourite_genres) == 1)
    on, _ = _split(world, user)
    audience = Audience(world, seed=1)
    chances = sorted(audience.click_chance(user, movie, 1) for movie in on)
    assert chances[-1] > 1.5 * chances[0]  # the most and the least watched of the user's taste


def test_a_movie_shown_before_is_clicked_less(world: World) -> None:
    user = next(u for u in world.users if len(u.favourite_genres) == 1)
    on, _ = _split(world, user)
    audience = Audience(world, seed=1)

    fresh = _clicks(audience, user, on[0], 1)
    twice_seen = _clicks(audience, user, on[0], 1, shown_before=2)

    fatigue = ReactionModel().repeat_fatigue
    assert audience.click_chance(user, on[0], 1, 2) == pytest.approx(
        fatigue**2 * audience.click_chance(user, on[0], 1)
    )
    assert twice_seen < fresh
    assert _within_binomial(twice_seen, 4000, audience.click_chance(user, on[0], 1, 2))


def test_the_same_movie_is_clicked_less_further_down(world: World) -> None:
    user = next(u for u in world.users if len(u.favourite_genres) == 1)
    on, _ = _split(world, user)
    audience = Audience(world, seed=1)

    assert _clicks(audience, user, on[0], 1) > 2 * _clicks(audience, user, on[0], 10)


def test_reactions_are_deterministic_and_share_dice_across_lists(world: World) -> None:
    user = world.users[0]
    movies = [m["movieId"] for m in world.movies[:10]]
    first = Audience(world, seed=3).react(user, movies, AT, "day-1/visit-0/home")
    again = Audience(world, seed=3).react(user, movies, AT, "day-1/visit-0/home")
    assert first == again
    # Another list in the same visit: the same movie at the same position meets the same draw.
    clicks = [Audience(world, seed=3).react(user, movies, AT, f"k{k}") for k in range(200)]
    for k, reaction in enumerate(clicks):
        if reaction.clicked == 1:
            other = [movies[0], *reversed(movies[1:])]
            assert Audience(world, seed=3).react(user, other, AT, f"k{k}").clicked == 1


def test_watches_are_valid_events_of_the_clicked_movie(world: World) -> None:
    audience = Audience(world, seed=2)
    movies = [m["movieId"] for m in world.movies[:10]]
    watched = [
        reaction
        for user in world.users
        for visit in range(20)
        if (reaction := audience.react(user, movies, AT, f"v{visit}")).watched
    ]

    assert watched
    assert any(r.completed for r in watched) and not all(r.completed for r in watched)
    for reaction in watched:
        progress = []
        for raw in reaction.events:
            event = parse_batch_item(raw)
            assert isinstance(event, NewEvent), event
            assert str(event.movie_id) == reaction.movie_id
            assert event.client_timestamp is not None
            assert AT < event.client_timestamp <= reaction.ended_at
            progress.append(raw["metadata"]["progressPercent"])
        assert progress == sorted(progress)
        assert reaction.completed == (progress[-1] >= 95.0)
