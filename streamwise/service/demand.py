"""The autoscaling signal: per pool (stage, model, hardware, GPUs), the demand current capacity
cannot meet (issue 14, item 2).

Lag on the task subjects cannot see demand: a task goes to an instance's own subject only after
the instance exists, so waiting work lives in the scheduler's memory and a pool at zero replicas
always shows zero lag. The schedulers therefore export what they hold:

- ``streamwise_demand_unserved_tasks``: ready tasks that no live instance can take (no instance of
  any pool that serves them is up);
- ``streamwise_demand_unmet_seconds``: the seconds of work that capacity cannot meet: all ready
  work of a pool with no live instance, else the expected seconds of ready work due within the
  next ``T`` seconds beyond the room the live instances have in that time (``T`` each, less the
  part of the horizon their outstanding work already takes, ``min(outstanding_i, T)``);
- ``streamwise_demand_instances``: the instances the pool needs for that work within ``T``:
  ``ceil((sum_i min(outstanding_i, T) + due) / T)``, at least 1 while any work is waiting. This is
  the metric KEDA scales on (``metricType: AverageValue``, threshold 1: replicas = its value,
  summed over schedulers), because a "beyond capacity" figure falls to zero as soon as capacity
  arrives and would scale the pool straight back down.

:func:`demand` is pure (ready work, instance views, pools, clock in); :class:`DemandCollector`
exports it with prometheus-client, computed at each scrape from a scheduler's state.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Sequence

from ..core.placement import InstanceView

UNSERVED_METRIC = "streamwise_demand_unserved_tasks"
UNMET_METRIC = "streamwise_demand_unmet_seconds"
NEEDED_METRIC = "streamwise_demand_instances"
#: The pools a deployment may scale, ``stage:model:hardware:gpus`` comma-separated (set by
#: ``streamwise deploy render`` on the scheduler): pools at zero replicas are known only from here.
POOLS_ENV = "STREAMWISE_POOLS"
#: The horizon T in seconds (default :data:`DEFAULT_HORIZON_S`).
HORIZON_ENV = "STREAMWISE_DEMAND_HORIZON_S"
#: 30 s: about the start-up of a CPU worker pod and the spot eviction notice; an operator with
#: slow-loading GPU models may raise it (the signal then asks for capacity earlier).
DEFAULT_HORIZON_S = 30.0


@dataclass(frozen=True, order=True)
class Pool:
    """A set of interchangeable instances: ``model`` (of ``stage``) on ``gpus`` x ``hardware``
    (``cpu``/0 for a CPU pool). One worker Deployment each."""

    stage: str
    model: str
    hardware: str = "cpu"
    gpus: int = 0

    def serves(self, stage: str, model: str | None) -> bool:
        """Whether this pool may run a node of ``stage`` that requires ``model`` (None: any)."""
        return self.stage == stage and (model is None or model == self.model)

    def labels(self) -> dict[str, str]:
        return {"stage": self.stage, "model": self.model, "hardware": self.hardware, "gpus": str(self.gpus)}


@dataclass(frozen=True)
class Work:
    """A ready node: its ``stage``, the ``model`` it requires (None: any of the stage), its absolute
    ``deadline`` (s, same clock as ``now``) and ``key`` (the caller's, passed to ``runtime_s``)."""

    stage: str
    deadline: float
    model: str | None = None
    key: Hashable = None


@dataclass(frozen=True)
class PoolDemand:
    """The signal of one pool: ``live`` accepting instances, ``unserved`` ready tasks with no live
    instance, ``queued_s`` seconds outstanding on its instances, ``due_s`` seconds of its ready work
    due within the horizon, ``unmet_s`` seconds capacity cannot meet, ``needed`` instances."""

    pool: Pool
    live: int = 0
    unserved: int = 0
    queued_s: float = 0.0
    due_s: float = 0.0
    unmet_s: float = 0.0
    needed: int = 0


def parse_pools(text: str | None) -> list[Pool]:
    """``"video:fantasytalking:h100:8,mux:pyav-fmp4:cpu:0"`` -> pools (empty text: none).

    Raises:
        ValueError: an entry that is not ``stage:model:hardware:gpus``.
    """
    out = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        bits = part.strip().split(":")
        if len(bits) != 4 or not bits[3].isdigit():
            raise ValueError(f"${POOLS_ENV}: {part!r} is not stage:model:hardware:gpus")
        out.append(Pool(bits[0], bits[1], bits[2], int(bits[3])))
    return out


def format_pools(pools: Iterable[Pool]) -> str:
    """The inverse of :func:`parse_pools`."""
    return ",".join(f"{p.stage}:{p.model}:{p.hardware}:{p.gpus}" for p in pools)


def pool_of(view: InstanceView) -> Pool:
    return Pool(view.stage, view.model, view.hardware, view.gpus)


def demand(ready: Iterable[Work], instances: Iterable[InstanceView], pools: Sequence[Pool] = (), *, now: float,
           horizon_s: float = DEFAULT_HORIZON_S, runtime_s: Callable[[Work, Pool], float]) -> dict[Pool, PoolDemand]:
    """The signal of every pool (see the module docstring).

    ``pools``: the deployable pools in order of preference (the plan's order: GPU pools before the
    CPU rung); pools of live instances not listed are appended. A ready node counts for the first
    pool that serves it and has a live instance (where placement can put it now); when none has,
    it is unserved and counts for the first pool that serves it (the one to start). A node no pool
    serves is left out. ``runtime_s(work, pool)``: expected seconds of the node on one instance of
    the pool. ``now`` and deadlines in seconds on one clock.

    Raises:
        ValueError: ``horizon_s <= 0``.
    """
    if horizon_s <= 0:
        raise ValueError(f"horizon must be > 0 s, got {horizon_s}")
    views = list(instances)
    order = list(dict.fromkeys([*pools, *sorted({pool_of(v) for v in views})]))
    live = {p: 0 for p in order}
    queued = {p: 0.0 for p in order}
    busy = {p: 0.0 for p in order}         # the part of the horizon outstanding work takes
    for v in views:
        if v.accepting:
            p = pool_of(v)
            live[p] += 1
            queued[p] += v.queued_s
            busy[p] += min(max(v.queued_s, 0.0), horizon_s)
    unserved = {p: 0 for p in order}
    due = {p: 0.0 for p in order}
    waiting = {p: 0.0 for p in order}      # all attributed ready work, due or not
    for w in ready:
        eligible = [p for p in order if p.serves(w.stage, w.model)]
        if not eligible:
            continue
        target = next((p for p in eligible if live[p] > 0), None)
        if target is None:
            target = eligible[0]
            unserved[target] += 1
        seconds = max(0.0, float(runtime_s(w, target)))
        waiting[target] += seconds
        if w.deadline <= now + horizon_s:
            due[target] += seconds
    out = {}
    for p in order:
        if live[p] == 0:
            unmet = work = waiting[p]
        else:
            work = busy[p] + due[p]
            unmet = max(0.0, due[p] - (live[p] * horizon_s - busy[p]))
        needed = math.ceil(work / horizon_s - 1e-9) if work > 0 else 0
        if unserved[p] and needed < 1:
            needed = 1
        out[p] = PoolDemand(p, live[p], unserved[p], round(queued[p], 6), round(due[p], 6), round(unmet, 6), needed)
    return out


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
