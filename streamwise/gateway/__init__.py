"""The HTTP gateway: ``streamwise serve`` (aiohttp) in front of the bus, and the web page it serves.

:func:`make_app` builds the application on an open :class:`~streamwise.bus.client.Bus`;
:func:`serve` runs it. The API (``POST /v1/podcasts``, status, SSE, live HLS, a WebSocket for
Media Source Extensions) is described in ``docs/gateway.md`` and by the OpenAPI document at
``/openapi.json`` (:mod:`streamwise.gateway.openapi`). What the gateway knows of a show is in
:class:`streamwise.gateway.feed.Feed`.
"""

from .app import ApiError, make_app, serve

__all__ = ["ApiError", "make_app", "serve"]
