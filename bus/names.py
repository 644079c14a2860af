"""Content names: the keys of the artifact store and the result cache. Pure (no connection)."""

from __future__ import annotations

import hashlib


def content_name(*parts: str | bytes) -> str:
    """A content address: sha256 over the parts (strings UTF-8), hex, 32 characters."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()[:32]
