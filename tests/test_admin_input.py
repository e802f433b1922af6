"""Bad input to the admin routes gets a 422, never a 500 (found by the OpenAPI fuzzing once it
sent the admin token: a dead-letter id past 64 bits overflowed the database driver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.app import embedded_settings, run_service
from tests.fixtures.contract import assert_error_shape

ADMIN = "admin-token-0123456789"


@pytest.mark.parametrize("ids", [[2**63], [-1], [0]])
async def test_a_dead_letter_id_out_of_range_is_a_422(tmp_path: Path, ids: list[int]) -> None:
    async with run_service(embedded_settings(tmp_path, admin_token=ADMIN)) as service:
        answer = await service.client.post(
            "/api/v1/admin/dlq/replay",
            json={"ids": ids},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )

    assert answer.status_code == 422, answer.text
    assert_error_shape(answer.json())
