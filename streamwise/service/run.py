"""The scheduler process: :func:`serve` connects to the bus and runs a
:class:`~streamwise.service.scheduler.SchedulerService` with its heartbeat, its health endpoint
(``--health-port``: /healthz, /readyz, and /metrics with the demand signal and the scheduler's
OpenTelemetry metrics) and its stop signals, until told to stop (``streamwise scheduler``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os

from ..bus import registry
from ..bus.client import connect
from ..bus.messages import Heartbeat
from ..stages.runtime.lifecycle import on_stop_signals
from ..telemetry import tracing
from ..telemetry.health import start_health, stop_health
from ..telemetry.metrics import metric_readers
from .demand import demand_registry
from .scheduler import SchedulerService

log = logging.getLogger("streamwise.service.scheduler")


async def serve(url: str, *, policy: str = "edf", use_cache: bool = True, stats_path: str | None = None,
                health_port: int | None = None) -> None:
    """Connect to ``url`` and run the scheduler service until cancelled or told to stop
    (SIGTERM or SIGINT: :meth:`SchedulerService.hand_over`). ``stats_path``: write the per-task
    dispatch overhead samples (seconds, JSON) there on exit, for benchmarks. ``health_port``:
    /healthz, /readyz and the demand signal on /metrics there (None: off)."""
    tracing.setup("streamwise-scheduler")
    bus = await connect(url, name="streamwise-scheduler")
    service = SchedulerService(bus, policy=policy, use_cache=use_cache)
    heartbeat = Heartbeat(instance=service.id, stage="scheduler",
                          model="streamwise", state="ready", pid=os.getpid())

    async def beat() -> None:
        while True:
            try:
                await registry.beat(bus.instances, heartbeat)
            except Exception as exc:   # an outage: the TTL decides, the loop goes on
                log.debug("scheduler heartbeat failed: %s", exc)
            await asyncio.sleep(registry.HEARTBEAT_S)

    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if service.draining:
            service.stop()
            return
        log.warning("told to stop: handing %d active request(s) over to other schedulers", len(service.active))
        loop.create_task(service.hand_over())

    beating = asyncio.create_task(beat())
    scrape = demand_registry(service) if health_port is not None else None   # /metrics: demand + OTel metrics
    service.attach_metrics(metric_readers(registry=scrape))
    health = await start_health(health_port, live=lambda: bus.nc.is_connected,
                                ready=lambda: bus.nc.is_connected and not service.draining, registry=scrape)
    try:
        with on_stop_signals(on_signal):
            await service.run()
    finally:
        beating.cancel()
        await stop_health(health)
        if service.metrics:
            service.metrics.shutdown()
        if stats_path:
            with open(stats_path, "w") as f:
                json.dump({"overhead_s": service.overhead_s, "dispatches": service.dispatch_count}, f)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(registry.forget(bus.instances, heartbeat.instance), timeout=5.0)
        await bus.close()
