"""OpenTelemetry metrics of the schedulers (issue 13, item 6).

Instruments (all with the OpenTelemetry SDK; names are what Prometheus shows with ``.`` as ``_``
and the unit as a suffix):

- ``streamwise.request.ttff`` (histogram, s): time to first frame as the bus sees it, from when
  the bus stored the request to when its first segment was published; ``tenant``.
- ``streamwise.task.slack`` (histogram, s): deadline minus finish of every task done in time, and
  ``streamwise.task.lateness`` (histogram, s) finish minus deadline of every late one (an
  OpenTelemetry histogram takes no negative values); ``stage``.
- ``streamwise.task.deadline_misses`` (counter): tasks that finished after their deadline; ``stage``.
- ``streamwise.segment.late`` (counter, s): seconds segments were published past their deadline
  (what a viewer who started on time stalls, at most).
- ``streamwise.cache.hits`` (counter): nodes completed from the result cache.
- ``streamwise.clip.rung`` (counter): talking-head clips by quality rung (the rung mix); ``rung``.
- ``streamwise.instance.queue`` (gauge): tasks outstanding on each live instance (this scheduler's
  and, from heartbeats, the others'); ``instance``, ``stage``, ``model``, ``hardware``.
- ``streamwise.instance.utilisation`` (gauge, 0-1): outstanding tasks over the instance's cap.

Exporters: ``$STREAMWISE_METRICS``, a comma-separated list of ``prometheus`` (the scrape endpoint:
``/metrics`` of the process's health port, ``--health-port``; the default when there is one),
``console`` and ``otlp`` (OTLP/HTTP to ``$OTEL_EXPORTER_OTLP_ENDPOINT``; needs the
``opentelemetry-exporter-otlp-proto-http`` package), or ``off``. Tests pass an in-memory reader.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

METRICS_ENV = "STREAMWISE_METRICS"


def metric_readers(*, registry=None, kinds: str | None = None) -> list[MetricReader]:
    """The readers ``$STREAMWISE_METRICS`` (or ``kinds``) asks for; ``registry``: the
    prometheus-client registry a ``prometheus`` reader fills (the health endpoint's).

    Raises:
        ValueError: an unknown exporter name.
        ImportError: ``otlp`` without its exporter package installed (the message says which).
    """
    kinds = kinds if kinds is not None else os.environ.get(METRICS_ENV, "prometheus" if registry is not None else "")
    readers: list[MetricReader] = []
    for kind in [k.strip() for k in kinds.split(",") if k.strip()]:
        if kind == "off":
            return []
        if kind == "prometheus":
            if registry is None:
                continue            # no scrape endpoint in this process (no --health-port)
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            readers.append(PrometheusMetricReader(registry=registry, scope_info_enabled=False))
        elif kind == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=10_000))
        elif kind == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            except ImportError as exc:
                raise ImportError("STREAMWISE_METRICS=otlp needs `pip install opentelemetry-exporter-otlp-proto-http`"
                                  ) from exc
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        else:
            raise ValueError(f"{METRICS_ENV}: unknown exporter {kind!r} (prometheus, console, otlp or off)")
    return readers


class SchedulerMetrics:
    """The scheduler's instruments on their own :class:`MeterProvider` (``readers`` receive them).
    ``views()``: the live instances' snapshot (:class:`streamwise.core.placement.InstanceView`)
    and ``caps()``: instance -> the most tasks it may hold, for the gauges."""

    def __init__(self, readers: Iterable[MetricReader], views: Callable[[], list], caps: Callable[[], dict],
                 service: str = "streamwise-scheduler") -> None:
        self.provider = MeterProvider(metric_readers=list(readers),
                                      resource=Resource.create({"service.name": service}))
        m = self.provider.get_meter("streamwise.scheduler")
        self.ttff = m.create_histogram("streamwise.request.ttff", unit="s",
                                       description="time to first frame: bus arrival to first segment published")
        self.slack = m.create_histogram("streamwise.task.slack", unit="s",
                                        description="deadline minus finish of a task done in time")
        self.lateness = m.create_histogram("streamwise.task.lateness", unit="s",
                                           description="finish minus deadline of a task done late")
        self.misses = m.create_counter("streamwise.task.deadline_misses", description="tasks finished past their deadline")
        self.late = m.create_counter("streamwise.segment.late", unit="s",
                                     description="seconds segments were published past their deadline")
        self.cache_hits = m.create_counter("streamwise.cache.hits", description="nodes completed from the result cache")
        self.rungs = m.create_counter("streamwise.clip.rung", description="talking-head clips by quality rung")
        self._views, self._caps = views, caps
        m.create_observable_gauge("streamwise.instance.queue", callbacks=[self._queue],
                                  description="tasks outstanding on the instance (all schedulers)")
        m.create_observable_gauge("streamwise.instance.utilisation", callbacks=[self._utilisation],
                                  description="outstanding tasks over the instance's cap (0-1)")

    def _attrs(self, v) -> dict:
        return {"instance": v.instance, "stage": v.stage, "model": v.model, "hardware": v.hardware}

    def _queue(self, options) -> list[Observation]:
        return [Observation(v.outstanding, self._attrs(v)) for v in self._views() if v.stage != "scheduler"]

    def _utilisation(self, options) -> list[Observation]:
        caps = self._caps()
        return [Observation(min(1.0, v.outstanding / max(1, caps.get(v.instance) or 1)), self._attrs(v))
                for v in self._views() if v.stage != "scheduler"]

    def task_done(self, stage: str, deadline: float, finished_at: float, *, rung: str | None = None) -> None:
        """A task's completion (its node's deadline and the worker's finish time, Unix s)."""
        slack = deadline - finished_at
        if slack >= 0:
            self.slack.record(slack, {"stage": stage})
        else:
            self.lateness.record(-slack, {"stage": stage})
            self.misses.add(1, {"stage": stage})
            if stage == "mux":
                self.late.add(-slack)
        if stage == "video" and rung:
            self.rungs.add(1, {"rung": rung})

    def first_frame(self, tenant: str, ttff_s: float) -> None:
        self.ttff.record(ttff_s, {"tenant": tenant})

    def cache_hit(self, stage: str) -> None:
        self.cache_hits.add(1, {"stage": stage})

    def shutdown(self) -> None:
        self.provider.shutdown()
