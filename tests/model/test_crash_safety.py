"""A writer SIGKILLed half way leaves the previous version serving: a store write is one
transaction, a file at MODEL_PATH is replaced by a rename."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from interaction_recommender.model.bundle import write_bundle
from interaction_recommender.model.signing import SigningKeys
from interaction_recommender.model.store import CHAMPION, ModelStore
from interaction_recommender.storage import Database, migrate
from tests.fixtures.app import SIGNING_KEY, embedded_settings
from tests.fixtures.model import fit_sample_model
from tests.fixtures.services import pg_base_url

KEYS = SigningKeys.parse(SIGNING_KEY)
REPOSITORY = Path(__file__).resolve().parents[2]

# Half a store write: a 3 MiB version and the champion moved to it, in one transaction that is
# still open when the process is killed.
_HALF_A_STORE_WRITE = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path
from interaction_recommender.model.repository import ModelRepository
from interaction_recommender.storage import Database
from tests.fixtures.app import embedded_settings
from tests.fixtures.services import pg_base_url

async def main() -> None:
    folder = Path(sys.argv[2])
    settings = embedded_settings(folder, database_url=pg_base_url(), database_schema=sys.argv[1])
    database = Database(settings)
    async with database.transaction() as conn:
        repository = ModelRepository(conn)
        now = datetime.now(UTC)
        await repository.add_version(
            "half", b"x" * (3 << 20), {}, source="train", trained_for="champion", now=now
        )
        await repository.move_name("champion", "half", reason="train", now=now)
        print("written, not committed", flush=True)
        await asyncio.sleep(120)

asyncio.run(main())
"""

# Half a file write: the new bundle is in the temporary file, the rename has not happened.
_HALF_A_FILE_WRITE = """
import os, sys, time
from pathlib import Path
from interaction_recommender.model import bundle

def slow_replace(source, target):
    print("written, not renamed", flush=True)
    time.sleep(120)

bundle.os.replace = slow_replace
bundle.save_bundle_file(b"new bytes " * 100_000, Path(sys.argv[1]))
"""


async def _run_until(script: str, marker: str, *argv: str) -> None:
    """Start ``script``, wait for it to print ``marker``, then SIGKILL it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *argv,
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert marker in line.decode(), line.decode()
    process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL


async def test_a_store_write_killed_half_way_leaves_the_previous_version(
    tmp_path: Path, pg_schema: str
) -> None:
    settings = embedded_settings(tmp_path, database_url=pg_base_url(), database_schema=pg_schema)
    database = Database(settings)
    try:
        await migrate(database)
        store = ModelStore(database, KEYS)
        await store.add(write_bundle(fit_sample_model("v1"), KEYS), source="train")

        await _run_until(
            _HALF_A_STORE_WRITE, "written, not committed", pg_schema, str(tmp_path / "writer")
        )

        assert (await store.names())[CHAMPION].version == "v1"
        assert [v.version for v in await store.versions()] == ["v1"]
        model, _ = await store.load("v1")  # still whole and verified
        assert model.version == "v1"
        async with database.engine.connect() as conn:
            chunks = text("SELECT count(*) FROM model_chunks WHERE version = 'half'")
            assert (await conn.execute(chunks)).scalar_one() == 0
    finally:
        await database.dispose()


@pytest.mark.parametrize("existing", [True, False])
async def test_a_file_write_killed_half_way_leaves_the_previous_file(
    tmp_path: Path, existing: bool
) -> None:
    path = tmp_path / "models" / "recommender.pkl"
    path.parent.mkdir()
    if existing:
        path.write_bytes(b"the previous bundle")

    await _run_until(_HALF_A_FILE_WRITE, "written, not renamed", str(path))

    # the old file whole, or no file: never a part of the new one
    assert (path.read_bytes() == b"the previous bundle") if existing else not path.exists()
