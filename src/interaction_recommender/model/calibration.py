"""Calibrated re-ranking (Steck, "Calibrated Recommendations", RecSys 2018) of a `home` list.

The list is chosen greedily, one place at a time, to maximise

    (1 - λ) · Σ s(i)  -  λ · KL(p ‖ q̃)

- s(i): the ranker's logit standardised over the shortlist the list is chosen from (mean 0,
  standard deviation 1), so that λ means the same for every user and every model;
- p: the user's genre distribution (their recency-weighted genre affinity from the streaming
  features, negative parts left out, normalised);
- q: the list's genre distribution, each movie's unit weight split evenly over its genres (a
  movie without genres counts as the catalog's distribution: it says nothing either way);
- q̃ = (1 - alpha) · q + alpha · c, with c the catalog's genre distribution, so that the divergence
  stays finite while the list lacks one of the user's genres.

Each step adds the candidate with the largest marginal gain. log q̃ of the list with
candidate i added is log((1 - alpha) / (n + 1)) + log(S + g_i + β c), with S the chosen
movies' genre sums, g_i the candidate's genre split and β = alpha (n + 1) / (1 - alpha); the
first term is the same for every candidate, so a step costs one (candidates x genres) sum, one
log and one product, over the genres the user has (KL(p ‖ ·) ignores the others). Ties go to
the better-ranked candidate (argmax returns the first), so the result is deterministic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "SMOOTHING",
    "calibrated_order",
    "genre_distribution",
    "miscalibration",
    "split_genres",
]

SMOOTHING = 0.01
"""alpha: the catalog's share in q̃ (Steck's paper uses 0.01)."""


def genre_distribution(genre_matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The catalog's genre distribution c: each movie with genres split evenly over them."""
    counts = genre_matrix.sum(axis=1, dtype=np.float64)
    mass: npt.NDArray[np.float64] = (genre_matrix / np.maximum(counts, 1.0)[:, None]).sum(
        axis=0, dtype=np.float64
    )
    total = float(mass.sum())
    return mass / total if total > 0 else mass


def split_genres(
    genre_matrix: npt.NDArray[np.float32], catalog: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Each movie's genre distribution (rows of a 0/1 movies x genres matrix, split evenly); a
    movie without genres gets ``catalog``."""
    counts = genre_matrix.sum(axis=1, dtype=np.float64)
    rows: npt.NDArray[np.float32] = (genre_matrix / np.maximum(counts, 1.0)[:, None]).astype(
        np.float32
    )
    rows[counts == 0] = catalog
    return rows


def calibrated_order(
    logits: npt.NDArray[np.float32],
    genres: npt.NDArray[np.float32],
    target: npt.NDArray[np.float64],
    catalog: npt.NDArray[np.float64],
    k: int,
    strength: float,
    smoothing: float = SMOOTHING,
) -> npt.NDArray[np.int64]:
    """Positions of the ``k`` candidates chosen, in list order.

    ``logits``: the ranker's, one per candidate, candidates best first; ``genres``: their genre
    distributions (``split_genres``); ``target``: p, summing to 1; ``catalog``: c, positive
    wherever p is; ``strength``: λ in [0, 1]. In float32 with preallocated buffers: the step's
    log over (candidates x genres) is most of the cost."""
    n = min(k, logits.size)
    if strength <= 0.0 or n == 0:
        return np.arange(n, dtype=np.int64)
    spread = float(logits.std())
    z = (logits - logits.mean()) / (spread if spread > 1e-9 else 1.0)
    gain = ((1.0 - strength) * z).astype(np.float32)
    used = target > 0
    weighted_p = (strength * target[used]).astype(np.float32)
    rows = np.ascontiguousarray(genres[:, used], dtype=np.float32)
    # β c per step; the chosen rows are added to ``base`` as they are picked (S + β c).
    step_c = (smoothing / (1.0 - smoothing) * np.maximum(catalog[used], 1e-12)).astype(np.float32)
    base = step_c.copy()
    logs = np.empty_like(rows)
    value = np.empty(rows.shape[0], dtype=np.float32)
    chosen = np.empty(n, dtype=np.int64)
    for step in range(n):
        np.add(rows, base, out=logs)
        np.log(logs, out=logs)
        np.dot(logs, weighted_p, out=value)
        value += gain
        best = int(value.argmax())
        chosen[step] = best
        gain[best] = -np.inf  # taken: -inf + a finite divergence stays -inf
        base += rows[best]
        base += step_c
    return chosen


def miscalibration(
    target: npt.NDArray[np.float64],
    genres: npt.NDArray[np.float32],
    catalog: npt.NDArray[np.float64],
    smoothing: float = SMOOTHING,
) -> float:
    """KL(p ‖ q̃) of a list whose movies' genre distributions are the rows of ``genres``."""
    used = target > 0
    if not used.any() or genres.shape[0] == 0:
        return 0.0
    q = genres.mean(axis=0, dtype=np.float64)
    smoothed = (1.0 - smoothing) * q[used] + smoothing * catalog[used]
    p = target[used]
    return float(np.sum(p * np.log(p / smoothed)))
