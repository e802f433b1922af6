"""Simulated reactions to shown lists, for replays of a synthetic day (bench/feedback_replay.py).

A user of the demo world reads a shown list from the top and stops at the first movie they click
(one movie per visit, as in the world's sessions). Position p is looked at with probability
1 / log2(p + 1) (position bias: the usual DCG discount), and a looked-at movie is clicked with a
probability that grows with how well it matches the user's planted taste (the same match the
world's own watch sessions use), with its popularity in the world (a popular movie draws more
clicks at equal taste) and falls each time the user was already shown it (a movie ignored
before is less likely to be clicked now). The probabilities are set so that a list's
click-through lands in the 5-15% that streaming home pages report, not the 65-70% of a user who
clicks whenever anything fits. A click starts a watch most of the time; the watch goes on
through the world's progress checkpoints and stops early more often off taste. Everything else
shown is ignored.

Deterministic: each reaction draws from its own ``random.Random`` keyed by the seed, the user and
a caller's key for the visit (e.g. "day-2/visit-1/home"). Two lists shown in the same visit under
two models therefore meet the same random numbers, position by position: a comparison of models
sees the difference of the lists, not of the dice (common random numbers).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random
from typing import Any

from interaction_recommender.demo.world import DemoUser, World

__all__ = ["Audience", "Reaction", "ReactionModel", "position_bias", "taste_match"]

_CHECKPOINTS = (5.0, 25.0, 50.0, 75.0, 95.0, 100.0)  # as the world's watch heartbeats
_COMPLETE = 4  # reaching the 95 % heartbeat counts as finishing the movie


@dataclass(frozen=True)
class ReactionModel:
    """How users react to a list (probabilities)."""

    click_on_taste: float = 0.1
    """Click chance of a looked-at movie that fully matches the user's taste (of median
    popularity, never shown to the user before)."""
    click_off_taste: float = 0.007
    """... and of one that matches none of it (linear in between)."""
    popularity_pull: float = 0.8
    """The click chance is multiplied by 1 - pull/2 + pull * (the movie's popularity percentile
    in the world's events): 0.6 for the least watched movie, 1.4 for the most watched."""
    repeat_fatigue: float = 0.6
    """... and by this for every earlier time the movie was shown to the user."""
    start_on_taste: float = 0.9
    """Chance that a click starts a watch, fully on taste ..."""
    start_off_taste: float = 0.5
    """... and off taste (the rest leave after the details page)."""


def position_bias(position: int) -> float:
    """Chance that the movie at ``position`` (1-based) is looked at."""
    return 1.0 / math.log2(position + 1)


def taste_match(user: DemoUser, genres: Sequence[str]) -> float:
    """0..1: how much of the user's planted taste a movie's genres carry (demo/world.py's
    ``liking`` in its watch sessions)."""
    return min(1.0, 1.6 * sum(user.favourite_genres.get(g, 0.0) for g in genres))


@dataclass(frozen=True, slots=True)
class Reaction:
    """What a user did with one shown list."""

    clicked: int | None
    """1-based position of the clicked movie, or None."""
    movie_id: str | None
    watched: bool
    """The click started a watch."""
    completed: bool
    """... that reached the 95 % heartbeat."""
    ended_at: datetime
    """When the visit ended (the last heartbeat, or the moment shown)."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """The watch heartbeats, in the events batch wire format (as demo/world.py writes them)."""


class Audience:
    """The demo world's users, reacting to lists of its movies."""

    def __init__(self, world: World, seed: int, model: ReactionModel = ReactionModel()) -> None:
        self._seed = seed
        self._model = model
        self._genres = {m["movieId"]: tuple(m.get("genres") or ()) for m in world.movies}
        self._length_s = {
            m["movieId"]: 60 * int(m.get("durationMinutes") or 100) for m in world.movies
        }
        self._popularity = _popularity_percentiles(world)

    def click_chance(
        self, user: DemoUser, movie_id: str, position: int, shown_before: int = 0
    ) -> float:
        match = taste_match(user, self._genres.get(movie_id, ()))
        model = self._model
        attraction = model.click_off_taste + (model.click_on_taste - model.click_off_taste) * match
        pull = model.popularity_pull
        attraction *= 1.0 - pull / 2 + pull * self._popularity.get(movie_id, 0.0)
        attraction *= model.repeat_fatigue**shown_before
        return position_bias(position) * attraction

    def react(
        self,
        user: DemoUser,
        shown: Sequence[str],
        at: datetime,
        key: str,
        shown_before: Mapping[str, int] | None = None,
    ) -> Reaction:
        """The user's reaction to ``shown`` (movie ids, in the order shown) at ``at``;
        ``shown_before``: how many times each movie was already shown to this user."""
        rng = Random(f"demo-replay/{self._seed}/{user.user_id}/{key}")
        draws = [rng.random() for _ in shown]  # one per position, drawn whatever happens
        before = shown_before or {}
        for position, (movie_id, draw) in enumerate(zip(shown, draws, strict=True), start=1):
            if draw < self.click_chance(user, movie_id, position, before.get(movie_id, 0)):
                return self._watch(user, movie_id, position, at, rng)
        return Reaction(None, None, False, False, at)

    def _watch(
        self, user: DemoUser, movie_id: str, position: int, at: datetime, rng: Random
    ) -> Reaction:
        match = taste_match(user, self._genres.get(movie_id, ()))
        model = self._model
        start = model.start_off_taste + (model.start_on_taste - model.start_off_taste) * match
        if rng.random() >= start:
            return Reaction(position, movie_id, False, False, at)
        stop = min(0.45, max(0.02, 0.04 + 0.26 * (1.0 - match)))  # the world's abandon chance
        length_s = self._length_s.get(movie_id, 6000)
        session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        moment, previous, reached = at, 0.0, -1
        events: list[dict[str, Any]] = []
        for checkpoint, progress in enumerate(_CHECKPOINTS):
            moment += timedelta(seconds=(progress - previous) * length_s / 100 + 20 * rng.random())
            previous, reached = progress, checkpoint
            events.append(
                {
                    "type": "watch",
                    "requestId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "userId": user.user_id,
                    "movieId": movie_id,
                    "clientTimestamp": _iso(moment),
                    "metadata": {
                        "watchDuration": int(length_s * progress / 100),
                        "device": user.device,
                        "quality": user.quality,
                        "sessionId": session_id,
                        "progressPercent": progress,
                    },
                }
            )
            if checkpoint >= _COMPLETE or rng.random() < stop:
                break
        return Reaction(position, movie_id, True, reached >= _COMPLETE, moment, events)


def _popularity_percentiles(world: World) -> dict[str, float]:
    """Each movie's rank by watch events in the world, as a percentile in 0..1 (ties share the
    lower rank; movies never watched are 0)."""
    counts = Counter(e.get("movieId") for e in world.events if e.get("type") == "watch")
    ranked = sorted(m["movieId"] for m in world.movies)
    ranked.sort(key=lambda movie: counts.get(movie, 0))
    top = max(len(ranked) - 1, 1)
    percentiles: dict[str, float] = {}
    for rank, movie in enumerate(ranked):
        if counts.get(movie, 0):
            percentiles[movie] = rank / top
    return percentiles


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
