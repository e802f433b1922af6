"""Schemathesis against the app's own OpenAPI document, in-process, in the embedded mode.

Every operation gets schema-valid and schema-invalid requests (explicit examples, the coverage
phase and a bounded, derandomized fuzzing phase). Whatever arrives, the service answers without a
5xx, and every error answer is JSON in the one error shape.

How the app runs: schemathesis drives an ASGI app through its own client, on a background event
loop thread. Entering that client starts the app's lifespan once (keyed by the app object) and
keeps it running for every later request, until ``shutdown_lifespans()``. The schema has to exist
at import time (``schemathesis.pytest.from_fixture`` does not work on pytest 9), so it is built
from the document of an app that is never started, and requests go to ``_AppUnderTest``: the
module fixture plugs in a real app on a pytest temporary directory and starts its lifespan (which
creates the SQLite database) before the first case.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python import asgi as schemathesis_asgi
from starlette.types import Receive, Scope, Send

from interaction_recommender.app import create_app
from tests.fixtures.app import embedded_settings
from tests.fixtures.contract import assert_error_shape

SEED = 20_250_101
MAX_EXAMPLES = 30
OPENAPI_PATH = "/api/v1/openapi.json"


class _AppUnderTest:
    """The ASGI app schemathesis calls; it forwards to the app the module fixture started."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the running_app fixture has not started the app"
        await self.app(scope, receive, send)


_APP = _AppUnderTest()

# create_app() touches nothing on disk; only the lifespan does (and this app is never started).
# API_TOKENS stay unset: auth is not what this test is about.
_DOCUMENT = create_app(embedded_settings(Path("unused"))).openapi()

FUZZ_ADMIN_TOKEN = "fuzzing-admin-token-0123"

schema = schemathesis.openapi.from_dict(_DOCUMENT)
schema.app = _APP
schema.config.seed = SEED
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")


@pytest.fixture(scope="module")
def running_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    # With an admin token, and every case sends it: the admin routes are fuzzed too, past
    # their auth check (issue 17, defect 10).
    settings = embedded_settings(tmp_path_factory.mktemp("fuzz"), admin_token=FUZZ_ADMIN_TOKEN)
    _APP.app = create_app(settings)
    try:
        with schemathesis_asgi.get_client(_APP) as client:  # starts the lifespan, kept running
            served = client.get(OPENAPI_PATH)
        assert served.status_code == 200
        assert served.json() == _DOCUMENT, "the fuzzed document is not the one the app serves"
        yield _APP.app
    finally:
        schemathesis_asgi.shutdown_lifespans()
        _APP.app = None


@schema.parametrize()
# Not only a label: pytest 9 builds a plain item's id from its original name, which schemathesis
# sets to the bare function name, so every operation would share one id; with a parametrize each
# id carries the operation ("...[POST /api/v1/events/watch][sqlite]").
@pytest.mark.parametrize("database", ["sqlite"])
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_server_error_and_errors_have_the_shape(
    case: Any, running_app: FastAPI, database: str
) -> None:
    response = case.call(headers={"Authorization": f"Bearer {FUZZ_ADMIN_TOKEN}"})

    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    # every case carries the admin token: an auth refusal would mean the route went unfuzzed
    assert response.status_code not in (401, 403), f"{where}: {response.text}"
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), f"{where}: {content_type}"
        assert_error_shape(response.json())
