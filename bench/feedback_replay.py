"""Feedback replay: does training with impressions ("shown and ignored twice -> weak negative")
help? Measured on replayed synthetic days, in-process, several seeds; plus the online metrics
(feedback/online.py) of a replayed day.

    .venv/bin/python bench/feedback_replay.py [--seeds 1,2,3,4,5] [--users 2000] [--movies 400]
                                              [--weights=-0.1,-0.3,-1.0] [--loop-days 4]
                                              [--loop-seeds 1,2] [--loop-users 1000]
                                              [--write docs/benchmarks.md]

Per seed:

1. A demo world (`generate_world(seed, movies=, users=, days=--history-days + --holdout-days)`).
   Its organic events up to T0 = end - --holdout-days are the history; its organic events after
   T0 are kept apart as the offline holdout (movies each user came to like next, by their planted
   taste, whatever they were shown).
2. The base model: parameters tuned on the history (`training.fit.tune` on the inner holdout,
   as `train_model` does), `fit_model` on every user's history features.
3. Day N (the day after T0), replayed: every user active in the history's last 30 days visits
   2-4 times (`demo/replay.py` draws nothing here: visit counts and times come from a Random
   keyed by seed, user and day). Each visit serves a `home` list (k=10, `model.engine.recommend`
   with the model and a CatalogView, EngineSettings() as in production) and logs it as an
   `Impression`; the user reacts (`demo.replay.Audience`: position bias 1/log2(p+1), clicks on
   taste, at most one click, a watch through the world's checkpoints). A watched click is
   followed, half of the time, by a `similar:<that movie>` list, reacted to alike. Clicks and
   watches become `FeedbackRow`s (explicit click, implicit watch) and the watch heartbeats become
   events applied to the user's features (`features.apply_events`), as the stream would.
4. Retrained on history + day N with the same tuned parameters (only the data differs):
   (a) events only; (b) events + impressions, weak negatives of weight w (each of --weights)
   for movies shown and ignored twice (`training.impressions.ignored_twice`).
5. Day N+1, replayed once per model from the same post-day-N features, with the same visits
   and the same dice (the audience's Random per user and visit): the lists differ, nothing else.
   Online: click-through rate, watch-through rate, MRR of the first click (feedback/online.py
   `outcomes` + `summarize`, the service's GET /metrics/online math). Offline: nDCG@10 of each
   model's home list (`training.pipeline.evaluate_holdout`, from the post-day-N features) on the
   organic holdout.

Then per metric, the difference (b) - (a) per seed, its mean and a 95% t interval over seeds.
The rule, fixed before the runs: weak negatives become the default only at a weight where the
intervals of the CTR and watch-through differences lie above 0 and that of offline nDCG@10 does
not lie below 0 (the largest CTR gain among such weights).

Confirmation on fresh seeds (committed before that run): the first run (seeds 1-5, an audience
that clicked 65-70% of lists) made -0.1 the default (LabelWeights.ignored_twice). The defaults
below are fresh seeds, 11-15, with the audience of demo/replay.py that clicks 5-15% of lists and
reacts to popularity and to repeats. The default stays -0.1 only if -0.1 passes the rule above
on them; otherwise it is withdrawn (LABEL_IGNORED_TWICE default 0) in the change that records
the run, whatever another weight does (a new weight would need fresh seeds of its own).

When a weight passes, a closed-loop check (`run_loop`, --loop-seeds, smaller worlds): from the
same base model, --loop-days + 1 days are served and the model is refitted after each on
everything so far, once on the events only and once with the weak negatives of every impression
so far (as production would, the log keeping FEEDBACK_RETENTION_DAYS): does the gain hold while
the negatives pile up?
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any
from uuid import UUID

import structlog
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/report.py

from report import Run, markers, publish

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.demo.events import event_message, world_catalog, world_events
from interaction_recommender.demo.replay import Audience, ReactionModel, taste_match
from interaction_recommender.demo.world import DemoUser, generate_world
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.features.extractor import apply_events
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.feedback.online import outcomes, summarize
from interaction_recommender.feedback.repository import FeedbackRow, Impression
from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.catalog_view import CatalogView, build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import recommend
from interaction_recommender.model.labels import LabelWeights, user_labels
from interaction_recommender.training.dataset import features_by_user, holdout_split
from interaction_recommender.training.fit import FitConfig, Params, fit_model, tune
from interaction_recommender.training.impressions import ignored_twice, shown_lists
from interaction_recommender.training.pipeline import evaluate_holdout

START_MARKER, END_MARKER = markers("feedback")
K = 10
DAY = timedelta(days=1)
ACTIVE_WITHIN = timedelta(days=30)
SIMILAR_AFTER_WATCH = 0.5  # chance that a watched click is followed by a `similar` list
REACTION = ReactionModel()
NO_NEGATIVES = LabelWeights(ignored_twice=0.0)  # whatever the default: the base and (a) fits


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# One replayed day
# --------------------------------------------------------------------------------------------
@dataclass
class Day:
    """What a replayed day logged, and the users' features at its end."""

    impressions: list[Impression] = field(default_factory=list)
    feedback: list[FeedbackRow] = field(default_factory=list)
    events: list[EventMessage] = field(default_factory=list)
    features: dict[UUID, UserFeatures] = field(default_factory=dict)
    shown: dict[UUID, Counter[str]] = field(default_factory=dict)
    """Per user, how many times each movie has been shown so far (this day and the days
    replayed before it): the audience clicks a movie shown before less."""


