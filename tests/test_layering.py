"""`make lint` checks the layering of docs/architecture.md (import-linter contracts in
pyproject.toml): the code as it is keeps every contract, and an import that breaks one fails it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = "interaction_recommender"


def _lint_copy(tmp_path: Path, *, inject: tuple[str, str] | None = None) -> str:
    """lint-imports with the repository's contracts over a copy of the package (with one line
    appended to one of its modules); returns its output, asserting nothing yet."""
    source = tmp_path / "src"
    shutil.copytree(
        REPOSITORY / "src" / PACKAGE,
        source / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    if inject is not None:
        module, line = inject
        path = source / PACKAGE / module
        path.write_text(path.read_text() + f"\n{line}\n")
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), str(REPOSITORY / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    output = _lint_copy(tmp_path)
    assert output.startswith("exit 0"), output
    assert "0 broken" in output


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "model/engine.py",
            "from interaction_recommender.recs import service as _serving  # noqa",
            "model/ is what serving and training share",
        ),
        ("wire.py", "import fastapi  # noqa", "Only the HTTP edge"),
        (
            "outbox/relay.py",
            "from interaction_recommender.feedback import impressions as _feedback  # noqa",
            "The event pipeline",
        ),
        ("model/arrays.py", "import asyncpg  # noqa", "database driver"),
        (
            "features/state.py",
            "from interaction_recommender.features import extractor as _cycle  # noqa",
            "No import cycle",
        ),
    ],
)
def test_a_broken_contract_fails_the_lint(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    output = _lint_copy(tmp_path, inject=(module, line))

    assert not output.startswith("exit 0"), output
    broken = " ".join(output[output.index("Broken contracts") :].split())  # the tool wraps lines
    assert contract in broken, output
