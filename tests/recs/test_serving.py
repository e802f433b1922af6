"""GET /recommend as the Java callers use it: contract, contexts, cache, fallbacks, hot reload."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import orjson
import pytest

from interaction_recommender.model.arrays import RecommenderModel
from interaction_recommender.model.bundle import save_bundle_file, write_bundle
from interaction_recommender.model.signing import SigningKeys
from interaction_recommender.settings import Settings
from tests.fixtures.app import SIGNING_KEY, Service, run_service
from tests.fixtures.contract import assert_error_shape, assert_instant, assert_uuid
from tests.fixtures.factories import new_id
from tests.fixtures.model import fit_sample_model
from tests.fixtures.serving import ADMIN, eventually, watch
from tests.recs.world import PlantedWorld

_VOCABULARY_PREFIXES = (
    "because_you_watched:",
    "similar_to:",
    "matches_genre:",
    "matches_search:",
    "collaborative",
    "trending",
    "popular",
    "new_release",
)


async def _features_version(service: Service, user: str) -> int:
    response = await service.client.get(f"/api/v1/features/{user}")
    return int(response.json()["version"]) if response.status_code == 200 else -1


def _assert_contract(body: dict[str, Any], k: int) -> None:
    assert_uuid(body["userId"])
    assert_uuid(body["recommendationId"])
    assert isinstance(body["modelVersion"], str)
    assert isinstance(body["cached"], bool)
    assert_instant(body["generatedAt"])
    assert isinstance(body["context"], str)
    assert isinstance(body["policy"], str)
    items = body["recommendations"]
    assert len(items) <= k
    assert len({i["movieId"] for i in items}) == len(items)  # no duplicates
    for item in items:
        assert_uuid(item["movieId"])
        assert isinstance(item["score"], float)
        assert item["reasons"]
        assert all(r.startswith(_VOCABULARY_PREFIXES) for r in item["reasons"])


async def test_the_callers_requests_decode(serving: Service, world: PlantedWorld) -> None:
    user = new_id()
    for movie in world.drama[2:7]:
        await watch(serving, user, movie)
    await eventually(lambda: _interactions(serving, user, 5))
    catalog_ids = {str(m.movie_id) for m in world.catalog}

    for path, policy in (
        (f"/api/v1/recommend/{user}?k=150&context=home", "home"),
        (f"/recommend/{user}?k=10&context=home&retrain=true", "home"),
        (f"/api/v1/recommend/{user}?k=5&context=similar:{world.twins[0]}", "similar"),
        (f"/api/v1/recommend/{user}?k=5&context=detail&movieId={world.twins[0]}", "detail"),
        (f"/api/v1/recommend/{user}?k=5&context=search", "search"),
        (f"/api/v1/recommend/{user}?k=5&context=no-such-context", "home:fallback"),
        (f"/api/v1/recommend/{new_id()}?k=5&context=home", "home"),  # an unknown user
    ):
        response = await serving.client.get(path)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        _assert_contract(body, 150)
        assert body["policy"] == policy
        assert {i["movieId"] for i in body["recommendations"]} <= catalog_ids
    big = (await serving.client.get(f"/api/v1/recommend/{user}?k=150")).json()
    assert len(big["recommendations"]) == 60 - 5  # the whole catalog but what was watched
    similar = (
        await serving.client.get(f"/recommend/{user}?context=similar:{world.twins[0]}")
    ).json()
    assert similar["recommendations"][0]["movieId"] == str(world.twins[1])


async def _interactions(service: Service, user: str, count: int) -> bool:
    response = await service.client.get(f"/api/v1/features/{user}")
    return response.status_code == 200 and response.json()["features"]["totalInteractions"] >= count


async def _positive(service: Service, user: str) -> bool:
    return await _features_version(service, user) > 0


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
@pytest.mark.parametrize(
    "query", ["k=0", "k=-3", "k=abc", "k=1.5", "context=similar:not-a-uuid", "context=detail:123"]
)
async def test_bad_parameters_are_422(serving: Service, query: str) -> None:
    response = await serving.client.get(f"/api/v1/recommend/{new_id()}?{query}")

    assert response.status_code == 422
    assert_error_shape(response.json())


async def test_cache_hit_then_invalidated_by_an_event_and_by_a_model_swap(
    serving: Service, world: PlantedWorld, tmp_path: Path
) -> None:
    user = new_id()
    await watch(serving, user, world.drama[3])
    await eventually(lambda: _positive(serving, user))
    url = f"/api/v1/recommend/{user}?k=10"

    first = (await serving.client.get(url)).json()
    await asyncio.sleep(0.2)  # the list is stored after the answer
    second = (await serving.client.get(url)).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["recommendations"] == first["recommendations"]
    assert second["recommendationId"] != first["recommendationId"]

    watched = uuid.UUID(first["recommendations"][0]["movieId"])
    version = await _features_version(serving, user)
    await watch(serving, user, watched)  # the top pick, watched a moment ago
    await eventually(lambda: _newer(serving, user, version))
    stored_by = time.monotonic()
    # The rule: an answer that starts more than NEAR_CACHE_TTL_S after the new features were
    # stored reflects them (the invalidation message usually makes it at once).
    third: dict[str, Any] = {}

    async def fresh() -> bool:
        third.update((await serving.client.get(url)).json())
        return third["cached"] is False

    await eventually(fresh, timeout=serving.settings.near_cache_ttl_s + 1.0)
    assert time.monotonic() - stored_by <= serving.settings.near_cache_ttl_s + 1.0
    assert str(watched) not in {i["movieId"] for i in third["recommendations"]}

    await asyncio.sleep(0.2)
    assert (await serving.client.get(url)).json()["cached"] is True
    _retrain_into(serving, tmp_path, version="swapped")
    await eventually(lambda: _model_version_is(serving, "swapped"))
    fourth = (await serving.client.get(url)).json()
    assert fourth["cached"] is False
    assert fourth["modelVersion"] == "swapped"


async def _newer(service: Service, user: str, version: int) -> bool:
    return await _features_version(service, user) > version


async def _model_version_is(service: Service, version: str) -> bool:
    return (await service.client.get("/api/v1/model/info")).json()["version"] == version


@functools.cache
def _fitted() -> RecommenderModel:
    return fit_sample_model()


def _retrain_into(
    service: Service, tmp_path: Path, *, version: str, calibration: float = 0.0
) -> None:
    """A new signed bundle at MODEL_PATH (the import path), trained now."""
    model = replace(
        _fitted(), version=version, calibration_lambda=calibration, trained_at=datetime.now(UTC)
    )
    bundle = write_bundle(model, SigningKeys.parse(SIGNING_KEY))
    save_bundle_file(bundle, service.settings.effective_model_path)


async def _reload_as_a_client_would(service: Service, headers: dict[str, str]) -> Any:
    """POST /model/reload, retried after a 503 as its Retry-After says: the reload reads the
    model store, and the embedded mode's one SQLite connection may be saturated by the load."""
    for _ in range(10):
        response = await service.client.post("/api/v1/model/reload", headers=headers)
        if response.status_code != 503:
            return response
        await asyncio.sleep(float(response.headers["Retry-After"]))
    return response


