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

:func:`demand` is pure (ready work, instance views, pools, clock in);
:class:`streamwise.service.demand.DemandCollector`
exports it with prometheus-client, computed at each scrape from a scheduler's state; the
simulator replays the same rule (:mod:`streamwise.sim.autoscale`). This module is pure (the core):
the scheduler side is :mod:`streamwise.service.demand`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Sequence

from .placement import InstanceView

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