@dataclass
class Replay:
    """A world's fixed parts for its replayed days."""

    seed: int
    catalog: list[CatalogMovie]
    users: dict[UUID, DemoUser]
    active: list[UUID]
    audience: Audience
    next_sequence: int

    def __post_init__(self) -> None:
        self.by_id = {m.movie_id: m for m in self.catalog}

    def day(
        self,
        model: RecommenderModel,
        features: dict[UUID, UserFeatures],
        start: datetime,
        number: int,
        shown: dict[UUID, Counter[str]] | None = None,
    ) -> Day:
        """Day ``number`` (from ``start``) served by ``model``: every active user's visits;
        ``shown``: what the days before showed each user (left unchanged)."""
        view = build_catalog_view(model, self.catalog, catalog_version=0)
        before = shown or {}
        day = Day(
            features=dict(features),
            shown={u: Counter(before.get(u, {})) for u in self.active},
        )
        for user_id in self.active:
            rng = Random(f"feedback-replay/{self.seed}/{user_id}/day-{number}")
            visits = rng.randint(2, 4)
            times = sorted(start + rng.random() * DAY for _ in range(visits))
            free_at = start
            for visit, scheduled in enumerate(times):
                at = max(scheduled, free_at + timedelta(minutes=5))
                key = f"day-{number}/visit-{visit}"
                free_at = self._visit(day, model, view, user_id, at, key)
        return day

    def _visit(
        self,
        day: Day,
        model: RecommenderModel,
        view: CatalogView,
        user_id: UUID,
        at: datetime,
        key: str,
    ) -> datetime:
        reaction_end, watched = self._serve(day, model, view, user_id, Context("home"), at, key)
        follow = Random(f"feedback-replay/{self.seed}/{user_id}/{key}/similar").random()
        if watched is not None and follow < SIMILAR_AFTER_WATCH:
            context = Context("similar", watched)
            at = reaction_end + timedelta(minutes=1)
            reaction_end, _ = self._serve(day, model, view, user_id, context, at, key + "/similar")
        return reaction_end

    def _serve(
        self,
        day: Day,
        model: RecommenderModel,
        view: CatalogView,
        user_id: UUID,
        context: Context,
        at: datetime,
        key: str,
    ) -> tuple[datetime, UUID | None]:
        """One list shown and reacted to; returns when the visit ended and the movie watched."""
        features = day.features.get(user_id)
        picks = recommend(features, context, K, model, view, now=at)
        impression = Impression(
            recommendation_id=uuid.uuid4(),
            user_id=user_id,
            context=context.label,
            policy=context.policy if features is not None else f"{context.kind}:fallback",
            model_version=model.version,
            cached=False,
            items=[(str(p.movie_id), p.score) for p in picks],
            shown_at=at,
        )
        day.impressions.append(impression)
        shown = [movie for movie, _ in impression.items]
        exposures = day.shown.setdefault(user_id, Counter())
        reaction = self.audience.react(self.users[user_id], shown, at, key, exposures)
        exposures.update(shown)
        if reaction.clicked is None or reaction.movie_id is None:
            return reaction.ended_at, None
        movie = UUID(reaction.movie_id)
        day.feedback.append(_row(impression, "click", movie, reaction.clicked, at, None))
        if not reaction.watched:
            return reaction.ended_at, None
        watched_s = max(e["metadata"]["watchDuration"] for e in reaction.events)
        day.feedback.append(
            _row(impression, "watch", movie, reaction.clicked, reaction.ended_at, watched_s)
        )
        messages = [self._message(raw) for raw in reaction.events]
        day.events += messages
        current = day.features.get(user_id)
        if current is not None:
            pairs = [(m, self.by_id.get(movie)) for m in messages]
            day.features[user_id] = apply_events(current, pairs)[0]
        return reaction.ended_at, movie

    def _message(self, raw: dict[str, Any]) -> EventMessage:
        """A simulated event as the store would publish it (the next sequence number)."""
        if raw.get("clientTimestamp") is None:
            raise ValueError(f"simulated event without a time: {raw}")
        sequence = self.next_sequence
        self.next_sequence += 1
        return event_message(raw, sequence)


