"""Malformed input at the event routes: a 4xx in the one error shape, never a 5xx, nothing stored.

docs/contract.md: malformed input (not a UUID, not a number, a naive timestamp) is a 422; an
oversized body is a 413 (64 KiB per single event, 16 MiB for /events/batch), a body that is not
JSON a 415.
Explicit nulls and missing keys are accepted alike, and unknown keys are ignored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from interaction_recommender.storage.tables import raw_events
from tests.fixtures.app import Service, embedded_settings, run_service
from tests.fixtures.contract import assert_error_shape, assert_event_response
from tests.fixtures.factories import event_payload, new_id

SINGLE_LIMIT = 64 * 1024
BATCH_LIMIT = 16 * 1024 * 1024
_DROP = object()  # a change that removes the key instead of setting it

Changes = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One HTTP request, as httpx keyword arguments."""

    path: str
    method: str = "POST"
    kwargs: dict[str, Any] = field(default_factory=dict)
    chunked: bool = False  # streamed without a Content-Length


Build = Callable[[str], Call]  # request id -> the request carrying it (where it can)


# --- building the requests -----------------------------------------------------------------------
def _route(event_type: str) -> str:
    return f"/api/v1/events/{event_type}"


def _event(event_type: str, request_id: str, changes: Changes | None = None) -> dict[str, Any]:
    """A valid event with ``changes`` applied: "key" or "metadata.key" -> value (or _DROP)."""
    body = event_payload(event_type, request_id=request_id)
    body["metadata"] = dict(body["metadata"])
    for dotted, value in (changes or {}).items():
        target = body
        *parents, key = dotted.split(".")
        for parent in parents:
            target = target[parent]
        if value is _DROP:
            target.pop(key, None)
        else:
            target[key] = value
    return body


def _raw(text: str | bytes, content_type: str | None = "application/json") -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else {}
    return {"content": text.encode() if isinstance(text, str) else text, "headers": headers}


def changed(event_type: str, changes: Changes) -> Build:
    """The event with ``changes``, sent with httpx's own JSON encoder."""
    return lambda rid: Call(_route(event_type), kwargs={"json": _event(event_type, rid, changes)})


def raw_changed(event_type: str, changes: Changes) -> Build:
    """The event with ``changes``, serialised by ``json.dumps``: NaN and Infinity as literals,
    lone surrogates as ``\\ud800`` escapes (text httpx's encoder refuses to produce)."""
    return lambda rid: Call(
        _route(event_type), kwargs=_raw(json.dumps(_event(event_type, rid, changes)))
    )


def raw_body(path: str, text: Callable[[str], str | bytes], content_type: str | None) -> Build:
    return lambda rid: Call(path, kwargs=_raw(text(rid), content_type))


def json_body(path: str, body: Callable[[str], Any]) -> Build:
    return lambda rid: Call(path, kwargs={"json": body(rid)})


def _batch_of(count: int) -> Callable[[str], Any]:
    def events(rid: str) -> dict[str, Any]:
        first = event_payload("watch", request_id=rid, with_type=True)
        rest = [event_payload("watch", with_type=True) for _ in range(count - 1)]
        return {"events": [first, *rest]}

    return events


def _oversized_single(rid: str) -> str:
    return json.dumps(_event("watch", rid, {"metadata.device": "x" * SINGLE_LIMIT}))


def _oversized_batch(rid: str) -> str:
    # One event whose padding alone is past the limit: cheap to build, one string.
    padded = _event("watch", rid, {"type": "watch", "padding": "x" * BATCH_LIMIT})
    return json.dumps({"events": [padded]})


def streamed(path: str, total: int, chunk: int) -> Build:
    """A chunked body (no Content-Length) of ``total`` bytes: the limit must hold while reading."""

    def build(rid: str) -> Call:
        async def chunks() -> AsyncIterator[bytes]:
            head = f'{{"requestId": "{rid}", "padding": "'.encode()
            yield head
            sent = len(head)
            while sent < total:
                yield b"x" * chunk
                sent += chunk
            yield b'"}'

        headers = {"content-type": "application/json"}
        return Call(path, kwargs={"content": chunks(), "headers": headers}, chunked=True)

    return build


def _filters(value: Any) -> Changes:
    return {"metadata.filters": value}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for level in range(depth):
        value = {f"level{level}": value}
    return value


# --- the table ---------------------------------------------------------------------------------
def bad(case_id: str, event_type: str, changes: Changes, status: int = 422) -> Any:
    return pytest.param(changed(event_type, changes), status, id=case_id)


