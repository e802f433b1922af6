"""SQL errors never carry the statement's parameters (a user's search text, user ids) into logs,
answers or /health (issue 17, defect 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from interaction_recommender.storage import Database
from tests.fixtures.app import backend_settings

SECRET = "what-a-user-searched-for"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_failing_statement_does_not_show_its_parameters(
    tmp_path: Path, pg_schema: str, backend: str
) -> None:
    database = Database(backend_settings(tmp_path, backend, pg_schema))
    try:
        with pytest.raises(Exception) as failure:  # noqa: PT011 - any driver error will do
            async with database.transaction() as conn:
                await conn.execute(text("SELECT * FROM no_such_table WHERE x = :q"), {"q": SECRET})
    finally:
        await database.dispose()

    assert "no_such_table" in str(failure.value)  # the error still says what failed
    assert SECRET not in str(failure.value)
