"""Where the model signing keys (model/signing.py) come from, first match wins:

1. MODEL_SIGNING_KEYS (the operator's keys; rotation: the new key first);
2. on Postgres, the key `recommender migrate` generated once and stored in the database
   (`service_secrets`), so that every replica on every host verifies what any of them signed;
3. in the embedded mode (SQLite), a key file under DATA_DIR, generated on first use.

A generated key is logged as a warning: anyone who can read the database (or DATA_DIR) can sign
a model, which is as strong as those permissions; MODEL_SIGNING_KEYS, from a secret store,
keeps the key away from the data.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import structlog

from interaction_recommender.model.repository import ModelRepository
from interaction_recommender.model.signing import SigningKeys, generate_key
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database

__all__ = ["KEY_FILE", "NoSigningKey", "ensure_stored_key", "required_signing_keys", "signing_keys"]

log = structlog.get_logger(__name__)

KEY_FILE = "model-signing.key"


async def ensure_stored_key(settings: Settings, database: Database) -> None:
    """`recommender migrate` (and a start-up that migrates): without MODEL_SIGNING_KEYS, make
    sure the database holds the shared key (generated once; concurrent runs agree on one)."""
    if settings.model_signing_keys or database.dialect != "postgresql":
        return
    async with database.transaction() as conn:
        repository = ModelRepository(conn)
        if await repository.signing_key() is not None:
            return
        await repository.store_signing_key(generate_key(), datetime.now(UTC))
    log.warning(
        "model_signing_key_generated",
        where="database",
        advice="set MODEL_SIGNING_KEYS from a secret store to keep the key out of the database",
    )


class NoSigningKey(Exception):
    """Postgres without MODEL_SIGNING_KEYS and before `recommender migrate` stored a key."""

    def __init__(self) -> None:
        super().__init__(
            "no model signing key: set MODEL_SIGNING_KEYS, or run `recommender migrate` once "
            "(it stores a generated key in the database)"
        )


async def required_signing_keys(settings: Settings, database: Database) -> SigningKeys:
    """``signing_keys``, or NoSigningKey."""
    keys = await signing_keys(settings, database)
    if keys is None:
        raise NoSigningKey()
    return keys


async def signing_keys(settings: Settings, database: Database) -> SigningKeys | None:
    """The keys this process signs and verifies with; None on Postgres when neither
    MODEL_SIGNING_KEYS is set nor `recommender migrate` has stored a key yet."""
    if settings.model_signing_keys:
        return SigningKeys.parse(settings.model_signing_keys)
    if database.dialect != "postgresql":
        return SigningKeys.parse(_key_file(settings.data_dir / KEY_FILE))
    async with database.transaction() as conn:
        stored = await ModelRepository(conn).signing_key()
    return SigningKeys.parse(stored) if stored is not None else None


def _key_file(path: Path) -> str:
    """The embedded mode's key: read, or generated and written readable by its owner only."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    log.warning("model_signing_key_generated", where=str(path))
    return key
