"""URL helpers of the client: a path segment is quoted so that an id can never change the
route it names, and a URL shown in a message or a `repr` carries no credentials and no query.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def _segment(value: str) -> str:
    return quote(str(value), safe=":")


def _safe_url(url: str) -> str:
    """The URL without credentials or query (nothing secret ends up in a message)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
