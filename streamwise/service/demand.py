"""The schedulers' side of the autoscaling signal (issue 14, item 2): :class:`DemandCollector`
exports :func:`streamwise.core.demand.demand` (the pure rule, see there for the definitions) over
a running scheduler's state as Prometheus gauges on its health endpoint's ``/metrics``
(``--health-port``); ``streamwise deploy render`` points KEDA at them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from ..core.demand import (DEFAULT_HORIZON_S, HORIZON_ENV, NEEDED_METRIC, POOLS_ENV, UNMET_METRIC,
                           UNSERVED_METRIC, Pool, PoolDemand, Work, demand, format_pools, parse_pools, pool_of)
from ..core.placement import InstanceView

__all__ = ["DEFAULT_HORIZON_S", "HORIZON_ENV", "NEEDED_METRIC", "POOLS_ENV", "UNMET_METRIC", "UNSERVED_METRIC",
           "DemandCollector", "Pool", "PoolDemand", "Work", "demand", "demand_registry", "format_pools",
           "parse_pools", "pool_of", "scheduler_snapshot"]


class DemandCollector:
    """A prometheus-client collector of :func:`demand`, computed at each scrape from
    ``snapshot() -> (ready works, instance views, runtime_s)``; pools from ``pools`` (default:
    ``$STREAMWISE_POOLS``) and the horizon from ``horizon_s`` (default ``$STREAMWISE_DEMAND_HORIZON_S``
    or 30 s). Register it on a :class:`prometheus_client.CollectorRegistry`."""

    def __init__(self, snapshot: Callable[[], tuple[list[Work], list[InstanceView], Callable[[Work, Pool], float]]],
                 *, pools: Sequence[Pool] | None = None, horizon_s: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.snapshot = snapshot
        self.pools = list(pools) if pools is not None else parse_pools(os.environ.get(POOLS_ENV))
        self.horizon_s = horizon_s or float(os.environ.get(HORIZON_ENV) or DEFAULT_HORIZON_S)
        self.clock = clock

    def current(self) -> dict[Pool, PoolDemand]:
        works, views, runtime = self.snapshot()
        return demand(works, views, self.pools, now=self.clock(), horizon_s=self.horizon_s, runtime_s=runtime)

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        names = ["stage", "model", "hardware", "gpus"]
        fams = {
            "unserved": GaugeMetricFamily(UNSERVED_METRIC, "Ready tasks no live instance can take", labels=names),
            "unmet_s": GaugeMetricFamily(UNMET_METRIC, "Seconds of work due within the horizon beyond what live "
                                                       "instances can finish (all waiting work with none)", labels=names),
            "needed": GaugeMetricFamily(NEEDED_METRIC, "Instances needed to finish the outstanding and due work "
                                                       "within the horizon", labels=names),
        }
        for p, d in self.current().items():
            values = [p.stage, p.model, p.hardware, str(p.gpus)]
            for attr, fam in fams.items():
                fam.add_metric(values, float(getattr(d, attr)))
        yield from fams.values()

    def describe(self):
        return []


def scheduler_snapshot(service: Any) -> tuple[list[Work], list[InstanceView], Callable[[Work, Pool], float]]:
    """What :class:`DemandCollector` needs from a running
    :class:`streamwise.service.scheduler.SchedulerService`: its pending ready nodes (as
    :class:`Work`, key ``(request id, node id)``), its instance views, and the expected runtime of
    a node on a pool (the scheduler's own estimate at the ladder's top rung; the CPU estimate when
    no profile covers the pool)."""
    from ..core.dag import NodeState

    works = []
    for rid, active in list(service.active.items()):
        for node in active.plan.dag.ready():
            if node.state is NodeState.PENDING:
                works.append(Work(node.stage, node.deadline, active.plan.required_model(node), (rid, node.node_id)))

    def runtime(w: Work, pool: Pool) -> float:
        rid, node_id = w.key
        active = service.active.get(rid)
        if active is None:
            return 0.0
        node = active.plan.dag[node_id]
        ladder = service.ladders.get(node.stage)
        view = InstanceView("", pool.stage, pool.model, 0, hardware=pool.hardware, gpus=pool.gpus)
        try:
            return service.pool.runtime_s(view, ladder.rungs[0] if ladder else None, cpu_estimate_s=node.runtime_s,
                                          duration_s=node.duration_s, ladder=ladder)
        except (KeyError, ValueError):
            return float(node.runtime_s)

    # views() without this scheduler's id: each instance's outstanding work is only what this
    # scheduler dispatched there, so that summing the metric over schedulers counts every task once
    return works, service.pool.views(), runtime


def demand_registry(service: Any):
    """A :class:`prometheus_client.CollectorRegistry` with a :class:`DemandCollector` over
    ``service`` (a running scheduler) and the process collector, for its ``/metrics``."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry()
    registry.register(DemandCollector(lambda: scheduler_snapshot(service)))
    ProcessCollector(registry=registry)
    return registry
