"""`recommender model ...` on the embedded mode's store: import, list, export, sign, history, gc."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from interaction_recommender.model.bundle import read_manifest, save_bundle_file, write_bundle
from tests.fixtures.app import SIGNING_KEY
from tests.fixtures.cli import recommender, succeeded
from tests.fixtures.model import fit_sample_model


async def _cli(env: dict[str, str], *argv: str) -> Any:
    """The command's JSON answer (its last line)."""
    return orjson.loads((await succeeded(env, *argv)).last_line)


async def test_import_list_export_sign_history_and_gc(tmp_path: Path, sample_model: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path / "var"), "MODEL_SIGNING_KEYS": SIGNING_KEY}

    imported = await _cli(env, "model", "import", str(sample_model))
    assert (imported["version"], imported["created"], imported["moved"]) == ("test", True, True)
    again = await _cli(env, "model", "import", str(sample_model))
    assert again["created"] is False  # idempotent by content

    # someone brings an unsigned bundle: refused until an operator signs it
    brought = tmp_path / "brought.zip"
    save_bundle_file(write_bundle(fit_sample_model("brought"), None), brought)
    refused = await recommender(env, "model", "import", str(brought), "--name", "challenger")
    assert refused.returncode == 1
    assert "not signed" in refused.output
    signed = await _cli(env, "model", "sign", str(brought))
    assert signed["path"] == str(brought)
    assert read_manifest(brought.read_bytes())["signature"]["keyId"] == signed["keyId"]
    await _cli(env, "model", "import", str(brought), "--name", "challenger")

    listed = await _cli(env, "model", "list")
    assert {n: v["version"] for n, v in listed["names"].items()} == {
        "champion": "test",
        "challenger": "brought",
    }
    exported = tmp_path / "out.zip"
    await _cli(env, "model", "export", str(exported), "--name", "challenger")
    assert exported.read_bytes() == brought.read_bytes()

    await _cli(env, "model", "import", str(brought))  # the champion moves to it
    history = await _cli(env, "model", "history")
    assert [m["version"] for m in history] == ["brought", "test"]
    rolled = await _cli(env, "model", "rollback")
    assert (rolled["previousVersion"], rolled["version"]) == ("brought", "test")
    # both versions are named: nothing to collect, even keeping no earlier version
    assert (await _cli(env, "model", "gc", "--keep", "0"))["deleted"] == []
