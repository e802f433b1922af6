"""Crash recovery end to end: the real server as a subprocess, SIGKILLed under load and restarted.

A client sends ~2,000 events and retries every failure with the same requestId and body until it
gets a 2xx. The server is killed with SIGKILL while the load runs and started again on the same
port. Afterwards every acknowledged requestId must have exactly one stored row, carrying the
eventId the client was answered, and every such event must have reached Kafka (at least once).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fixtures.bus import _read_kafka
from tests.fixtures.factories import event_payload
from tests.fixtures.server import ServerProcess, platform_env, server_port
from tests.fixtures.services import KafkaBroker, pg_base_url

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(180)]

EVENT_TYPES = ("watch", "search", "rating", "favorite")
EVENTS = 2000
USERS = 300
MOVIES = 500
WORKERS = 16
KILL_AFTER_ANSWERED = 600

LOAD_DEADLINE_S = 45.0  # every event answered 2xx, the crash and the restart included
KAFKA_TIMEOUT_S = 20.0
REQUEST_TIMEOUT = httpx.Timeout(5.0, connect=1.0)


# --- the client -----------------------------------------------------------------------------------
@dataclass
class Event:
    path: str
    body: dict[str, Any]

    @property
    def request_id(self) -> str:
        return str(self.body["requestId"])


@dataclass
class Answer:
    attempt: int  # 1 = answered on the first try
    status: str
    event_id: str


@dataclass
class Load:
    answers: dict[str, list[Answer]] = field(default_factory=lambda: defaultdict(list))
    answered: int = 0
    failed_attempts: int = 0
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    kill_point: asyncio.Event = field(default_factory=asyncio.Event)
    answered_at_kill: int | None = None
    answered_at_restart: int | None = None


def _make_events(seed: int) -> list[Event]:
    rng = random.Random(seed)
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(USERS)]
    movies = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(MOVIES)]
    events = []
    for _ in range(EVENTS):
        event_type = rng.choice(EVENT_TYPES)
        body = event_payload(
            event_type,
            user_id=rng.choice(users),
            movie_id=rng.choice(movies),
            request_id=str(uuid.uuid4()),
        )
        events.append(Event(f"/api/v1/events/{event_type}", body))
    assert len({e.request_id for e in events}) == EVENTS
    return events


async def _send_until_acknowledged(
    client: httpx.AsyncClient, event: Event, load: Load, deadline: float
) -> None:
    """POST the same body (same requestId) until a 2xx, with a short capped backoff."""
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await client.post(event.path, json=event.body)
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        else:
            if 200 <= response.status_code < 300:
                answer = response.json()
                assert answer["requestId"] == event.request_id, answer
                load.answers[event.request_id].append(
                    Answer(attempt, answer["status"], answer["eventId"])
                )
                load.answered += 1
                if load.answered >= KILL_AFTER_ANSWERED:
                    load.kill_point.set()
                return
            failure = f"HTTP {response.status_code}"
        load.failed_attempts += 1
        load.failures[failure] += 1
        if time.monotonic() > deadline:
            pytest.fail(
                f"request {event.request_id} got no 2xx within {LOAD_DEADLINE_S}s "
                f"({attempt} attempts, last failure: {failure}); "
                f"{load.answered}/{EVENTS} events answered"
            )
        await asyncio.sleep(min(0.02 * 2**attempt, 0.4) * random.uniform(0.5, 1.0))


async def _worker(
    client: httpx.AsyncClient, queue: asyncio.Queue[Event], load: Load, deadline: float
) -> None:
    while True:
        try:
            event = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        await _send_until_acknowledged(client, event, load, deadline)


async def _crash_and_restart(server: ServerProcess, client: httpx.AsyncClient, load: Load) -> None:
    await load.kill_point.wait()
    load.answered_at_kill = load.answered
    await server.kill()
    # Let the clients hit the closed port for a moment (connection refused -> retry).
    await asyncio.sleep(0.5)
    server.start()
    await server.wait_ready(client)
    load.answered_at_restart = load.answered


# --- the checks -----------------------------------------------------------------------------------
async def _stored_rows(schema: str) -> dict[str, list[str]]:
    """request_id -> the event_ids of its rows in raw_events."""
    conn = await asyncpg.connect(pg_base_url().replace("+asyncpg", ""), timeout=5)
    try:
        rows = await conn.fetch(
            f"SELECT request_id, count(*) AS n, array_agg(event_id) AS event_ids "
            f'FROM "{schema}".raw_events GROUP BY request_id'
        )
    finally:
        await conn.close()
    stored = {str(r["request_id"]): [str(e) for e in r["event_ids"]] for r in rows}
    assert all(len(stored[str(r["request_id"])]) == r["n"] for r in rows)
    return stored


async def _kafka_events(bootstrap: str, topic: str, wanted: set[str]) -> dict[str, set[str]]:
    """eventId -> the requestIds of its messages, read until every wanted eventId is present or
    the timeout passes."""
    deadline = time.monotonic() + KAFKA_TIMEOUT_S
    while True:
        seen: dict[str, set[str]] = defaultdict(set)
        for message in await _read_kafka(bootstrap, topic):
            seen[str(message["eventId"])].add(str(message["requestId"]))
        if wanted <= seen.keys() or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.5)


# --- the test -------------------------------------------------------------------------------------
async def test_sigkill_under_load_loses_and_duplicates_nothing(
    pg_schema: str, kafka_broker: KafkaBroker, redis_url: str, tmp_path: Path
) -> None:
    topic = f"{pg_schema}.interaction_events"
    env = platform_env(pg_schema, kafka_broker, redis_url, tmp_path)
    server = ServerProcess(server_port(), env, tmp_path / "server.log")
    events = _make_events(seed=20250101)
    load = Load()
    passed = False

    try:
        async with httpx.AsyncClient(
            base_url=server.base_url,
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=WORKERS + 2, max_keepalive_connections=WORKERS),
        ) as client:
            server.start()
            await server.wait_ready(client)

            queue: asyncio.Queue[Event] = asyncio.Queue()
            for event in events:
                queue.put_nowait(event)
            deadline = time.monotonic() + LOAD_DEADLINE_S
            async with asyncio.TaskGroup() as group:
                group.create_task(_crash_and_restart(server, client, load))
                for _ in range(WORKERS):
                    group.create_task(_worker(client, queue, load, deadline))

        duplicates = sum(a.status == "duplicate" for ans in load.answers.values() for a in ans)
        print(
            f"answered at kill: {load.answered_at_kill}, at restart: {load.answered_at_restart}, "
            f"failed attempts: {load.failed_attempts} {dict(load.failures)}, "
            f"duplicate answers: {duplicates}"
        )

        # The crash really happened in the middle of the load, and it cut requests.
        assert server.starts == 2
        assert load.answered_at_kill is not None and load.answered_at_kill < EVENTS
        assert load.failed_attempts > 0, "no request failed: the kill did not interrupt the load"

        # Every event got a 2xx; answers for one requestId agree; a first-try answer is
        # `accepted` (nobody sent that requestId before); `duplicate` follows a failed attempt.
        assert len(load.answers) == EVENTS
        answered: dict[str, str] = {}
        for request_id, answers in load.answers.items():
            assert answers, request_id
            assert len({a.event_id for a in answers}) == 1, (request_id, answers)
            for answer in answers:
                assert answer.status in {"accepted", "duplicate"}, (request_id, answer)
                if answer.attempt == 1:
                    assert answer.status == "accepted", (request_id, answer)
            answered[request_id] = answers[0].event_id

        # Exactly one row per acknowledged requestId, with the eventId that was answered, and
        # no row for anything else.
        stored = await _stored_rows(pg_schema)
        multiple = {rid: ids for rid, ids in stored.items() if len(ids) != 1}
        assert not multiple, f"requestIds with several rows: {list(multiple.items())[:5]}"
        missing_rows = sorted(answered.keys() - stored.keys())
        assert not missing_rows, (
            f"{len(missing_rows)} acknowledged events have no row, e.g. {missing_rows[:5]}"
        )
        unexpected = sorted(stored.keys() - answered.keys())
        assert not unexpected, f"rows for requestIds never sent: {unexpected[:5]}"
        wrong_id = {
            rid: (answered[rid], stored[rid][0])
            for rid in answered
            if answered[rid] != stored[rid][0]
        }
        assert not wrong_id, f"answered eventId != stored eventId: {list(wrong_id.items())[:5]}"

        # Every acknowledged event reached Kafka at least once, with its own requestId.
        wanted = set(answered.values())
        published = await _kafka_events(kafka_broker.bootstrap, topic, wanted)
        unpublished = sorted(wanted - published.keys())
        assert not unpublished, (
            f"{len(unpublished)}/{len(wanted)} acknowledged events not on {topic} after "
            f"{KAFKA_TIMEOUT_S}s, e.g. {unpublished[:5]}"
        )
        mismatched = {
            rid: published[eid] for rid, eid in answered.items() if published[eid] != {rid}
        }
        assert not mismatched, f"messages with the wrong requestId: {list(mismatched.items())[:5]}"
        passed = True
    finally:
        await server.stop()
        if not passed:
            print(f"--- tail of the server log ({tmp_path / 'server.log'}) ---")
            print(server.log_tail())
