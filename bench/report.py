"""What the bench scripts share to report: their section of docs/benchmarks.md, the machine
they ran on, percentiles, and py-spy (speedscope) profile summaries.

Imported as `report` by the scripts of bench/ (run as `.venv/bin/python bench/X.py`, so bench/
is on sys.path; each script also inserts it itself, for imports from elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")
DOC_HEADER = (
    "# Benchmarks\n\n"
    "Numbers written by the commands in `bench/`. The machines are shared and noisy: only ratios "
    "measured in the same run compare, and absolute numbers move by a factor of two between "
    "runs.\n"
)


# --------------------------------------------------------------------------------------------
# The section of docs/benchmarks.md
# --------------------------------------------------------------------------------------------
def markers(name: str) -> tuple[str, str]:
    """The start and end markers of a script's section: `<!-- bench:NAME:start -->`, ..."""
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def write_section(path: Path, section: str, start_marker: str, end_marker: str) -> None:
    """Replace what stands between the markers in `path` (the markers included) by `section`;
    append it when the file has no markers; create the file with DOC_HEADER if missing."""
    if not path.is_absolute():
        path = ROOT / path
    text = path.read_text() if path.exists() else DOC_HEADER
    start, end = text.find(start_marker), text.find(end_marker)
    if start != -1 and end > start:
        text = text[:start] + section.rstrip("\n") + text[end + len(end_marker) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    print(f"[bench] wrote the section to {path}", file=sys.stderr)


@dataclass
class Run:
    """When and how a benchmark ran: the first lines of its section."""

    script: str
    """The script as run from the repository's root: bench/ingest.py, ..."""
    argv: list[str]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_start: str = field(default_factory=lambda: loadavg())
    load_end: str = ""

    @classmethod
    def of(cls, script: str, argv: list[str] | None) -> Run:
        return cls(script, sys.argv[1:] if argv is None else argv)

    @property
    def command(self) -> str:
        return shlex.join([".venv/bin/python", self.script, *self.argv])

    def stamp(self, kind: str) -> str:
        """A directory name for the run's logs: KIND-<start time>."""
        return f"{kind}-{self.started:%Y%m%dT%H%M%S}"

    def done(self) -> None:
        self.load_end = loadavg()

    def head(
        self, start_marker: str, title: str, *, ram: bool = False, machine_extra: str = ""
    ) -> list[str]:
        """The section's start marker and title, then the date, the machine and its load
        average (at start and at end), the commit and the command."""
        return [
            start_marker,
            f"## {title}",
            "",
            f"- Date: {self.started:%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine(ram=ram)}; load average {self.load_start} at start, "
            f"{self.load_end} at end" + machine_extra,
            f"- Commit: {git_commit()}",
            f"- Command: `{self.command}`",
        ]


def close_section(lines: list[str], notes: Sequence[str], end_marker: str) -> str:
    """The section's text: its lines, the notes as a list, the end marker."""
    if notes:
        lines = [*lines, "", *(f"- {note}" for note in notes)]
    return "\n".join([*lines, "", end_marker]) + "\n"


def publish_hotspots(hotspots: str, directory: Path) -> None:
    """Print a profile summary and keep it as DIRECTORY/hotspots.md."""
    hotspots = hotspots.strip()
    if hotspots:
        print(hotspots)
        (directory / "hotspots.md").write_text(hotspots + "\n")


def publish(section: str, write: Path | None, start_marker: str, end_marker: str) -> None:
    """Print the section; with --write, also put it into that file."""
    print(section)
    if write is not None:
        write_section(write, section, start_marker, end_marker)


def add_store_args(parser: argparse.ArgumentParser) -> None:
    """--database-url and --redis-url (BENCH_DATABASE_URL / BENCH_REDIS_URL, else the local
    test services)."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )


# --------------------------------------------------------------------------------------------
# The machine and the commit
# --------------------------------------------------------------------------------------------
def meminfo_kb(key: str) -> int:
    """A kB field of /proc/meminfo (MemTotal, ...), 0 when unreadable."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def machine(ram: bool = False) -> str:
    """`2 CPUs (affinity), <model name>[, 8 GiB RAM]`: the CPUs this process may run on."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    text = f"{len(os.sched_getaffinity(0))} CPUs (affinity), {model}"
    if ram:
        text += f", {meminfo_kb('MemTotal') / 1024**2:.0f} GiB RAM"
    return text


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def git_commit() -> str:
    """The short HEAD commit, flagged when src/ has uncommitted changes."""

    def git(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=ROOT, check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    if git("diff", "--quiet", "HEAD", "--", "src").returncode != 0:
        commit += " (+ uncommitted changes in src/)"
    return commit


RELEASES = {"v0.1.0": "af8b24d4ab1534ccb736e5f5ccdf9726e32ccd94"}
"""The release tags the A/B scripts compare with, for clones that carry no tags."""


def export_tree(revision: str, folder: Path, paths: Sequence[str]) -> Path:
    """``paths`` of ``revision`` (a commit, or a tag of RELEASES even in a clone without tags)
    exported under ``folder``/base, for a benchmark that runs an earlier commit's own code."""
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if known.returncode != 0 and revision in RELEASES:
        revision = RELEASES[revision]
    archive = folder / "base.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", f"--output={archive}", revision, *paths],
        cwd=ROOT,
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "base", filter="data")
    return folder / "base"


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (nan when empty)."""
    if not ordered:
        return math.nan
    rank = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


# --------------------------------------------------------------------------------------------
# py-spy profiles (speedscope files)
# --------------------------------------------------------------------------------------------
@dataclass
class ProfileCounts:
    """Busy samples of a py-spy speedscope file."""

    total: int
    own: Counter[str]
    """Self samples per leaf frame ("function (file:line)")."""
    inclusive: Counter[str]
    """Inclusive samples per function of src/interaction_recommender."""
    groups: Counter[str]
    """Inclusive samples per group of files (a sample counts once per group)."""
    threads: Counter[str]
    """Samples of the main thread and of the other threads."""


def profile_counts(path: Path, groups: Mapping[str, Sequence[str]]) -> ProfileCounts:
    """Count the busy samples of a py-spy speedscope file.

    py-spy already drops idle samples of the event loop; worker threads (AnyIO's, which run sync
    dependencies) count as busy while they wait on their queue, so samples whose leaf is a
    threading wait are dropped here too. `groups`: a label per list of file-path fragments."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    files = [str(frame.get("file", "")) for frame in frames]
    self_n: Counter[int] = Counter()
    inclusive: Counter[str] = Counter()
    group_n: Counter[str] = Counter()
    threads: Counter[str] = Counter()

    def name(index: int) -> str:
        frame, file = frames[index], files[index]
        for marker in ("site-packages/", "/src/"):
            if marker in file:
                file = file.split(marker, 1)[1]
                break
        else:
            file = _STDLIB.sub("", file)
        return f"{frame['name']} ({file}:{frame.get('line', '?')})"

    for profile in data["profiles"]:
        thread = "the main thread" if "MainThread" in profile["name"] else "worker threads"
        for stack in profile["samples"]:
            leaf = stack[-1] if stack else None
            if leaf is None or (
                files[leaf].endswith("threading.py") and frames[leaf]["name"].endswith("wait")
            ):
                continue
            threads[thread] += 1
            self_n[leaf] += 1
            inclusive.update(
                {
                    f"{frames[i]['name']} ({files[i].split('interaction_recommender/', 1)[1]})"
                    for i in stack
                    if "/interaction_recommender/" in files[i]
                }
            )
            group_n.update(
                group
                for group, fragments in groups.items()
                if any(f in files[i] for i in stack for f in fragments)
            )
    own: Counter[str] = Counter()
    for index, n in self_n.items():
        own[name(index)] += n
    return ProfileCounts(sum(threads.values()) or 1, own, inclusive, group_n, threads)


