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


def decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor("invalid cursor") from exc
