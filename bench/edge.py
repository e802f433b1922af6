"""What each duty of the HTTP edge costs per request, in process (no sockets, no server).

    .venv/bin/python bench/edge.py [--requests 20000] [--rounds 5] [--write docs/benchmarks.md]

One GET route answering 20 fixed items (the bare endpoint's body) is called through the ASGI
interface directly, under five stacks that add one duty at a time:
1. the route alone (FastAPI, no middleware);
2. + the edge middleware's request id, body checks, error mapping and Prometheus metrics
   (`http.EdgeMiddleware`, access log off);
3. + the access log (one JSON line per request, `logs.configure_logging`, written to
   /dev/null);
4. + bearer-token auth (`deps.require_api_token` with API_TOKENS set);
5. + the service's error handlers and orjson route class (as `app.create_app` installs them).
Per stack: the median over --rounds of the mean µs per request; a duty's cost is the difference
to the stack before it. Everything runs in one event loop (uvloop), one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Run, close_section, markers, publish

START_MARKER, END_MARKER = markers("edge")
ITEMS = [
    {
        "movieId": f"00000000-0000-4000-8000-{i:012d}",
        "score": 0.5,
        "reasons": ["popular"],
    }
    for i in range(20)
]
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a bench-only token


def build(stack: int) -> Any:
    from fastapi import APIRouter, Depends, FastAPI

    from interaction_recommender.deps import require_api_token
    from interaction_recommender.http import EdgeMiddleware, OrjsonRoute, install_error_handlers
    from interaction_recommender.settings import Settings

    app = FastAPI()
    app.state.settings = Settings(api_tokens=[TOKEN] if stack >= 4 else [])
    router = APIRouter(
        route_class=OrjsonRoute if stack >= 5 else APIRouter().route_class,
        dependencies=[Depends(require_api_token)] if stack >= 4 else [],
    )

    @router.get("/recommend/{user_id}")
    async def recommend(user_id: str) -> dict[str, Any]:
        return {"userId": user_id, "recommendations": ITEMS}

    app.include_router(router)
    if stack >= 5:
        install_error_handlers(app)
    if stack >= 2:
        app.add_middleware(
            EdgeMiddleware,
            max_body_bytes=65536,
            max_batch_body_bytes=1 << 24,
            access_log=stack >= 3,
        )
    return app


async def drive(app: Any, requests: int) -> float:
    """Mean µs per request of ``requests`` GETs through ``app``'s ASGI interface."""
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    def scope(i: int) -> dict[str, Any]:
        path = f"/recommend/user-{i}"
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "app": app,
        }

    for i in range(200):  # warm-up
        await app(scope(i), receive, send)
    started = time.perf_counter()
    for i in range(requests):
        await app(scope(i), receive, send)
    elapsed = time.perf_counter() - started
    assert set(status) == {200}, set(status)
    return elapsed / requests * 1e6


STACKS = (
    "the route alone",
    "+ request id, body checks, error mapping, metrics (EdgeMiddleware)",
    "+ access log",
    "+ bearer-token auth",
    "+ error handlers, orjson request bodies",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)
    run = Run.of("bench/edge.py", argv)

    import uvloop

    from interaction_recommender.logs import configure_logging

    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(devnull, 1)  # the access log's lines go nowhere, but are written
    try:
        configure_logging("INFO", json=True)
        means: dict[int, list[float]] = {stack: [] for stack in range(1, len(STACKS) + 1)}
        apps: dict[int, Callable[..., Any]] = {s: build(s) for s in means}
        for _ in range(args.rounds):
            for stack, app in apps.items():  # interleaved: the machine's noise hits all alike
                means[stack].append(uvloop.run(drive(app, args.requests)))
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
    run.done()
    medians = {stack: statistics.median(values) for stack, values in means.items()}
    lines = [
        *run.head(START_MARKER, "HTTP edge duties (`bench/edge.py`)"),
        f"- {args.requests:,} GETs per stack and round through the ASGI interface (no sockets), "
        f"{args.rounds} rounds interleaved; the median of the rounds' mean µs per request.",
        "",
        "| Stack | µs per request | this duty |",
        "|---|---:|---:|",
    ]
    previous = None
    for stack, name in enumerate(STACKS, start=1):
        cost = "—" if previous is None else f"{medians[stack] - previous:+,.1f}"
        lines.append(f"| {name} | {medians[stack]:,.1f} | {cost} |")
        previous = medians[stack]
    publish(close_section(lines, [], END_MARKER), args.write, START_MARKER, END_MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