def _row(
    impression: Impression,
    action: str,
    movie: UUID,
    position: int,
    at: datetime,
    watched_s: int | None,
) -> FeedbackRow:
    """An explicit click, or the implicit watch that feedback/attribution.py would attribute."""
    explicit = action == "click"
    return FeedbackRow(
        feedback_id=uuid.uuid4(),
        dedupe_key=f"{impression.recommendation_id}:{movie}:{action}",
        source="explicit" if explicit else "implicit",
        user_id=impression.user_id,
        recommendation_id=impression.recommendation_id,
        join_method="recommendationId" if explicit else "event",
        action=action,
        context=impression.context,
        model_version=impression.model_version,
        impression_count=len(impression.items),
        clicked_item_id=movie,
        click_position=position,
        watch_time_sec=watched_s,
        occurred_at=at,
        received_at=at,
    )


# --------------------------------------------------------------------------------------------
# One seed
# --------------------------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    weight: float
    ctr: float
    wtr: float
    mrr: float
    ndcg: float
    impressions: int
    weak_negatives: int
    home_ctr: float = 0.0
    """CTR of the `home` impressions alone (the others: `similar` after a watch)."""


@dataclass
class SeedResult:
    seed: int
    events: int
    users: int
    active: int
    day_n: Day
    negatives: int
    negative_match: float
    """Mean taste match (demo/replay.py) of the weak negatives' movies."""
    clicked_match: float
    """... and of the movies clicked on day N."""
    variants: list[Variant]
    table: list[dict[str, Any]]
    """summarize() over day N (base model) and day N+1 (every retrained model)."""
    seconds: float


@dataclass
class World:
    """A seed's world, history, tuned parameters and replay: what every experiment starts from."""

    seed: int
    events: list[EventMessage]
    catalog: list[CatalogMovie]
    history: list[EventMessage]
    t0: datetime
    params: Params
    config: FitConfig
    features: dict[UUID, UserFeatures]
    replay: Replay


def setup(seed: int, users: int, args: argparse.Namespace) -> World:
    world = generate_world(
        seed, movies=args.movies, users=users, days=args.history_days + args.holdout_days
    )
    events, catalog = world_events(world), world_catalog(world)
    by_id = {m.movie_id: m for m in catalog}
    t0 = max(e.client_timestamp for e in events) - timedelta(days=args.holdout_days)
    history = [e for e in events if e.client_timestamp <= t0]
    log(f"seed {seed}: {len(events):,} events, {len(history):,} before T0; tuning")
    labels = LabelWeights(ignored_twice=0.0)
    inner = holdout_split(history, by_id.get, labels)
    config = FitConfig(threads=1, seed=seed)
    params = tune(inner.train, inner.test, catalog, labels, config, now=t0)
    last_seen: dict[UUID, datetime] = {}
    for event in history:
        last_seen[event.user_id] = max(
            last_seen.get(event.user_id, t0 - 2 * ACTIVE_WITHIN), event.client_timestamp
        )
    active = sorted((u for u, at in last_seen.items() if at > t0 - ACTIVE_WITHIN), key=str)
    replay = Replay(
        seed=seed,
        catalog=catalog,
        users={UUID(u.user_id): u for u in world.users},
        active=active,
        audience=Audience(world, seed),
        next_sequence=max(e.sequence for e in events) + 1,
    )
    features = features_by_user(history, by_id.get)
    return World(seed, events, catalog, history, t0, params, config, features, replay)