async def _refused_count(service: Service) -> float:
    exported = (await service.client.get("/metrics")).text
    line = next(x for x in exported.splitlines() if x.startswith("model_artifacts_refused_total"))
    return float(line.split()[-1])


def _with_manifest_edit(bundle: bytes, old: bytes, new: bytes) -> bytes:
    """The bundle with its manifest edited after signing (the signature no longer matches)."""
    source, target = zipfile.ZipFile(io.BytesIO(bundle)), io.BytesIO()
    with source, zipfile.ZipFile(target, "w") as archive:
        for name in source.namelist():
            data = source.read(name)
            archive.writestr(name, data.replace(old, new) if name == "manifest.json" else data)
    return target.getvalue()


async def test_a_hidden_movie_leaves_cached_lists_within_10s(
    serving: Service, world: PlantedWorld
) -> None:
    user = new_id()
    await watch(serving, user, world.drama[4])
    await eventually(lambda: _positive(serving, user))
    url = f"/api/v1/recommend/{user}?k=10"
    top = (await serving.client.get(url)).json()["recommendations"][0]["movieId"]
    await asyncio.sleep(0.2)

    await serving.client.put(f"/api/v1/movies/{top}", json={"available": False})

    async def gone() -> bool:
        body = (await serving.client.get(url)).json()
        return top not in {i["movieId"] for i in body["recommendations"]}

    await eventually(gone, timeout=10)


