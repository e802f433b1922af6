"""What the erased-user check costs the ingest statement (issue 17: "the new per-event checks must
not cost more than 5%").

    .venv/bin/python bench/erased_check.py [--rounds 30] [--write docs/benchmarks.md]

Runs events/store_postgres.py's ingest statement straight on Postgres (asyncpg, one connection,
a fresh schema migrated to head with 10,000 erased users), in three forms, interleaved round by
round so that the machine's noise hits each alike:

- ``without``: the statement with the erased-user check taken out (what ingest cost before);
- ``per row``: a PL/pgSQL function called for every event (the first version of the check);
- ``shipped``: the statement as the code has it (one call per statement, `erased_among`).

Each round sends one statement of N fresh events (every event a new user) for N in 1, 10 and
1,000; the table gives the median microseconds per event over the rounds (the first three
rounds are warm-up) and each form's ratio to ``without``. The time is the statement's round
trip: Postgres's work plus one local network hop, the part of ingest the check can change.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/report.py

from report import Run, close_section, markers, publish

from interaction_recommender.events import store_postgres
from interaction_recommender.settings import Settings
from interaction_recommender.storage import Database, migrate

NAME = "erased-check"
DSN = "postgresql://postgres@127.0.0.1:5432/test"
SIZES = (1, 10, 1000)
WARMUP_ROUNDS = 3

SHIPPED = store_postgres._INGEST
_CTE = """erased AS MATERIALIZED (
    SELECT erased_among($6::uuid[], (SELECT count(*) FROM locks)) AS ids
),
"""
_FILTER = "WHERE NOT e.user_id = ANY((SELECT ids FROM erased)::uuid[])"
WITHOUT = SHIPPED.replace(_CTE, "").replace(_FILTER, "WHERE (SELECT count(*) FROM locks) >= 0")
PER_ROW = SHIPPED.replace(_CTE, "").replace(
    _FILTER, "WHERE (SELECT count(*) FROM locks) >= 0 AND NOT bench_user_is_erased(e.user_id)"
)
PER_ROW_FUNCTION = """
CREATE FUNCTION bench_user_is_erased(candidate uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM erased_users WHERE user_id = candidate);
END
$$
"""
FORMS = {"without": WITHOUT, "per row": PER_ROW, "shipped": SHIPPED}


def _arguments(size: int) -> tuple[object, ...]:
    now = datetime.now(UTC)
    users = [uuid.uuid4() for _ in range(size)]
    return (
        store_postgres.USER_LOCK_NAMESPACE,
        sorted({store_postgres.lock_key(u) for u in users}),
        [uuid.uuid4() for _ in users],
        [uuid.uuid4() for _ in users],
        ["watch"] * size,
        users,
        [uuid.uuid4() for _ in users],
        [now] * size,
        [now] * size,
        ['{"progressPercent": 42.5, "device": "web", "watchDuration": 1200}'] * size,
        "bench.interaction_events",
        now,
        [str(u) for u in users],
        [b'{"schemaVersion":1,"sequence":'] * size,
        [b',"eventType":"watch"}'] * size,
    )


async def _measure(rounds: int) -> dict[tuple[str, int], list[float]]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(DSN)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        database = Database(
            Settings(
                database_url=DSN.replace("postgresql:", "postgresql+asyncpg:", 1),
                database_schema=schema,
            )
        )
        await migrate(database)
        await database.dispose()
        await conn.execute(f"SET search_path TO {schema}")
        await conn.execute(PER_ROW_FUNCTION)
        await conn.executemany(
            "INSERT INTO erased_users (user_id, erased_at) VALUES ($1, now())",
            [(uuid.uuid4(),) for _ in range(10_000)],
        )
        timings: dict[tuple[str, int], list[float]] = {}
        for round_number in range(rounds + WARMUP_ROUNDS):
            order = list(FORMS) if round_number % 2 == 0 else list(reversed(FORMS))
            for size in SIZES:
                for form in order:
                    arguments = _arguments(size)
                    started = time.perf_counter()
                    stored = await conn.fetch(FORMS[form], *arguments)
                    took = (time.perf_counter() - started) / size * 1e6
                    assert len(stored) == size, (form, size, len(stored))
                    if round_number >= WARMUP_ROUNDS:
                        timings.setdefault((form, size), []).append(took)
        return timings
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def _section(run: Run, timings: dict[tuple[str, int], list[float]], rounds: int) -> str:
    start, end = markers(NAME)
    lines = [
        *run.head(start, "Ingest: what the erased-user check costs (bench/erased_check.py)"),
        "",
        "| Events per statement | " + " | ".join(f"{form} µs/event" for form in FORMS) + " |",
        "|---:|" + "---:|" * len(FORMS),
    ]
    for size in SIZES:
        base = statistics.median(timings["without", size])
        cells = []
        for form in FORMS:
            median = statistics.median(timings[form, size])
            cells.append(f"{median:.1f} ({median / base:.2f}x)")
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    notes = [
        f"Median over {rounds} interleaved rounds of the statement's round trip per event "
        "(Postgres's work and one local hop), ratio to the statement without the check.",
        "`shipped` is what ingest runs (one `erased_among` call per statement, after the user "
        "locks); `per row` was the first version. Single events are grouped into statements "
        "by the batcher under load, so the 10- and 1,000-event rows are the ones throughput sees.",
    ]
    return close_section(lines, notes, end)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--write", type=Path, help="Markdown file to update (docs/benchmarks.md).")
    args = parser.parse_args(argv)
    run = Run.of("bench/erased_check.py", argv)
    timings = asyncio.run(_measure(args.rounds))
    run.done()
    publish(_section(run, timings, args.rounds), args.write, *markers(NAME))


if __name__ == "__main__":
    main()
