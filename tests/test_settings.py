"""Settings: embedded by default, each real service selected by its own variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from interaction_recommender.settings import Settings


def test_nothing_set_is_the_embedded_mode() -> None:
    settings = Settings()

    assert settings.is_sqlite
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("/var/recommender.db")
    assert settings.redis_url is None
    assert not settings.enable_kafka
    assert settings.migrate_on_start
    assert settings.effective_model_path == Path("var/models/recommender.pkl")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_each_service_is_selected_independently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:admin@db:5432/interaction_db")
    settings = Settings()

    assert settings.database_url == "postgresql+asyncpg://admin:admin@db:5432/interaction_db"
    assert not settings.is_sqlite
    assert not settings.migrate_on_start  # production migrates as its own step
    assert settings.redis_url is None
    assert not settings.enable_kafka

    monkeypatch.setenv("ENABLE_KAFKA", "true")
    monkeypatch.setenv("REDIS_URL", "")
    settings = Settings()
    assert settings.enable_kafka
    assert settings.redis_url is None


def test_unknown_database_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(database_url="mysql://root@localhost/db")


def test_api_tokens_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKENS", "first-token-0123456789, second-token-0123456789")

    assert Settings().api_tokens == ["first-token-0123456789", "second-token-0123456789"]
