"""A served list, kept ready to send again: each recommended movie as its pre-serialised JSON
fragment (`{"movieId", "score", "reasons"}`), stamped with the features version and the model
version it was computed from. A hit joins the fragments of the movies still available; only the
envelope (`recommendationId`, `generatedAt`, `cached`) is made per response.

Binary layout (little-endian), ``LIST_FORMAT`` 2 (1 was orjson; a process that meets another
format treats the entry as a miss)::

    u8 format | u64 features version | u16 + utf-8 model version | u16 + utf-8 policy
    u16 n | n x 36 ASCII movie ids | n x f8 ranker scores (for the impression log)
    (n + 1) x u32 fragment offsets | the fragments
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

from interaction_recommender.model.engine import Recommendation

__all__ = ["LIST_FORMAT", "CachedList"]

LIST_FORMAT = 2
_HEAD = struct.Struct("<BQ")
_LENGTH = struct.Struct("<H")
_ID = 36  # the canonical text form of a UUID


@dataclass(frozen=True)
class CachedList:
    features_version: int
    model_version: str
    policy: str
    movie_ids: tuple[bytes, ...]
    """Each movie's id as its 36 ASCII characters, best first."""
    scores: npt.NDArray[np.float64]
    """The ranker's own score of each movie (the wire's `score` is in the fragments)."""
    fragments: tuple[bytes, ...]
    """Each movie's JSON object, as the response carries it."""

    @classmethod
    def of(
        cls,
        features_version: int,
        model_version: str,
        policy: str,
        items: Iterable[Recommendation],
    ) -> CachedList:
        ids, scores, fragments = [], [], []
        for item in items:
            text = str(item.movie_id)
            ids.append(text.encode())
            scores.append(item.ranker_score)
            fragments.append(
                orjson.dumps({"movieId": text, "score": item.score, "reasons": list(item.reasons)})
            )
        return cls(
            features_version,
            model_version,
            policy,
            tuple(ids),
            np.asarray(scores, dtype=np.float64),
            tuple(fragments),
        )

    def visible(self, hidden: frozenset[bytes]) -> tuple[bytes, list[tuple[str, float]]]:
        """The `recommendations` array's inside (fragments joined) and (movieId, score) per
        movie, without the movies in ``hidden`` (ids as 36 ASCII bytes)."""
        keep = [i for i, movie in enumerate(self.movie_ids) if movie not in hidden]
        if len(keep) == len(self.movie_ids):
            body = b",".join(self.fragments)
        else:
            body = b",".join(self.fragments[i] for i in keep)
        scores = self.scores.tolist()
        return body, [(self.movie_ids[i].decode(), scores[i]) for i in keep]

    def to_bytes(self) -> bytes:
        model, policy = self.model_version.encode(), self.policy.encode()
        offsets = np.cumsum([0, *(len(f) for f in self.fragments)], dtype="<u4")
        return b"".join(
            (
                _HEAD.pack(LIST_FORMAT, self.features_version),
                _LENGTH.pack(len(model)),
                model,
                _LENGTH.pack(len(policy)),
                policy,
                _LENGTH.pack(len(self.movie_ids)),
                *self.movie_ids,
                self.scores.astype("<f8").tobytes(),
                offsets.tobytes(),
                *self.fragments,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedList | None:
        """The list, or None when ``data`` is another format (an older release's entry)."""
        if not data or data[0] != LIST_FORMAT:
            return None
        try:
            _, features_version = _HEAD.unpack_from(data)
            at = _HEAD.size
            model, at = _text(data, at)
            policy, at = _text(data, at)
            (n,) = _LENGTH.unpack_from(data, at)
            at += _LENGTH.size
            ids = tuple(data[at + i * _ID : at + (i + 1) * _ID] for i in range(n))
            at += n * _ID
            scores = np.frombuffer(data, dtype="<f8", count=n, offset=at)
            at += 8 * n
            offsets = np.frombuffer(data, dtype="<u4", count=n + 1, offset=at).tolist()
            at += 4 * (n + 1)
            fragments = tuple(data[at + offsets[i] : at + offsets[i + 1]] for i in range(n))
        except (struct.error, ValueError, UnicodeDecodeError):
            return None  # damaged: a miss, recomputed and rewritten
        return cls(features_version, model, policy, ids, scores, fragments)


def _text(data: bytes, at: int) -> tuple[str, int]:
    (length,) = _LENGTH.unpack_from(data, at)
    at += _LENGTH.size
    return data[at : at + length].decode(), at + length