def summarize_profile(
    path: Path, groups: Mapping[str, Sequence[str]], top: int, group_word: str = "group"
) -> str:
    """A py-spy speedscope file in markdown: its busy samples (per thread kind), then three
    tables: self time, inclusive time of the service's own functions, and per group."""
    counts = profile_counts(path, groups)

    def pct(n: int) -> str:
        return f"{100 * n / counts.total:5.1f}"

    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    threads = ", ".join(f"{n} in {t}" for t, n in counts.threads.most_common())
    lines = [f"py-spy profile `{shown}`: {counts.total} busy samples ({threads}).", ""]
    lines += ["Self time (leaf frames; time in C extensions counts to the calling frame):", ""]
    lines += ["| % busy samples | function |", "|---:|---|"]
    lines += [f"| {pct(n)} | `{fn}` |" for fn, n in counts.own.most_common(top)]
    lines += ["", "Inclusive time of the service's own functions (src/interaction_recommender):"]
    lines += ["", "| % busy samples | function |", "|---:|---|"]
    lines += [f"| {pct(n)} | `{fn}` |" for fn, n in counts.inclusive.most_common(top)]
    lines += ["", f"Inclusive time by {group_word} (a sample counts once per group):", ""]
    lines += [f"| % busy samples | {group_word} |", "|---:|---|"]
    lines += [f"| {pct(n)} | {group} |" for group, n in counts.groups.most_common()]
    return "\n".join(lines)
