"""Every dependency a route reads from app.state names something the lifespan puts there: a
misspelled name would otherwise be a 500 at the first request of that route."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from interaction_recommender.runtime import Runtime

SOURCE = Path(__file__).resolve().parents[1] / "src" / "interaction_recommender"
PUBLISHED_BESIDE_THE_RUNTIME = {"health"}  # app.py builds the health checker itself


def test_every_state_dependency_names_a_published_attribute() -> None:
    published = {field.name for field in fields(Runtime)} | PUBLISHED_BESIDE_THE_RUNTIME
    named = {
        name: path.relative_to(SOURCE)
        for path in SOURCE.rglob("*.py")
        for name in re.findall(r'from_state\("(\w+)"\)', path.read_text())
    }

    assert len(named) >= 8  # every package with routes declares its own
    assert {name: where for name, where in named.items() if name not in published} == {}