def run_seed(seed: int, args: argparse.Namespace) -> SeedResult:
    started = time.perf_counter()
    world = setup(seed, args.users, args)
    catalog, replay, t0 = world.catalog, world.replay, world.t0
    by_id = {m.movie_id: m for m in catalog}
    base = fit_model(
        world.features, catalog, world.params, NO_NEGATIVES, world.config, version="base"
    )
    log(f"seed {seed}: replaying day N for {len(replay.active):,} active users")
    day_n = replay.day(base, world.features, t0, 1)
    ignored = ignored_twice(shown_lists(day_n.impressions), [*world.history, *day_n.events])

    test = _organic_holdout(world.events, world.history, day_n.features, by_id, t0)
    variants: list[Variant] = []
    table_impressions, table_feedback = list(day_n.impressions), list(day_n.feedback)
    tried = [("events only", 0.0)] + [(f"ignored twice {w:g}", w) for w in args.weights]
    for name, weight in tried:
        version = "no-impressions" if weight == 0 else f"ignored-twice{weight:g}"
        model = fit_model(
            day_n.features,
            catalog,
            world.params,
            LabelWeights(ignored_twice=weight),
            world.config,
            version=version,
            ignored=ignored if weight else None,
        )
        log(f"seed {seed}: {name}: replaying day N+1")
        day = replay.day(model, day_n.features, t0 + DAY, 2, day_n.shown)
        table_impressions += day.impressions
        table_feedback += day.feedback
        groups = summarize(outcomes(day.impressions, day.feedback), len(catalog))
        overall = groups[-1]
        home = next(g for g in groups if g["context"] == "home")
        offline = evaluate_holdout(model, day_n.features, test, catalog, t0 + DAY)
        variants.append(
            Variant(
                name=name,
                weight=weight,
                ctr=overall["clickThroughRate"]["value"],
                wtr=overall["watchThroughRate"]["value"],
                mrr=overall["meanReciprocalRank"]["value"],
                ndcg=offline.get("ndcg", 0.0),
                impressions=overall["impressions"],
                weak_negatives=model.info["weakNegatives"],
                home_ctr=home["clickThroughRate"]["value"],
            )
        )
        log(
            f"seed {seed}: {name}: CTR {variants[-1].ctr:.4f} WTR {variants[-1].wtr:.4f} "
            f"MRR {variants[-1].mrr:.4f} nDCG {variants[-1].ndcg:.4f}"
        )
    genres = {m.movie_id: m.genres for m in catalog}
    users = replay.users
    negative_match = _mean(
        taste_match(users[u], genres[m]) for u, ms in ignored.items() for m in ms if m in genres
    )
    clicked_match = _mean(
        taste_match(users[r.user_id], genres[r.clicked_item_id])
        for r in day_n.feedback
        if r.action == "click" and r.clicked_item_id in genres
    )
    return SeedResult(
        seed=seed,
        events=len(world.events),
        users=len(world.features),
        active=len(replay.active),
        day_n=day_n,
        negatives=sum(len(m) for m in ignored.values()),
        negative_match=negative_match,
        clicked_match=clicked_match,
        variants=variants,
        table=summarize(outcomes(table_impressions, table_feedback), len(catalog)),
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------------------------
# The closed loop: retrained every day
# --------------------------------------------------------------------------------------------
@dataclass
class LoopResult:
    seed: int
    weight: float
    ctr: dict[float, list[float]]
    """Weight (0: events only) -> CTR of each served day."""
    negatives: int
    """Weak negatives of the last refit."""
    active: int
    seconds: float


def run_loop(seed: int, weight: float, args: argparse.Namespace) -> LoopResult:
    """Two loops from the same base model: every day is served, then the model is refitted on
    everything so far (the same tuned parameters); one loop on the events only, the other with
    the weak negatives of every impression so far. Does the gain hold, or does the model drift
    away as the negatives pile up?"""
    started = time.perf_counter()
    world = setup(seed, args.loop_users, args)
    ctr: dict[float, list[float]] = {}
    negatives = 0
    for tried in (0.0, weight):
        replay = world.replay
        features, impressions, simulated = world.features, [], []
        shown: dict[UUID, Counter[str]] = {}
        model = fit_model(
            features, world.catalog, world.params, NO_NEGATIVES, world.config, version="base"
        )
        ctr[tried] = []
        for number in range(1, args.loop_days + 2):
            day = replay.day(model, features, world.t0 + (number - 1) * DAY, number, shown)
            features, shown = day.features, day.shown
            impressions += day.impressions
            simulated += day.events
            overall = summarize(outcomes(day.impressions, day.feedback), len(world.catalog))[-1]
            ctr[tried].append(overall["clickThroughRate"]["value"])
            ignored = (
                ignored_twice(shown_lists(impressions), [*world.history, *simulated])
                if tried
                else None
            )
            model = fit_model(
                features,
                world.catalog,
                world.params,
                LabelWeights(ignored_twice=tried),
                world.config,
                version=f"loop{tried:g}-{number}",
                ignored=ignored,
            )
            negatives = model.info["weakNegatives"] if tried else negatives
        log(f"seed {seed}: loop {tried:g}: CTR per day {[round(c, 4) for c in ctr[tried]]}")
    return LoopResult(
        seed, weight, ctr, negatives, len(world.replay.active), time.perf_counter() - started
    )


def _organic_holdout(
    events: Sequence[EventMessage],
    history: Sequence[EventMessage],
    after_day_n: dict[UUID, UserFeatures],
    by_id: dict[UUID, CatalogMovie],
    t0: datetime,
) -> dict[UUID, set[UUID]]:
    """Movies each user came to like in the organic events after T0 (by taste, not by what they
    were shown), less anything they touched by the end of the replayed day N."""
    labels = LabelWeights()
    later_users = {e.user_id for e in events if e.client_timestamp > t0}
    everything = features_by_user((e for e in events if e.user_id in later_users), by_id.get)
    before = features_by_user((e for e in history if e.user_id in later_users), by_id.get)
    test: dict[UUID, set[UUID]] = {}
    for user, features in everything.items():
        if user not in after_day_n:
            continue
        liked = {m for m, w in user_labels(features, labels).items() if w > 0}
        if user in before:
            liked -= {m for m, w in user_labels(before[user], labels).items() if w > 0}
        liked -= set(user_labels(after_day_n[user], labels))
        if liked:
            test[user] = liked
    return test


def _mean(values: Any) -> float:
    items = list(values)
    return statistics.fmean(items) if items else 0.0


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------
METRICS = (
    ("ctr", "CTR"),
    ("home_ctr", "home CTR"),
    ("wtr", "watch-through"),
    ("mrr", "MRR"),
    ("ndcg", "offline nDCG@10"),
)


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and a 95% t interval over seeds (the mean alone with one seed)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def paired(results: list[SeedResult], i: int, key: str) -> tuple[float, float, float]:
    """Mean and 95% t interval over seeds of variant i's ``key`` minus events-only's."""
    return interval([getattr(r.variants[i], key) - getattr(r.variants[0], key) for r in results])


def decide(results: list[SeedResult]) -> tuple[float, list[str]]:
    """The weight to make the default (0: off) by the rule of the module's docstring, and a
    verdict per weight."""
    verdicts, best, best_gain = [], 0.0, 0.0
    for i, variant in enumerate(results[0].variants[1:], start=1):
        ctr, wtr, ndcg = (paired(results, i, key) for key in ("ctr", "wtr", "ndcg"))
        clear = ctr[1] > 0 and wtr[1] > 0 and ndcg[2] >= 0
        if clear and ctr[0] > best_gain:
            best, best_gain = variant.weight, ctr[0]
        why = []
        if ctr[1] <= 0 or wtr[1] <= 0:
            why.append("CTR/watch-through not clearly higher than events only")
        if ndcg[2] < 0:
            why.append("offline nDCG@10 clearly lower")
        verdicts.append(
            f"{variant.name}: " + ("passes" if clear else "fails (" + "; ".join(why) + ")")
        )
    return best, verdicts


def render(
    results: list[SeedResult], loops: list[LoopResult], args: argparse.Namespace, run: Run
) -> str:
    first = results[0]
    chosen, verdicts = decide(results)
    lines = run.head(START_MARKER, "Feedback replay: training with impressions (weak negatives)")
    lines += [
        f"- World per seed: `generate_world(seed, movies={args.movies}, users={args.users}, "
        f"days={args.history_days + args.holdout_days})`; history = the first "
        f"{args.history_days} days (about {statistics.fmean(r.events for r in results):,.0f} "
        f"events in all), offline holdout = the organic events of the last {args.holdout_days} "
        "days. Seeds: " + ", ".join(str(r.seed) for r in results) + ".",
        f"- Replayed days: every user active in the history's last 30 days "
        f"(about {statistics.fmean(r.active for r in results):,.0f} users) visits 2-4 times a "
        f"day; each visit is a `home` list of {K} (`model.engine.recommend`, production "
        "EngineSettings), plus a `similar` list after half of the watched clicks. Reactions: "
        "`demo/replay.py` (looked at with probability 1/log2(p+1); a looked-at movie clicked "
        f"with {REACTION.click_off_taste:.1%} off taste to {REACTION.click_on_taste:.0%} fully "
        f"on taste, times 1 ± {REACTION.popularity_pull / 2:g} by its popularity percentile in "
        f"the world, times {REACTION.repeat_fatigue:g} per earlier time the user was shown it; "
        "one click per list; a click starts a watch 50-90% of the time).",
        "- Day N is served by the base model (tuned and fitted on the history). Then, with the "
        "same tuned parameters, (a) fitted on history + day N events, (b) the same plus weak "
        "negatives: each movie shown in at least two day-N impressions with no watch, rating or "
        "favorite at or after them (and no label from the events). Day N+1 is replayed once per "
        "model with the same visits and the same dice: only the lists differ.",
        f"- Weak negatives on day N: {statistics.fmean(r.negatives for r in results):,.0f} per "
        f"seed (about {statistics.fmean(r.negatives / max(r.active, 1) for r in results):.1f} per "
        f"active user). Their mean taste match was "
        f"{statistics.fmean(r.negative_match for r in results):.2f} against "
        f"{statistics.fmean(r.clicked_match for r in results):.2f} for the clicked movies "
        "(0 = none of the user's planted genres, 1 = fully on taste): position bias leaves many "
        "on-taste movies unclicked.",
        "",
        "Per seed, day N+1 (CTR, watch-through and MRR over every `home` and `similar` "
        "impression; home CTR over the `home` impressions alone; nDCG@10 offline):",
        "",
        "| seed | model | weak negatives | impressions | CTR | home CTR | watch-through | MRR | "
        "offline nDCG@10 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for v in r.variants:
            lines.append(
                f"| {r.seed} | {v.name} | {v.weak_negatives:,} | {v.impressions:,} | "
                f"{v.ctr:.4f} | {v.home_ctr:.4f} | {v.wtr:.4f} | {v.mrr:.4f} | {v.ndcg:.4f} |"
            )
    lines += [
        "",
        f"Over the {len(results)} seeds: mean [95% t interval of the mean] of each model, and "
        "of its difference from (a), paired by seed:",
        "",
        "| model | " + " | ".join(label for _, label in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for i, v in enumerate(first.variants):
        cells = []
        for key, _ in METRICS:
            m, lo, hi = interval([getattr(r.variants[i], key) for r in results])
            cells.append(f"{m:.4f} [{lo:.4f}, {hi:.4f}]")
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    for i, v in enumerate(first.variants[1:], start=1):
        cells = []
        for key, _ in METRICS:
            m, lo, hi = paired(results, i, key)
            cells.append(f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        lines.append(f"| {v.name} minus events only | " + " | ".join(cells) + " |")
    lines += [
        "",
        "**Decision by the rule** (CTR and watch-through intervals above 0, offline nDCG@10's "
        "not below 0): "
        + (
            f"weak negatives ON by default at {chosen:g}"
            if chosen
            else "weak negatives stay OFF (`LABEL_IGNORED_TWICE=0`)"
        )
        + ". "
        + "; ".join(verdicts)
        + ".",
        "",
    ]
    lines += render_loops(loops, args)
    lines += [
        f"The online metrics of the replayed synthetic days of seed {first.seed} "
        "(`feedback.online.outcomes` + `summarize` over the simulated impressions and feedback "
        "rows, as GET /api/v1/metrics/online computes them; model `base` served day N, the "
        "others day N+1; 95% intervals: Wilson for the rates, normal for MRR):",
        "",
        "| context | model version | impressions | CTR [95%] | watch-through [95%] | "
        "MRR [95%] | coverage |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for g in first.table:
        ctr, wtr, mrr = g["clickThroughRate"], g["watchThroughRate"], g["meanReciprocalRank"]
        coverage = g["catalogCoverage"]
        lines.append(
            f"| {g['context']} | {g['modelVersion']} | {g['impressions']:,} | "
            f"{_rate(ctr)} | {_rate(wtr)} | {_rate(mrr)} | "
            f"{coverage['value']:.1%} ({coverage['distinctMovies']}/{coverage['catalogSize']}) |"
        )
    lines += [
        "",
        f"Run time {sum(r.seconds for r in results):.0f} s "
        f"({statistics.fmean(r.seconds for r in results):.0f} s per seed).",
        END_MARKER,
    ]
    return "\n".join(lines) + "\n"


def render_loops(loops: list[LoopResult], args: argparse.Namespace) -> list[str]:
    if not loops:
        return []
    weight = loops[0].weight
    lines = [
        f"Closed-loop check of {weight:g} (`run_loop`; seeds "
        + ", ".join(str(r.seed) for r in loops)
        + f", {args.loop_users:,} users, about "
        f"{statistics.fmean(r.active for r in loops):,.0f} active): from the same base model, "
        f"{args.loop_days + 1} days served, the model refitted after each on everything so far "
        "(the same tuned parameters), once on the events only and once with the weak negatives "
        "of every impression so far (the production set-up: the log keeps "
        "FEEDBACK_RETENTION_DAYS). CTR of each served day (day 1: the base model in both):",
        "",
        "| seed | weak negatives at the end | "
        + " | ".join(f"day {d}" for d in range(1, args.loop_days + 2))
        + " |",
        "|---:|---:|" + "---:|" * (args.loop_days + 1),
    ]
    for r in loops:
        cells = [
            f"{off:.4f} / {on:.4f} ({on - off:+.4f})"
            for off, on in zip(r.ctr[0.0], r.ctr[weight], strict=True)
        ]
        lines.append(f"| {r.seed} | {r.negatives:,} | " + " | ".join(cells) + " |")
    later = [
        on - off for r in loops for off, on in zip(r.ctr[0.0][1:], r.ctr[weight][1:], strict=True)
    ]
    lines += [
        "",
        "(events only / with weak negatives (difference).) After the first refit the weak "
        f"negatives' CTR was higher on {sum(d > 0 for d in later)} of {len(later)} "
        f"seed-days (mean {statistics.fmean(later):+.4f}).",
        "",
    ]
    return lines


def _rate(value: dict[str, Any]) -> str:
    if value["value"] is None:
        return "n/a"
    return f"{value['value']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"


# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds",
        default="11,12,13,14,15",
        help="Comma-separated world seeds (1-5 made the first decision; these confirm it).",
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--movies", type=int, default=400)
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--holdout-days", type=int, default=7)
    parser.add_argument(
        "--weights",
        default="-0.1,-0.3,-1.0",
        help="LabelWeights.ignored_twice values tried (< 0).",
    )
    parser.add_argument(
        "--loop-days", type=int, default=4, help="Refits of the closed-loop check (0: none)."
    )
    parser.add_argument("--loop-seeds", default="11,12", help="Seeds of the closed-loop check.")
    parser.add_argument("--loop-users", type=int, default=1000, help="Users of its worlds.")
    parser.add_argument("--write", type=Path, help="Markdown file to update (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.loop_seeds = [int(s) for s in args.loop_seeds.split(",")]
    args.weights = [float(w) for w in args.weights.split(",")]
    if any(w >= 0 for w in args.weights):
        parser.error("--weights must be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The library's logs (tuning) to stderr: stdout is the markdown section.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    run = Run.of("bench/feedback_replay.py", argv)
    results = [run_seed(seed, args) for seed in args.seeds]
    chosen, _ = decide(results)
    loops = (
        [run_loop(seed, chosen, args) for seed in args.loop_seeds]
        if chosen and args.loop_days
        else []
    )
    run.done()
    publish(render(results, loops, args, run), args.write, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
