"""A deterministic synthetic world (catalog, users with planted tastes, event streams) for demos,
tests and benchmarks."""

from interaction_recommender.demo.world import (
    DEFAULT_END,
    GENRES,
    TASTES,
    DemoUser,
    World,
    generate_world,
    iter_world_lines,
    read_world,
    write_world,
)

__all__ = [
    "DEFAULT_END",
    "GENRES",
    "TASTES",
    "DemoUser",
    "World",
    "generate_world",
    "iter_world_lines",
    "read_world",
    "write_world",
]