def bad_raw(case_id: str, event_type: str, changes: Changes, status: int = 422) -> Any:
    return pytest.param(raw_changed(event_type, changes), status, id=case_id)


def bad_call(case_id: str, build: Build, status: int) -> Any:
    return pytest.param(build, status, id=case_id)


WATCH, SEARCH, BATCH = _route("watch"), _route("search"), _route("batch")

CASES = [
    # Wrong types.
    bad("watch-duration-not-a-number", "watch", {"metadata.watchDuration": "ten minutes"}),
    bad("user-id-object", "watch", {"userId": {"id": new_id()}}),
    bad("user-id-number", "rating", {"userId": 42}),
    bad("metadata-string", "watch", {"metadata": "1080p"}),
    bad("metadata-list", "favorite", {"metadata": ["add"]}),
    bad("rating-not-a-number", "rating", {"metadata.rating": "five"}),
    bad("progress-percent-list", "watch", {"metadata.progressPercent": [42]}),
    bad_call("body-list", json_body(WATCH, lambda rid: [_event("watch", rid)]), 422),
    bad_call("body-number", json_body(WATCH, lambda rid: 42), 422),
    bad_call("body-string", json_body(WATCH, lambda rid: "watch"), 422),
    bad_call("body-null", raw_body(WATCH, lambda rid: "null", "application/json"), 422),
    # Ids that are not UUIDs.
    bad("user-id-not-uuid", "watch", {"userId": "user-42"}),
    bad("movie-id-placeholder", "rating", {"movieId": "movie-0001"}),
    bad("movie-id-empty", "favorite", {"movieId": ""}),
    bad("request-id-not-uuid", "watch", {"requestId": "retry-1"}),
    bad("request-id-number", "search", {"requestId": 12345}),
    # Timestamps: an offset is required, and the instant must be a real one in range.
    bad("timestamp-naive", "watch", {"clientTimestamp": "2025-01-01T12:00:00.123"}),
    bad("timestamp-date-only", "watch", {"clientTimestamp": "2025-01-01"}),
    bad("timestamp-garbage", "rating", {"clientTimestamp": "yesterday at noon"}),
    bad("timestamp-year-10000", "watch", {"clientTimestamp": "10000-01-01T00:00:00Z"}),
    bad("timestamp-past-datetime-max", "watch", {"clientTimestamp": "9999-12-31T23:59:59-14:00"}),
    bad("timestamp-before-year-1", "watch", {"clientTimestamp": "0001-01-01T00:00:00+14:00"}),
    bad("timestamp-before-1970", "favorite", {"clientTimestamp": "1969-12-31T23:59:59Z"}),
    bad("timestamp-year-2100", "search", {"clientTimestamp": "2100-01-01T00:00:00Z"}),
    bad("timestamp-offset-24h", "watch", {"clientTimestamp": "2025-01-01T12:00:00+24:00"}),
    bad("timestamp-february-30", "watch", {"clientTimestamp": "2025-02-30T12:00:00Z"}),
    # Values out of range.
    bad("rating-0", "rating", {"metadata.rating": 0}),
    bad("rating-5.5", "rating", {"metadata.rating": 5.5}),
    bad("rating-negative", "rating", {"metadata.rating": -1}),
    bad("previous-rating-0.4", "rating", {"metadata.previousRating": 0.4}),
    bad("progress-percent-negative", "watch", {"metadata.progressPercent": -1}),
    bad("progress-percent-101", "watch", {"metadata.progressPercent": 101}),
    bad("watch-duration-negative", "watch", {"metadata.watchDuration": -5}),
    bad("watch-duration-2**31", "watch", {"metadata.watchDuration": 2**31}),
    bad("watch-duration-fraction", "watch", {"metadata.watchDuration": 12.5}),
    bad("results-count-negative", "search", {"metadata.resultsCount": -1}),
    # NaN and Infinity are not JSON, but Python's and Jackson's lenient writers produce them.
    bad_raw("progress-percent-nan", "watch", {"metadata.progressPercent": float("nan")}),
    bad_raw("watch-duration-infinity", "watch", {"metadata.watchDuration": float("inf")}),
    bad_raw("rating-minus-infinity", "rating", {"metadata.rating": float("-inf")}),
    bad_raw("filters-nan", "search", _filters({"minYear": float("nan")})),
    # Per-type rules.
    bad("favorite-action-unknown", "favorite", {"metadata.action": "toggle"}),
    bad("search-without-query", "search", {"metadata.query": _DROP}),
    bad("search-query-null", "search", {"metadata.query": None}),
    bad("search-query-empty", "search", {"metadata.query": ""}),
    bad("search-query-blank", "search", {"metadata.query": " \t\n "}),
    bad("search-metadata-null", "search", {"metadata": None}),
    bad("search-without-metadata", "search", {"metadata": _DROP}),
    bad("watch-without-movie-id", "watch", {"movieId": _DROP}),
    bad("watch-movie-id-null", "watch", {"movieId": None}),
    bad("rating-without-user-id", "rating", {"userId": _DROP}),
    bad("favorite-user-id-null", "favorite", {"userId": None}),
    # Strings the columns or the caller cannot take.
    bad("device-65-chars", "watch", {"metadata.device": "d" * 65}),
    bad("query-513-chars", "search", {"metadata.query": "q" * 513}),
    bad("session-id-129-chars", "watch", {"metadata.sessionId": "s" * 129}),
    bad("device-nul", "watch", {"metadata.device": "we\x00b"}),
    bad("query-nul", "search", {"metadata.query": "star\x00wars"}),
    bad("filters-key-nul", "search", _filters({"gen\x00re": "drama"})),
    bad_raw("device-lone-surrogate", "watch", {"metadata.device": "web\ud800"}),
    bad_raw("query-lone-surrogate", "search", {"metadata.query": "\ud800"}),
    bad_raw("filters-lone-surrogate", "search", _filters({"genre": "\udfff"})),
    # A search's free-form filters are bounded.
    bad("filters-too-deep", "search", _filters(_nested(6))),
    bad("filters-too-many-keys", "search", _filters({f"k{i}": i for i in range(101)})),
    bad("filters-too-many-items", "search", _filters({"genres": list(range(101))})),
    bad("filters-string-too-long", "search", _filters({"genre": "g" * 513})),
    bad("filters-int-beyond-64-bits", "search", _filters({"minYear": 2**64})),
    bad("filters-not-an-object", "search", _filters(["drama"])),
    # Size limits: 64 KiB per single event, 16 MiB per batch, with or without Content-Length.
    bad_call("single-over-64KiB", raw_body(WATCH, _oversized_single, "application/json"), 413),
    bad_call("batch-over-16MiB", raw_body(BATCH, _oversized_batch, "application/json"), 413),
    bad_call("single-streamed-over-64KiB", streamed(WATCH, SINGLE_LIMIT + 1024, 8 * 1024), 413),
    bad_call("batch-streamed-over-16MiB", streamed(BATCH, BATCH_LIMIT + 1024, 1024 * 1024), 413),
    # Not JSON.
    bad_call(
        "content-type-text-plain",
        raw_body(WATCH, lambda rid: json.dumps(_event("watch", rid)), "text/plain"),
        415,
    ),
    bad_call(
        "content-type-form",
        lambda rid: Call(WATCH, kwargs={"data": {"requestId": rid, "userId": new_id()}}),
        415,
    ),
    bad_call(
        "content-type-missing",
        raw_body(WATCH, lambda rid: json.dumps(_event("watch", rid)), None),
        415,
    ),
    bad_call(
        "content-type-xml",
        raw_body(SEARCH, lambda rid: f"<event><requestId>{rid}</requestId></event>", "text/xml"),
        415,
    ),
    bad_call(
        "invalid-json",
        raw_body(WATCH, lambda rid: json.dumps(_event("watch", rid))[:-20], "application/json"),
        422,
    ),
    bad_call("empty-body", raw_body(WATCH, lambda rid: b"", "application/json"), 422),
    bad_call(
        "body-not-utf8",
        raw_body(
            WATCH,
            lambda rid: json.dumps(
                _event("watch", rid, {"metadata.device": "tél"}), ensure_ascii=False
            ).encode("latin-1"),
            "application/json",
        ),
        422,
    ),
    bad_call(
        "json-nested-30000-deep",
        raw_body(WATCH, lambda rid: "[" * 30_000 + "]" * 30_000, "application/json"),
        422,
    ),
    bad_call(
        "json-integer-5000-digits",
        raw_body(
            WATCH,
            lambda rid: json.dumps(_event("watch", rid)).replace("1200", "9" * 5000),
            "application/json",
        ),
        422,
    ),
    # The batch envelope.
    bad_call("batch-events-string", json_body(BATCH, lambda rid: {"events": "x"}), 422),
    bad_call("batch-events-null", json_body(BATCH, lambda rid: {"events": None}), 422),
    bad_call("batch-events-missing", json_body(BATCH, lambda rid: {"items": []}), 422),
    bad_call("batch-body-list", json_body(BATCH, lambda rid: _batch_of(2)(rid)["events"]), 422),
    bad_call("batch-1001-events", json_body(BATCH, _batch_of(1001)), 422),
    # Routing: still the error shape.
    bad_call("unknown-route", json_body("/api/v1/events/purchase", _batch_of(1)), 404),
    bad_call("unknown-route-unprefixed", json_body("/events/purchase", _batch_of(1)), 404),
    bad_call("wrong-method-get", lambda rid: Call(WATCH, method="GET"), 405),
    bad_call(
        "wrong-method-put",
        lambda rid: Call(_route("rating"), method="PUT", kwargs={"json": _event("rating", rid)}),
        405,
    ),
]


