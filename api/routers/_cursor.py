"""Opaque pagination cursors."""

from __future__ import annotations

import base64
import json
from typing import Any

from api.errors import ApiError


class BadCursor(ApiError):
    pass


def encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


MAX_INT = 2**62  # below SQL BIGINT's limit


def decode(cursor: str, *types: type) -> tuple[Any, ...]:
    """The cursor's values, checked against the shape `encode` gave them (else BadCursor)."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor("invalid cursor") from exc
    if not isinstance(value, list) or len(value) != len(types):
        raise BadCursor("invalid cursor")
    for item, expected in zip(value, types, strict=True):
        numeric = expected in (int, float) and isinstance(item, int | float)
        if isinstance(item, bool) or not (isinstance(item, expected) or numeric):
            raise BadCursor("invalid cursor")
        if numeric and abs(item) > MAX_INT:
            raise BadCursor("invalid cursor")
    return tuple(value)
