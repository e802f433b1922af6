"""The load a fault is injected under, and the record of what it was answered.

Writers POST valid events at a paced rate, each retried with the same requestId and body until a
2xx (as the platform's callers do), so every event sent ends acknowledged; readers GET
recommendations and features of users with acknowledged events. Every HTTP outcome is recorded
with its time, so a test can ask what happened while a dependency was down.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fixtures.factories import event_payload

__all__ = [
    "Event",
    "EventSource",
    "LoadShape",
    "Reply",
    "Traffic",
    "client_for",
    "metric_total",
    "running_load",
    "wait_until",
]

EVENT_TYPES = ("watch", "search", "rating", "favorite")
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
_RETRY_AFTER_CAP_S = 2.0  # a test cannot wait as long as a header may ask


@dataclass(frozen=True)
class Event:
    event_type: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/api/v1/events/{self.event_type}"

    @property
    def request_id(self) -> str:
        return str(self.body["requestId"])

    @property
    def user_id(self) -> str:
        return str(self.body["userId"])


class EventSource:
    """Valid events of every type over a fixed population (deterministic per seed, apart from
    the request ids and client timestamps)."""

    def __init__(self, seed: int, *, users: int = 200, movies: int = 400) -> None:
        self._rng = random.Random(seed)
        self.users = [
            str(uuid.UUID(int=self._rng.getrandbits(128), version=4)) for _ in range(users)
        ]
        self.movies = [
            str(uuid.UUID(int=self._rng.getrandbits(128), version=4)) for _ in range(movies)
        ]

    def next(self) -> Event:
        event_type = self._rng.choice(EVENT_TYPES)
        body = event_payload(
            event_type,
            user_id=self._rng.choice(self.users),
            movie_id=self._rng.choice(self.movies),
            request_id=str(uuid.uuid4()),
        )
        return Event(event_type, body)


@dataclass(frozen=True)
class Answer:
    """A 2xx answer to an event."""

    attempt: int  # 1: the first try
    status: str  # accepted | duplicate
    event_id: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class Reply:
    """One HTTP outcome: a status, or the transport error that replaced it."""

    kind: str  # ingest | recommend | features
    at: float
    status: int | None
    error: str | None = None
    retry_after: str | None = None

    def violation(self) -> str | None:
        """Why this reply breaks the contract, or None. Our requests are valid, so a 4xx is
        wrong; a dependency failure is a 503 with Retry-After, never another 5xx, and never
        silence (a refused connection or a timeout) from a process that runs."""
        if self.status is None:
            return f"no answer ({self.error})"
        if 200 <= self.status < 300:
            return None
        if self.status == 503:
            return None if self.retry_after else "503 without Retry-After"
        return f"HTTP {self.status}"


@dataclass
class Traffic:
    sent: dict[str, Event] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    bodies: dict[str, str] = field(default_factory=dict)  # one body per violation kind

    @property
    def acknowledged(self) -> dict[str, str]:
        """requestId -> the eventId it was answered."""
        return {rid: answer.event_id for rid, answer in self.answers.items()}

    @property
    def acknowledged_count(self) -> int:
        return len(self.answers)

    def acknowledged_users(self) -> list[str]:
        return sorted({self.sent[rid].user_id for rid in self.answers})

    def acknowledged_between(self, start: float, end: float) -> int:
        return sum(start <= a.at < end for a in self.answers.values())

    def replies_between(self, kind: str, start: float, end: float) -> list[Reply]:
        return [r for r in self.replies if r.kind == kind and start <= r.at < end]

    async def wait_acknowledged(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.acknowledged_count < count:
            assert time.monotonic() < deadline, (
                f"{self.acknowledged_count}/{count} events acknowledged after {timeout}s; "
                f"{self.summary()}"
            )
            await asyncio.sleep(0.05)

    def summary(self) -> str:
        statuses = Counter(
            (r.kind, r.status if r.status is not None else r.error) for r in self.replies
        )
        return (
            f"sent {len(self.sent)}, acknowledged {self.acknowledged_count}, "
            f"given up {len(self.given_up)}; replies {dict(sorted(statuses.items(), key=str))}"
        )

    def check(self, *, server_killed: bool = False) -> None:
        """Every event sent was acknowledged; a first try is `accepted` (nobody sent that
        requestId before; `duplicate` may follow an attempt whose answer was lost); no reply
        broke the HTTP contract. ``server_killed``: the service itself was down for a while, so
        requests without an answer are expected."""
        assert not self.given_up, (
            f"{len(self.given_up)} events never acknowledged, e.g. {self.given_up[:3]}; "
            f"{self.summary()}"
        )
        assert self.answers.keys() == self.sent.keys(), self.summary()
        for request_id, answer in self.answers.items():
            assert answer.status in {"accepted", "duplicate"}, (request_id, answer)
            if answer.attempt == 1:
                assert answer.status == "accepted", (request_id, answer)
        violations = Counter(
            (r.kind, r.violation())
            for r in self.replies
            if r.violation() and not (server_killed and r.status is None)
        )
        assert not violations, (
            f"replies that break the contract: {dict(violations)}; bodies: {self.bodies}"
        )


@dataclass(frozen=True)
class LoadShape:
    writers: int = 8
    events_per_s: float = 60.0
    readers: int = 2
    reads_per_s: float = 20.0
    event_give_up_s: float = 120.0  # one event unacknowledged this long fails the test
    drain_timeout_s: float = 150.0  # stop: the events in flight must be answered by then


def _record(traffic: Traffic, kind: str, response: httpx.Response) -> Reply:
    reply = Reply(
        kind, time.monotonic(), response.status_code, None, response.headers.get("retry-after")
    )
    problem = reply.violation()
    if problem is not None:
        traffic.bodies.setdefault(f"{kind}: {problem}", response.text[:300])
    traffic.replies.append(reply)
    return reply


async def _send_until_acknowledged(
    client: httpx.AsyncClient, event: Event, traffic: Traffic, shape: LoadShape
) -> None:
    traffic.sent[event.request_id] = event
    give_up_at = time.monotonic() + shape.event_give_up_s
    attempt = 0
    while True:
        attempt += 1
        delay = min(0.05 * 2**attempt, 1.0)
        try:
            response = await client.post(event.path, json=event.body)
        except httpx.HTTPError as exc:
            traffic.replies.append(Reply("ingest", time.monotonic(), None, type(exc).__name__))
        else:
            reply = _record(traffic, "ingest", response)
            if 200 <= response.status_code < 300:
                answer = response.json()
                assert answer["requestId"] == event.request_id, answer
                traffic.answers[event.request_id] = Answer(
                    attempt, answer["status"], answer["eventId"], reply.at
                )
                return
            if reply.retry_after is not None and reply.retry_after.isdigit():
                delay = min(float(reply.retry_after), _RETRY_AFTER_CAP_S)
        if time.monotonic() > give_up_at:
            traffic.given_up.append(event.request_id)
            return
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))


async def _writer(
    client: httpx.AsyncClient,
    source: EventSource,
    traffic: Traffic,
    shape: LoadShape,
    stop: asyncio.Event,
) -> None:
    interval = shape.writers / shape.events_per_s
    while not stop.is_set():
        started = time.monotonic()
        await _send_until_acknowledged(client, source.next(), traffic, shape)
        await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))


async def _reader(
    client: httpx.AsyncClient, traffic: Traffic, shape: LoadShape, stop: asyncio.Event
) -> None:
    interval = shape.readers / shape.reads_per_s
    rng = random.Random()
    while not stop.is_set():
        started = time.monotonic()
        users = [traffic.sent[rid].user_id for rid in list(traffic.answers)[-200:]]
        if users:
            user = rng.choice(users)
            kind, path = rng.choice(
                [
                    ("recommend", f"/api/v1/recommend/{user}?k=10"),
                    ("recommend", f"/api/v1/recommend/{user}?k=10&context=home"),
                    ("features", f"/api/v1/features/{user}"),
                ]
            )
            try:
                response = await client.get(path)
            except httpx.HTTPError as exc:
                traffic.replies.append(Reply(kind, time.monotonic(), None, type(exc).__name__))
            else:
                _record(traffic, kind, response)
        await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))


@asynccontextmanager
async def running_load(
    client: httpx.AsyncClient, source: EventSource, shape: LoadShape = LoadShape()
) -> AsyncIterator[Traffic]:
    """Writers and readers run while the block runs. On a normal exit no new event is sent and
    every event in flight is retried until acknowledged (or given up); on an error the load is
    cancelled."""
    traffic = Traffic()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_writer(client, source, traffic, shape, stop))
        for _ in range(shape.writers)
    ]
    tasks += [
        asyncio.create_task(_reader(client, traffic, shape, stop)) for _ in range(shape.readers)
    ]
    try:
        yield traffic
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=shape.drain_timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert not pending, f"the load did not finish within {shape.drain_timeout_s}s of its stop"
    for task in done:
        task.result()  # a writer's or reader's own failure


def client_for(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float, what: str
) -> float:
    """Poll ``condition`` until it holds; fails after ``timeout`` seconds saying ``what`` was
    awaited. Returns the seconds it took."""
    started = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.05)


async def metric_total(client: httpx.AsyncClient, name: str) -> float:
    """The sum over every label set of ``name`` in the process's /metrics (0 when absent)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    total = 0.0
    for line in response.text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name or sample.startswith(name + "{"):
            total += float(value)
    return total
