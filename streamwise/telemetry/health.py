"""A per-process health endpoint for the worker and the scheduler (``--health-port P``), on aiohttp.

- ``GET /healthz``: 200 while the process runs and its bus connection is up, else 503 (a
  Kubernetes liveness probe: restart a process that stays cut off from the bus);
- ``GET /readyz``: 200 once the process is registered and ready (a worker: its model loaded and
  its heartbeat ``ready``; a scheduler: connected and not handing over), else 503;
- ``GET /metrics``: the Prometheus text format of ``registry`` (default: prometheus-client's
  global registry, with the process and platform collectors), e.g. the schedulers' demand signal
  (:mod:`streamwise.service.demand`).

The body of ``/healthz`` and ``/readyz`` is one line: ``ok``, or what is wrong.
"""

from __future__ import annotations

import logging
from typing import Callable

from aiohttp import web

log = logging.getLogger(__name__)

Check = Callable[[], "bool | tuple[bool, str]"]


class HealthServer:
    """The endpoint on ``host:port`` (``port`` 0: a free one, see :attr:`port` after :meth:`start`).

    ``live`` and ``ready``: callables returning ``bool`` or ``(bool, reason)``; an exception in one
    counts as failing, with its text as the reason.
    """

    def __init__(self, port: int, *, live: Check, ready: Check, registry=None, host: str = "0.0.0.0") -> None:
        self.host, self.port = host, port
        self.live, self.ready = live, ready
        self.registry = registry
        self._runner: web.AppRunner | None = None

    @staticmethod
    def _answer(check: Check) -> web.Response:
        try:
            result = check()
        except Exception as exc:   # a probe must answer, not fail
            result = (False, f"{type(exc).__name__}: {exc}")
        ok, reason = result if isinstance(result, tuple) else (bool(result), "" if result else "not ok")
        return web.Response(status=200 if ok else 503, text=("ok" if ok else reason) + "\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        body = generate_latest(self.registry or REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> "HealthServer":
        """Start serving. Raises ``OSError`` when the port is taken."""
        app = web.Application()
        async def healthz(request: web.Request) -> web.Response:
            return self._answer(self.live)

        async def readyz(request: web.Request) -> web.Response:
            return self._answer(self.ready)

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        self.port = site._server.sockets[0].getsockname()[1] if self.port == 0 else self.port
        log.info("health endpoint on %s:%d (/healthz, /readyz, /metrics)", self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_health(port: int | None, *, live: Check, ready: Check, registry=None) -> HealthServer | None:
    """A started :class:`HealthServer` on ``port``, or ``None`` when ``port`` is ``None`` (off)."""
    if port is None:
        return None
    return await HealthServer(port, live=live, ready=ready, registry=registry).start()


async def stop_health(server: HealthServer | None) -> None:
    """Stop ``server`` (``None``: nothing to do)."""
    if server is not None:
        await server.stop()