async def _rows(service: Service, request_id: str | None = None) -> int:
    query = select(func.count()).select_from(raw_events)
    if request_id is not None:
        query = query.where(raw_events.c.request_id == uuid.UUID(request_id))
    async with service.runtime.database.transaction() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    """One embedded app for the whole table. Every case is refused before storage, whatever the
    mode (a case the validation let through would be stored, a 200, in either mode), so running
    the table once is enough; the acceptance tests below run in both modes."""
    settings = embedded_settings(tmp_path_factory.mktemp("bad-input"))
    async with run_service(settings) as running:
        yield running


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("build", "status"), CASES)
async def test_bad_input_is_refused_in_the_error_shape(
    embedded_service: Service, build: Build, status: int
) -> None:
    service = embedded_service
    request_id = new_id()
    call = build(request_id)
    stored_before = await _rows(service)

    response = await service.client.request(call.method, call.path, **call.kwargs)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_error_shape(response.json())
    if call.chunked:  # the limit held while reading, not by the Content-Length check
        assert "content-length" not in response.request.headers
    assert await _rows(service, request_id) == 0
    assert await _rows(service) == stored_before


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 35
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


# --- what must be accepted --------------------------------------------------------------------
# Spring's Jackson writes every absent value as an explicit null.
ALL_NULL_METADATA = {
    "watch": {
        "watchDuration": None,
        "device": None,
        "quality": None,
        "sessionId": None,
        "progressPercent": None,
    },
    "search": {"query": "space opera", "resultsCount": None, "filters": None, "sessionId": None},
    "rating": {"rating": None, "previousRating": None},
    "favorite": {"action": None, "listId": None},
}


