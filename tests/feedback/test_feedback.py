"""Impressions, feedback and its joins, implicit attribution, online metrics, erasure: through
the HTTP API of the running service, in both modes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from interaction_recommender.bus.base import Record
from interaction_recommender.bus.memory import MemoryBus
from interaction_recommender.feedback.attribution import FeedbackAttribution
from interaction_recommender.storage.tables import feedback, impressions
from interaction_recommender.wire import utc_now
from tests.fixtures.app import Service
from tests.fixtures.bus import read_topic
from tests.fixtures.contract import assert_error_shape, assert_instant, assert_uuid
from tests.fixtures.factories import event_payload, new_id
from tests.fixtures.serving import ADMIN, eventually

NOW = "2026-11-26T12:00:00Z"


async def _recommend(service: Service, user: str, context: str = "home", k: int = 10) -> Any:
    response = await service.client.get(f"/api/v1/recommend/{user}?k={k}&context={context}")
    assert response.status_code == 200
    return response.json()


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["movieId"] for item in body["recommendations"]]


async def _feedback_rows(service: Service, user: str) -> list[Any]:
    async with service.runtime.database.transaction() as conn:
        result = await conn.execute(select(feedback).where(feedback.c.user_id == uuid.UUID(user)))
        return list(result.mappings())


async def _impression_count(service: Service, user: str) -> int:
    await service.runtime.impressions.flush()  # type: ignore[union-attr]
    async with service.runtime.database.transaction() as conn:
        query = select(func.count()).where(impressions.c.user_id == uuid.UUID(user))
        return int((await conn.execute(query)).scalar_one())


async def test_explicit_feedback_joins_its_impression_and_is_stored_once(
    serving: Service,
) -> None:
    user = new_id()
    shown = await _recommend(serving, user)
    ids = _ids(shown)
    body = {
        "userId": user,
        "modelVersion": shown["modelVersion"],
        "impressionList": ids,
        "clickedItemId": ids[2],
        "watchTimeSec": 120,
        "timestamp": NOW,
        "context": "home",
        "recommendationId": shown["recommendationId"],
        "requestId": new_id(),
    }
    first = await serving.client.post("/api/v1/feedback", json=body)
    assert first.status_code == 200, first.text
    recorded = first.json()
    assert recorded["status"] == "recorded"
    assert_uuid(recorded["feedbackId"])
    assert_instant(recorded["processedAt"])
    assert recorded["recommendationId"] == shown["recommendationId"]
    assert recorded["joinMethod"] == "recommendationId"

    again = (await serving.client.post("/feedback", json=body)).json()  # unprefixed too
    assert (again["status"], again["feedbackId"]) == ("duplicate", recorded["feedbackId"])

    # Without a requestId the content is the key: the same body twice is one row...
    anonymous = {**body, "requestId": None, "clickedItemId": ids[0]}
    one = (await serving.client.post("/api/v1/feedback", json=anonymous)).json()
    two = (await serving.client.post("/api/v1/feedback", json=anonymous)).json()
    assert one["status"] == "recorded"
    assert (two["status"], two["feedbackId"]) == ("duplicate", one["feedbackId"])
    # ... and a different body is another.
    other = await serving.client.post("/api/v1/feedback", json={**anonymous, "watchTimeSec": 5})
    assert other.json()["status"] == "recorded"
    assert len(await _feedback_rows(serving, user)) == 3

    messages = await read_topic(
        serving.runtime,
        serving.runtime.topics.model_feedback,
        until=lambda ms: sum(m["userId"] == user for m in ms) >= 3,
    )
    message = next(m for m in messages if m["feedbackId"] == recorded["feedbackId"])
    assert message["schemaVersion"] == 1
    assert message["recommendationId"] == shown["recommendationId"]
    assert message["policy"] == shown["policy"]
    assert (message["clicked"], message["clickPosition"]) == (True, 3)
    assert message["impressionCount"] == len(ids)
    assert message["engagementLevel"] == "watched"
    assert sum(m["userId"] == user for m in messages) == 3  # duplicates published nothing


async def test_feedback_without_an_id_joins_the_list_it_names(serving: Service) -> None:
    user = new_id()
    await _recommend(serving, user, "home")
    search = await _recommend(serving, user, "search", k=5)
    body = {"userId": user, "impressionList": _ids(search), "timestamp": utc_now().isoformat()}
    joined = (await serving.client.post("/api/v1/feedback", json=body)).json()
    assert joined["joinMethod"] == "window"
    assert joined["recommendationId"] == search["recommendationId"]

    never_shown = {**body, "impressionList": [new_id(), new_id()]}
    alone = (await serving.client.post("/api/v1/feedback", json=never_shown)).json()
    assert (alone["joinMethod"], alone["recommendationId"]) == ("none", None)

    foreign = await _recommend(serving, new_id())  # another user's recommendationId
    claimed = {**body, "recommendationId": foreign["recommendationId"], "requestId": new_id()}
    wrong_user = (await serving.client.post("/api/v1/feedback", json=claimed)).json()
    assert wrong_user["recommendationId"] == search["recommendationId"]  # by the list instead


async def _event(service: Service, kind: str, user: str, movie: str, **metadata: Any) -> None:
    body = event_payload(kind, user_id=user, movie_id=movie, metadata=metadata or None)
    assert (await service.client.post(f"/api/v1/events/{kind}", json=body)).status_code == 200


async def test_a_watch_of_a_recommended_movie_is_attributed_once_to_the_last_impression(
    serving: Service,
) -> None:
    user = new_id()
    earlier = await _recommend(serving, user)
    latest = await _recommend(serving, user, k=12)  # also shows earlier's movies
    movie = _ids(latest)[1]
    assert movie in _ids(earlier)
    for progress in (10.0, 40.0, 80.0):  # heartbeats of one viewing
        await _event(serving, "watch", user, movie, progressPercent=progress, watchDuration=600)
    await _event(serving, "rating", user, movie, rating=4.5)
    await _event(serving, "watch", user, new_id(), progressPercent=50.0)  # never recommended

    async def attributed() -> bool:
        return len(await _feedback_rows(serving, user)) >= 2

    await eventually(attributed, timeout=20)
    await asyncio.sleep(1.5)  # later messages (and redeliveries) must add nothing
    rows = await _feedback_rows(serving, user)
    assert sorted(r["action"] for r in rows) == ["rating", "watch"]
    for row in rows:
        assert row["source"] == "implicit"
        assert str(row["recommendation_id"]) == latest["recommendationId"]
        assert str(row["clicked_item_id"]) == movie
        assert row["click_position"] == 2


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_a_replay_of_the_whole_topic_attributes_nothing_twice(serving: Service) -> None:
    user = new_id()
    movie = _ids(await _recommend(serving, user))[0]
    await _event(serving, "watch", user, movie, progressPercent=90.0)
    await _event(serving, "favorite", user, movie, action="add")

    async def attributed() -> bool:
        return len(await _feedback_rows(serving, user)) == 2

    await eventually(attributed, timeout=20)
    bus = serving.runtime.bus
    assert isinstance(bus, MemoryBus)
    topic = serving.runtime.topics.interaction_events
    _, messages = bus.read(topic, 0, limit=10**6)
    records = [Record(topic, 0, i, m.key, m.value) for i, m in enumerate(messages)]
    replay = FeedbackAttribution(
        serving.runtime.database, None, topic=serving.runtime.topics.model_feedback, window_s=3600
    )
    await replay.handle(records)  # from offset 0, as after a lost commit
    await replay.handle(records[-1:])  # and a redelivery of the last one
    assert replay.attributed == 0
    assert len(await _feedback_rows(serving, user)) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"impressionList": [str(uuid.uuid4()) for _ in range(501)]}, "impressionList"),
        ({"action": "buy"}, "action"),
        ({"context": "x" * 201}, "context"),
        ({"timestamp": "2026-11-26T12:00:00"}, "timestamp"),  # naive
        ({"userId": "user-1"}, "userId"),
        ({"watchTimeSec": -1}, "watchTimeSec"),
        ({"clickedItemId": 17}, "clickedItemId"),
    ],
)
@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_bad_feedback_is_a_422_and_stores_nothing(
    serving: Service, change: dict[str, Any], field: str
) -> None:
    user = new_id()
    body = {"userId": user, "impressionList": [new_id()], "timestamp": NOW, **change}
    response = await serving.client.post("/api/v1/feedback", json=body)
    assert response.status_code == 422
    assert_error_shape(response.json())
    assert field in response.text
    if change.get("userId") is None:
        assert await _feedback_rows(serving, user) == []


async def test_online_metrics_of_a_replayed_day(serving: Service) -> None:
    """30 users are shown a home row; every third clicks the item at position (i % 5) + 1, every
    fourth reports a watch. The endpoint must give exactly the rates of that plan."""
    users = [new_id() for _ in range(30)]
    clicks: dict[int, int] = {}
    watched = 0
    shown_movies: set[str] = set()
    version = ""
    for i, user in enumerate(users):
        shown = await _recommend(serving, user)
        version = shown["modelVersion"]
        ids = _ids(shown)
        shown_movies |= set(ids)
        body: dict[str, Any] = {
            "userId": user,
            "recommendationId": shown["recommendationId"],
            "impressionList": ids,
            "timestamp": utc_now().isoformat(),
        }
        if i % 3 == 0:
            clicks[i] = (i % 5) + 1
            body["clickedItemId"] = ids[clicks[i] - 1]
        if i % 4 == 0:
            body["watchTimeSec"] = 600
            watched += 1
        if "clickedItemId" in body or "watchTimeSec" in body:
            response = await serving.client.post("/api/v1/feedback", json=body)
            assert response.json()["status"] == "recorded"

    response = await serving.client.get(
        "/api/v1/metrics/online", params={"context": "home", "modelVersion": version}
    )
    assert response.status_code == 200
    groups = {(g["context"], g["modelVersion"]): g for g in response.json()["groups"]}
    assert set(groups) == {("home", version), ("all", "all")}
    home = groups[("home", version)]
    assert home["impressions"] == 30
    assert home["clickThroughRate"]["value"] == pytest.approx(len(clicks) / 30)
    assert home["clickThroughRate"]["low"] < len(clicks) / 30 < home["clickThroughRate"]["high"]
    assert home["watchThroughRate"]["value"] == pytest.approx(watched / 30)
    mrr = sum(1 / p for p in clicks.values()) / 30
    assert home["meanReciprocalRank"]["value"] == pytest.approx(mrr)
    assert home["catalogCoverage"]["distinctMovies"] == len(shown_movies)
    assert home["catalogCoverage"]["catalogSize"] == len(serving.runtime.catalog.movies())

    later = await serving.client.get("/metrics/online", params={"since": "2100-01-01T00:00:00Z"})
    assert later.status_code == 422  # out of range
    empty = await serving.client.get("/metrics/online", params={"context": "similar"})
    assert [g["impressions"] for g in empty.json()["groups"]] == [0]


async def test_erasure_removes_impressions_and_feedback(serving: Service) -> None:
    user = new_id()
    shown = await _recommend(serving, user)
    body = {"userId": user, "recommendationId": shown["recommendationId"], "timestamp": NOW}
    assert (await serving.client.post("/api/v1/feedback", json=body)).status_code == 200
    assert await _impression_count(serving, user) == 1

    headers = {"Authorization": f"Bearer {ADMIN}"}
    assert (await serving.client.delete(f"/api/v1/users/{user}", headers=headers)).is_success
    assert await _impression_count(serving, user) == 0
    assert await _feedback_rows(serving, user) == []
