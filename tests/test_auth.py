"""Bearer tokens: optional for the API, required for admin routes, never for health/metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from interaction_recommender.settings import Settings
from tests.fixtures.app import embedded_settings, run_service
from tests.fixtures.contract import assert_error_shape
from tests.fixtures.factories import event_payload

API_TOKEN = "api-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"


@pytest.fixture
async def guarded(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = embedded_settings(tmp_path, api_tokens=API_TOKEN, admin_token=ADMIN_TOKEN)
    async with run_service(settings) as service:
        yield service.client


@pytest.mark.parametrize("path", ["/api/v1/events/watch", "/events/watch"])
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", f"Basic {API_TOKEN}", "Bearer "]
)
async def test_api_routes_refuse_missing_or_wrong_tokens(
    guarded: httpx.AsyncClient, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await guarded.post(path, json=event_payload(), headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert_error_shape(response.json())


@pytest.mark.parametrize("token", [API_TOKEN, ADMIN_TOKEN])
async def test_api_routes_accept_a_valid_token(guarded: httpx.AsyncClient, token: str) -> None:
    response = await guarded.post(
        "/events/watch", json=event_payload(), headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/health", "/api/v1/health", "/health/live", "/api/v1/health/ready", "/metrics"]
)
async def test_health_and_metrics_need_no_token(guarded: httpx.AsyncClient, path: str) -> None:
    assert (await guarded.get(path)).status_code == 200


def test_short_tokens_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(api_tokens="short")
    with pytest.raises(ValidationError):
        Settings(admin_token="short")


_ADMIN_ROUTES = [
    ("DELETE", "/api/v1/users/6e9468ca-9717-4649-98bd-04d0f2253e20"),
    ("GET", "/api/v1/admin/dlq"),
    ("POST", "/model/reload"),
    ("POST", "/api/v1/model/rollback"),
    ("GET", "/api/v1/models"),
]
_ADMIN_WHEN_SET = {"/model/reload", "/api/v1/model/rollback", "/api/v1/models"}
"""Open when ADMIN_TOKEN is unset (they take nothing from the caller); admin when it is set."""


@pytest.mark.parametrize(("method", "path"), _ADMIN_ROUTES)
@pytest.mark.parametrize(
    ("admin_token", "authorization", "status"),
    [
        (None, f"Bearer {ADMIN_TOKEN}", 403),  # admin routes refuse when ADMIN_TOKEN is unset
        (ADMIN_TOKEN, None, 401),
        (ADMIN_TOKEN, f"Bearer {API_TOKEN}", 403),
        (ADMIN_TOKEN, f"Bearer {ADMIN_TOKEN}", None),  # past the check: the route's own answer
    ],
)
async def test_admin_routes_of_the_real_app(
    tmp_path: Path,
    method: str,
    path: str,
    admin_token: str | None,
    authorization: str | None,
    status: int | None,
) -> None:
    settings = embedded_settings(tmp_path, admin_token=admin_token)
    headers = {"Authorization": authorization} if authorization else {}
    async with run_service(settings) as service:
        response = await service.client.request(method, path, headers=headers)

    if status is None or (admin_token is None and path in _ADMIN_WHEN_SET):
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == status, response.text
        assert_error_shape(response.json())


@pytest.mark.parametrize(
    "path", ["/metrics", "/api/v1/metrics", "/api/v1/docs", "/api/v1/openapi.json"]
)
async def test_docs_and_metrics_can_be_restricted_to_the_admin(tmp_path: Path, path: str) -> None:
    """RESTRICT_DOCS_AND_METRICS=true (issue 17, defect 9): the API documentation and the
    Prometheus metrics need the admin token; by default they stay open."""
    admin = "admin-token-0123456789"
    restricted = embedded_settings(tmp_path, admin_token=admin, restrict_docs_and_metrics=True)
    async with run_service(restricted) as service:
        anonymous = await service.client.get(path)
        with_token = await service.client.get(path, headers={"Authorization": f"Bearer {admin}"})
    async with run_service(embedded_settings(tmp_path / "open")) as service:
        open_by_default = await service.client.get(path)

    assert anonymous.status_code == 401
    assert with_token.status_code == 200
    assert open_by_default.status_code == 200