async def test_reload_accepts_a_good_artifact_and_rejects_broken_ones(
    serving: Service, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    path = serving.settings.effective_model_path
    unchanged = await serving.client.post("/api/v1/model/reload", headers=headers)
    assert unchanged.json()["status"] == "unchanged"
    assert (await serving.client.post("/model/reload")).status_code == 401  # admin only

    _retrain_into(serving, tmp_path, version="v-good", calibration=0.3)
    good = await serving.client.post("/api/v1/model/reload", headers=headers)
    assert good.status_code == 200, good.text
    assert good.json()["status"] == "reloaded"
    assert good.json()["newVersion"] == "v-good"
    assert_instant(good.json()["reloadedAt"])
    calibration = (await serving.client.get("/api/v1/model/info")).json()["calibration"]
    assert calibration["lambda"] == 0.3  # the model's, from its manifest...
    assert calibration["serving"] == 0.3  # ... and served with: no CALIBRATION_LAMBDA here
    models = await serving.client.get("/api/v1/models", headers=headers)
    assert models.status_code == 200, models.text
    assert models.json()["names"] == {"champion": "v-good"}
    newest = models.json()["versions"][0]
    assert (newest["version"], newest["source"], newest["trainedFor"]) == (
        "v-good",
        "import",
        "champion",
    )
    assert newest["sizeBytes"] > 0 and newest["trainedAt"]
    assert (await serving.client.get("/models")).status_code == 401  # admin only
    exported = (await serving.client.get("/metrics")).text
    assert 'recommender_model_info{loaded_at="' in exported
    assert 'version="v-good"' in exported

    # A newer bundle, broken in three ways.
    refused_before = await _refused_count(serving)
    _retrain_into(serving, tmp_path, version="v-next")
    good_next = path.read_bytes()
    path.write_bytes(good_next[:1000])  # truncated
    truncated = await serving.client.post("/api/v1/model/reload", headers=headers)
    path.write_bytes(_with_manifest_edit(good_next, b'"ease"', b'"eaze"'))  # edited after signing
    forged = await serving.client.post("/api/v1/model/reload", headers=headers)
    path.write_bytes(_with_manifest_edit(good_next, b'"signature"', b'"signedBy"'))  # unsigned
    unsigned = await serving.client.post("/api/v1/model/reload", headers=headers)

    for rejected, reason in ((truncated, "zip"), (forged, "verify"), (unsigned, "not signed")):
        assert rejected.status_code == 422
        assert_error_shape(rejected.json())
        assert reason in rejected.json()["message"]
    info = (await serving.client.get("/api/v1/model/info")).json()
    assert info["status"] == "loaded"
    assert info["version"] == "v-good"  # the current model kept serving
    assert "not signed" in info["lastError"]
    health = (await serving.client.get("/health")).json()
    assert health["components"]["model"]["status"] == "healthy"
    assert "not signed" in health["components"]["model"]["message"]
    assert await _refused_count(serving) == refused_before + 3  # each counted once


async def test_a_swap_under_concurrent_requests_fails_nothing_and_rollback_restores(
    serving: Service, world: PlantedWorld, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    users = [new_id() for _ in range(5)]
    statuses: list[int] = []
    done = asyncio.Event()

    async def load() -> None:
        n = 0
        while not done.is_set():
            user = users[n % len(users)]
            n += 1
            response = await serving.client.get(f"/api/v1/recommend/{user}?k=10")
            statuses.append(response.status_code)
            assert response.json()["recommendations"]
            # A cache hit may complete without suspending: pause so the swaps get their turn
            # (8 clients at up to 100 requests/s each; unpaced, they flood the embedded mode's
            # one SQLite connection with impressions and the reload waits past its timeout).
            await asyncio.sleep(0.01)

    clients = [asyncio.create_task(load()) for _ in range(8)]
    for version in ("swap-1", "swap-2", "swap-3"):
        await asyncio.to_thread(_retrain_into, serving, tmp_path, version=version)
        response = await _reload_as_a_client_would(serving, headers)
        assert response.status_code == 200, response.text
        assert response.json()["newVersion"] == version
    done.set()
    await asyncio.gather(*clients)
    assert len(statuses) >= 8  # on a busy 2-core machine a retrain leaves room for few
    assert set(statuses) == {200}

    rolled_back = await serving.client.post("/api/v1/model/rollback", headers=headers)
    assert rolled_back.status_code == 200, rolled_back.text
    assert rolled_back.json()["previousVersion"] == "swap-3"
    assert rolled_back.json()["newVersion"] == "swap-2"
    assert rolled_back.json()["propagatesWithinS"] == serving.settings.model_poll_s
    assert await _model_version_is(serving, "swap-2")


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.mark.parametrize("mode", ["platform"], indirect=True)
async def test_a_redis_that_never_answers_gives_a_fallback_within_the_budget(
    settings: Settings, silent_redis: str
) -> None:
    hanging = settings.model_copy(
        update={"redis_url": silent_redis, "recommend_budget_s": 0.3, "health_probe_timeout_s": 0.5}
    )
    async with run_service(hanging) as service:
        started = time.monotonic()
        response = await service.client.get(f"/api/v1/recommend/{new_id()}?k=10")
        elapsed = time.monotonic() - started
        health = (await service.client.get("/health")).json()

    assert response.status_code == 200
    body = response.json()
    assert body["policy"] == "home:fallback"
    assert body["cached"] is False
    assert elapsed < 2.0, elapsed
    for item in body["recommendations"]:
        assert set(item["reasons"]) <= {"popular", "trending", "new_release"}
    assert health["components"]["redis"]["status"] == "degraded"


class _CreatesAFile:
    """Unpickling this calls open(path, "w"): proof that a pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


async def test_a_hostile_pickle_at_model_path_is_refused_and_never_runs(
    serving: Service, tmp_path: Path
) -> None:
    """The seed's artifact format (a joblib pickle), with its sidecar manifest forged to match:
    refused as not a bundle before any byte is unpickled."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    served = (await serving.client.get("/api/v1/model/info")).json()["version"]
    marker = tmp_path / "pwned"
    path = serving.settings.effective_model_path
    joblib.dump(_CreatesAFile(str(marker)), path)
    forged = {
        "format": 2,
        "version": "evil",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    path.with_name(path.name + ".json").write_bytes(orjson.dumps(forged))

    answer = await serving.client.post("/api/v1/model/reload", headers=headers)

    assert answer.status_code == 422
    assert "model migrate" in answer.json()["message"]  # what to do with an old artifact
    assert not marker.exists()
    assert (await serving.client.get("/api/v1/model/info")).json()["version"] == served
    again = await serving.client.post("/api/v1/model/reload", headers=headers)
    assert again.status_code == 422  # still refused, not re-read: the file did not change
    assert not marker.exists()


async def test_the_model_age_gauge_follows_the_champions_training_time(serving: Service) -> None:
    """`recommender_model_age_seconds` (the stale-model alert of deploy/alerts.yml): seconds
    since the served champion was trained."""
    trained_at = datetime.fromisoformat(
        (await serving.client.get("/api/v1/model/info")).json()["trainedAt"]
    )
    exported = (await serving.client.get("/metrics")).text
    line = next(x for x in exported.splitlines() if x.startswith("recommender_model_age_seconds"))
    age = float(line.split()[-1])

    expected = (datetime.now(UTC) - trained_at).total_seconds()
    assert 0 <= age <= expected + 1
    assert age >= expected - 2 * serving.settings.model_poll_s - 1  # refreshed by the poll
