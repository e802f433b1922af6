"""HMAC-SHA256 signatures of model bundles (model/bundle.py).

A bundle is trusted because a key the service holds signed it, not because of where it lies:
anyone who can write the model directory or the model store but holds no key cannot make a
process load what they wrote.

Keys come from MODEL_SIGNING_KEYS, a comma-separated list: the first signs, every one verifies
(rotation: put the new key first, keep the old one until every kept version is signed by the
new one or removed). Without it, the key is generated once and shared: under DATA_DIR in the
embedded mode, in the database by `recommender migrate` otherwise (model/keys.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interaction_recommender.settings import MIN_SIGNING_KEY_LENGTH

__all__ = ["ALGORITHM", "MIN_KEY_LENGTH", "SigningKeys", "generate_key"]

ALGORITHM = "HMAC-SHA256"
MIN_KEY_LENGTH = MIN_SIGNING_KEY_LENGTH


def generate_key() -> str:
    """A new random key (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def key_id(key: str) -> str:
    """A short, public name of a key: which key signed, without revealing it."""
    return hashlib.sha256(b"interaction-recommender key id\0" + key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKeys:
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("at least one signing key is needed")
        short = [i for i, k in enumerate(self.keys) if len(k) < MIN_KEY_LENGTH]
        if short:
            raise ValueError(
                f"signing keys must have at least {MIN_KEY_LENGTH} characters "
                f"(key {short[0] + 1} of {len(self.keys)} has fewer)"
            )

    @classmethod
    def parse(cls, text: str | Sequence[str]) -> SigningKeys:
        """MODEL_SIGNING_KEYS: comma-separated (surrounding spaces ignored), or a list."""
        parts = text.split(",") if isinstance(text, str) else list(text)
        return cls(tuple(p.strip() for p in parts if p.strip()))

    @property
    def signing_key_id(self) -> str:
        return key_id(self.keys[0])

    def sign(self, payload: bytes) -> dict[str, str]:
        """The signature of ``payload`` with the first key."""
        digest = hmac.new(self.keys[0].encode(), payload, hashlib.sha256).hexdigest()
        return {"algorithm": ALGORITHM, "keyId": self.signing_key_id, "value": digest}

    def verify(self, payload: bytes, signature: Mapping[str, Any] | None) -> bool:
        """Whether one of the keys signed ``payload`` (constant-time comparison)."""
        if not isinstance(signature, Mapping) or signature.get("algorithm") != ALGORITHM:
            return False
        value = signature.get("value")
        if not isinstance(value, str):
            return False
        for key in self.keys:
            expected = hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, value):
                return True
        return False
