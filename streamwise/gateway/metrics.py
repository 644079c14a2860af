"""OpenTelemetry metrics of the HTTP gateway (issue 13, item 6: a Prometheus scrape endpoint on the scheduler
*and* the gateway), served as Prometheus text at ``GET /metrics``.

Instruments (Prometheus names: ``.`` as ``_``, the unit as a suffix, ``_total`` on counters):

- ``streamwise.gateway.responses`` (counter): HTTP responses by ``method``, ``route`` (the route's pattern, e.g.
  ``/v1/podcasts/{id}``, so ids do not make new series) and ``status``; every error counts (they are JSON).
- ``streamwise.gateway.ttff`` (histogram, s): time to first frame at the gateway, from publishing a request it
  was posted to when that request's first segment reached the gateway (what the page's viewer waits at least).
- ``streamwise.gateway.segments`` (counter) and ``streamwise.gateway.segment_bytes`` (counter, bytes): segments
  the gateway received from the bus (each once; a takeover's duplicates are dropped before).
- ``streamwise.gateway.shows`` (gauge): shows followed now; ``streamwise.gateway.viewers`` (gauge): WebSocket and
  SSE viewers connected now, by ``kind`` (``live`` / ``events``).

Exporters as the scheduler's (:func:`streamwise.telemetry.metrics.metric_readers`, ``$STREAMWISE_METRICS``):
the scrape endpoint by default, ``console``, ``otlp``, or ``off`` (then ``/metrics`` serves an empty page).
"""

from __future__ import annotations

from typing import Callable

from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

from ..telemetry.metrics import metric_readers

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    """The gateway's instruments on their own :class:`MeterProvider`; ``shows()`` gives the number of shows
    followed now. ``kinds`` overrides ``$STREAMWISE_METRICS`` (tests)."""

    def __init__(self, shows: Callable[[], int], kinds: str | None = None) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry()
        self.viewers = {"live": 0, "events": 0}
        self.provider = MeterProvider(metric_readers=metric_readers(registry=self.registry, kinds=kinds),
                                      resource=Resource.create({"service.name": "streamwise-gateway"}))
        meter = self.provider.get_meter("streamwise.gateway")
        self.responses = meter.create_counter("streamwise.gateway.responses", description="HTTP responses")
        self.ttff = meter.create_histogram("streamwise.gateway.ttff", unit="s",
                                           description="request published -> its first segment at the gateway")
        self.segments = meter.create_counter("streamwise.gateway.segments", description="segments received")
        self.segment_bytes = meter.create_counter("streamwise.gateway.segment_bytes", unit="By",
                                                  description="bytes of the segments received (moof + mdat)")
        meter.create_observable_gauge("streamwise.gateway.shows", description="shows followed now",
                                      callbacks=[lambda _options: [Observation(shows())]])
        meter.create_observable_gauge(
            "streamwise.gateway.viewers", description="WebSocket and SSE viewers connected now",
            callbacks=[lambda _options: [Observation(n, {"kind": k}) for k, n in self.viewers.items()]])

    def response(self, method: str, route: str, status: int) -> None:
        self.responses.add(1, {"method": method, "route": route, "status": str(status)})

    def segment(self, index: int, size: int, arrived_at: float, submitted_at: float | None) -> None:
        """A segment of a show reached the gateway (``arrived_at`` and ``submitted_at`` Unix s; ``submitted_at`` is
        ``None`` for a show posted elsewhere: no TTFF)."""
        self.segments.add(1)
        self.segment_bytes.add(size)
        if index == 0 and submitted_at is not None:
            self.ttff.record(max(0.0, arrived_at - submitted_at))

    def text(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def close(self) -> None:
        self.provider.shutdown()