def _all_null(event_type: str, nullable_metadata: bool) -> dict[str, Any]:
    metadata: Any = ALL_NULL_METADATA[event_type]
    if nullable_metadata and event_type != "search":  # a search needs its query
        metadata = None
    return {
        "requestId": None,
        "userId": new_id(),
        "movieId": None if event_type == "search" else new_id(),
        "clientTimestamp": None,
        "metadata": metadata,
    }


@pytest.mark.parametrize("nullable_metadata", [True, False], ids=["metadata-null", "keys-null"])
@pytest.mark.parametrize("event_type", ["watch", "search", "rating", "favorite"])
async def test_explicit_nulls_everywhere_allowed_are_accepted(
    service: Service, event_type: str, nullable_metadata: bool
) -> None:
    response = await service.client.post(
        _route(event_type), json=_all_null(event_type, nullable_metadata)
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert_event_response(answer)
    assert answer["status"] == "accepted"
    assert await _rows(service, answer["requestId"]) == 1


async def test_unknown_keys_are_ignored(service: Service) -> None:
    body = event_payload("watch")
    body |= {"type": "watch", "eventVersion": 3, "trace": {"spanId": "abc", "tags": [1, 2]}}
    body["metadata"] = {**body["metadata"], "audioLanguage": "fr", "subtitles": None}

    single = await service.client.post(_route("watch"), json=body)
    item = event_payload("rating", with_type=True) | {"source": "android", "experiment": None}
    batch = await service.client.post(BATCH, json={"events": [item], "clientVersion": "2.1"})

    assert single.status_code == 200, single.text
    assert_event_response(single.json())
    assert await _rows(service, body["requestId"]) == 1
    assert batch.status_code == 200, batch.text
    assert batch.json()["accepted"] == 1
    assert await _rows(service, item["requestId"]) == 1
