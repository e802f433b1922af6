"""`recommender model upgrade`, the deploy step before a release with newer feature semantics:
it leaves a current model alone and trains one when the model at MODEL_PATH is older."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import orjson

from interaction_recommender.model.arrays import FEATURE_SEMANTICS
from interaction_recommender.model.artifact import manifest_path, read_manifest
from tests.fixtures.model import copy_model
from tests.fixtures.services import pg_base_url


async def _upgrade(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interaction_recommender.cli",
        "model",
        "upgrade",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_current_model_is_left_alone(tmp_path: Path, sample_model: Path) -> None:
    model = copy_model(sample_model, tmp_path / "models")
    before = model.read_bytes()
    env = {**os.environ, "MODEL_PATH": str(model), "DATA_DIR": str(tmp_path / "var")}

    code, output = await _upgrade(env)

    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1]) == {
        "status": "current",
        "featureSemantics": FEATURE_SEMANTICS,
    }
    assert model.read_bytes() == before


async def test_an_older_model_is_replaced_by_one_trained_on_the_stored_events(
    tmp_path: Path, sample_model: Path, pg_schema: str
) -> None:
    model = copy_model(sample_model, tmp_path / "models")
    manifest = orjson.loads(manifest_path(model).read_bytes())
    manifest["featureSemantics"] = FEATURE_SEMANTICS - 1  # as an older release wrote it
    manifest_path(model).write_bytes(orjson.dumps(manifest))
    env = {
        **os.environ,
        "MODEL_PATH": str(model),
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": pg_base_url(),
        "DATABASE_SCHEMA": pg_schema,
        "AUTO_MIGRATE": "true",
    }
    world = tmp_path / "world.jsonl"
    generate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interaction_recommender.cli",
        *("demo", "generate", "--out", str(world), "--users", "300", "--movies", "80"),
        env=env,
    )
    assert await generate.wait() == 0
    for command in (["migrate"], ["demo", "load", str(world)]):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "interaction_recommender.cli", *command, env=env
        )
        assert await asyncio.wait_for(process.wait(), 300) == 0

    code, output = await _upgrade(env)

    assert code == 0, output
    upgraded = read_manifest(model)
    assert upgraded["featureSemantics"] == FEATURE_SEMANTICS
    assert upgraded["version"] != manifest["version"]
    assert upgraded["counts"]["events"] > 0
