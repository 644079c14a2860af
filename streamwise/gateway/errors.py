"""The gateway's one error type: every 4xx/5xx answer is JSON ``{"error": reason}``
(:func:`streamwise.gateway.app.errors_as_json` turns an :class:`ApiError` into one)."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as JSON ``{"error": reason}`` with HTTP ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
