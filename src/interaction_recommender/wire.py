"""Building blocks of every wire schema: camelCase JSON, lenient about nulls and unknown keys,
strict about types (docs/contract.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "FreeText",
    "Identifier",
    "Instant",
    "JsonObject",
    "Label",
    "UtcTimestamp",
    "WireModel",
    "check_json_value",
    "check_text",
    "dumps",
    "utc_now",
]

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID):  # asyncpg's own UUID subclass, which orjson does not know
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(document: Any) -> bytes:
    """The one JSON writer for documents we build by hand: orjson, UTC datetimes with "Z"."""
    return orjson.dumps(document, option=orjson.OPT_UTC_Z, default=_json_default)


class WireModel(BaseModel):
    """camelCase on the wire (snake_case accepted as a courtesy), unknown keys ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
        ser_json_inf_nan="strings",
    )


def check_text(value: str) -> str:
    """Refuse what Postgres or UTF-8 cannot store: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no unpaired surrogates)") from None
    return value


# Bounded, storable strings.
Label = Annotated[str, StringConstraints(max_length=64), AfterValidator(check_text)]
Identifier = Annotated[str, StringConstraints(max_length=128), AfterValidator(check_text)]
FreeText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=512, strip_whitespace=True),
    AfterValidator(check_text),
]


def _utc_in_range(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past datetime.max in UTC
        raise ValueError("timestamp must be between 1970 and 2100") from None
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("timestamp must be between 1970 and 2100")
    return value


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# An instant on input: offset required (naive -> 422), up to 9 fractional digits (kept to the
# microsecond), normalised to UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_utc_in_range)]

# A timestamp on output: always UTC with a "Z" (Jackson needs an offset).
UtcTimestamp = Annotated[datetime, PlainSerializer(_iso_z, return_type=str)]

_MAX_JSON_DEPTH = 4
_MAX_JSON_ITEMS = 100
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # a Java long; orjson cannot write larger ints


def check_json_value(value: Any, depth: int = 0) -> Any:
    """Bound a free-form JSON value (a search's filters): depth, size, storable strings."""
    if depth > _MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > 512:
            raise ValueError("strings must be at most 512 characters")
        return check_text(value)
    if isinstance(value, dict):
        if len(value) > _MAX_JSON_ITEMS:
            raise ValueError(f"at most {_MAX_JSON_ITEMS} keys")
        for key, item in value.items():
            check_text(key)
            check_json_value(item, depth + 1)
    elif isinstance(value, list):
        if len(value) > _MAX_JSON_ITEMS:
            raise ValueError(f"at most {_MAX_JSON_ITEMS} items")
        for item in value:
            check_json_value(item, depth + 1)
    elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError("numbers must be finite")
    elif isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("integers must fit in 64 bits")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_value)]
