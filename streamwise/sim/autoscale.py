"""The deployment's autoscaling rule replayed in the discrete-event simulator (issue 14, item 2).

The rule is the one the rendered KEDA ScaledObjects apply (``streamwise deploy render``): per
instance class (model, GPU type, GPUs) the replicas follow :func:`streamwise.core.demand.demand`'s
``needed`` (the instances that finish the outstanding work and the ready work due within the
horizon T), between the plan's replicas and ``max_scale`` times them. Here the rule is evaluated
at most every ``period_s`` seconds, on the simulation's own events (a task done, a node ready);
an added instance serves ``start_s`` seconds after the decision (node provisioning, image pull,
model load: our assumption, 120 s by default), and an added instance that is idle when the rule
wants fewer, at least ``cooldown_s`` after it was added, is removed (KEDA's cooldown and the
HPA's stabilisation window). Added instances are paid per GPU-second from the decision to their
removal or the end of the run (the plan's servers are paid for the whole run, as in
:class:`streamwise.sim.des.Simulator`); energy counts the plan's servers and the busy time of
every instance.

:func:`compare` runs a workload with and without the rule and returns both results.
"""

from __future__ import annotations

from collections import Counter

from ..core.demand import Pool, Work, demand
from ..core.placement import InstanceView
from .cluster import Cluster
from .des import CPU, FT, SimResult, Simulator, _BACK, _Inst
from .workload import Workload

START_S = 120.0
PERIOD_S = 15.0       # KEDA's default pollingInterval is 30 s; the rendered ScaledObjects use 15 s
HORIZON_S = 30.0      # streamwise.core.demand.DEFAULT_HORIZON_S
COOLDOWN_S = 300.0    # the rendered ScaledObjects' cooldownPeriod and scale-down stabilisation window


class AutoscalingSimulator(Simulator):
    """:class:`~streamwise.sim.des.Simulator` plus the autoscaling rule (see the module docstring).

    ``decisions``: ``(time s, class, +n or -1, replicas after)`` for every change (replicas: serving
    or starting); ``serving``: ``(instance id, decided at, serving from)`` of every added instance.

    Raises:
        ValueError: from the base class, or a non-positive ``period_s`` / ``horizon_s`` or
            ``max_scale < 1``.
    """

    def __init__(self, cluster: Cluster, w: Workload, *, start_s: float = START_S, period_s: float = PERIOD_S,
                 horizon_s: float = HORIZON_S, max_scale: int = 4, cooldown_s: float = COOLDOWN_S, **kw) -> None:
        super().__init__(cluster, w, **kw)
        if period_s <= 0 or horizon_s <= 0 or max_scale < 1 or start_s < 0:
            raise ValueError("autoscaling: need period_s > 0, horizon_s > 0, start_s >= 0 and max_scale >= 1")
        self.start_s, self.period_s, self.horizon_s = start_s, period_s, horizon_s
        self.max_scale, self.cooldown_s = max_scale, cooldown_s
        self.base = Counter(i.cls for i in self.insts if i.gpu != CPU)
        self.pools = {cls: Pool(cls[0], cls[0], cls[1], cls[2]) for cls in self.base}
        self.decisions: list[tuple[float, tuple, int, int]] = []
        self.serving: list[tuple[str, float, float]] = []
        self._paid: dict[str, list[float]] = {}        # added instance -> [decided at, removed at or None]
        self._pending: dict[str, float] = {}           # added, not serving yet -> decided at
        self._next = 0.0

    # ------------------------------------------------------------------ hooks
    def _ready(self, r, stage: str, idx: int) -> None:
        super()._ready(r, stage, idx)
        self._scale()

    def _done(self, inst, node, rung) -> None:
        super()._done(inst, node, rung)
        self._scale()

    def _back(self, inst: _Inst) -> None:
        decided = self._pending.pop(inst.id, None)
        if decided is not None:
            self.serving.append((inst.id, decided, self.now))
        super()._back(inst)

    # ------------------------------------------------------------------ the rule
    def _runtime_on(self, w: Work, pool: Pool) -> float:
        return self._base(pool.stage, pool.hardware, pool.gpus, self.ladder.top if pool.stage == FT else None)

    def _scale(self) -> None:
        if self.now < self._next:
            return
        self._next = self.now + self.period_s
        gpu_stages = {cls[0] for cls in self.base}
        works = [Work(stage, node.deadline, key=node.key) for stage, heap in self.ready.items() if stage in gpu_stages
                 for _, _, node in heap]
        views = [InstanceView(i.id, i.stage, i.model, i.outstanding, True, i.gpu, i.gpus,
                              max(0.0, i.busy_until - self.now), i.price_per_s)
                 for i in self.insts if i.gpu != CPU and i.alive and not i.draining]
        signal = demand(works, views, list(self.pools.values()), now=self.now, horizon_s=self.horizon_s,
                        runtime_s=self._runtime_on)
        for cls, base in self.base.items():
            d = signal.get(self.pools[cls])
            needed = d.needed if d is not None else 0
            target = min(max(needed, base), base * self.max_scale)
            members = [i for i in self.insts if i.cls == cls and i.gpu != CPU]
            live = [i for i in members if i.alive and not i.draining]
            pending = [i for i in members if i.id in self._pending]
            if target > len(live) + len(pending):
                n = target - len(live) - len(pending)
                for _ in range(n):
                    self._add(cls)
                self.decisions.append((self.now, cls, n, target))
            elif target < len(live):
                idle = [i for i in live if i.id in self._paid and i.outstanding == 0 and not i.running
                        and self.now - self._paid[i.id][0] >= self.cooldown_s]
                if idle:
                    self._remove(idle[-1])
                    self.decisions.append((self.now, cls, -1, len(live) + len(pending) - 1))

    def _add(self, cls: tuple) -> None:
        proto = next(i for i in self.insts if i.cls == cls)
        inst = _Inst(f"{proto.model}-{proto.gpu}x{proto.gpus}-a{len(self._paid)}", proto.stage, proto.model, proto.gpu,
                     proto.gpus, cls, proto.price_per_s, alive=False)
        self.insts.append(inst)
        self.by_id[inst.id] = inst
        self._paid[inst.id] = [self.now, None]
        self._pending[inst.id] = self.now
        self._push(self.now + self.start_s, _BACK, inst.id)

    def _remove(self, inst: _Inst) -> None:
        inst.alive = False
        inst.version += 1                     # out of its class heap
        self._paid[inst.id][1] = self.now

    # ------------------------------------------------------------------ result
    def _result(self) -> SimResult:
        r = super()._result()
        end = r.span_s
        extra = 0.0
        for iid, (start, stop) in self._paid.items():
            t1 = end if stop is None else stop
            extra += max(0.0, t1 - start) * self.by_id[iid].price_per_s
        r.cost_usd += extra
        self.added_gpu_s = sum(max(0.0, (end if stop is None else stop) - start) * self.by_id[iid].gpus
                               for iid, (start, stop) in self._paid.items())
        return r


def compare(cluster: Cluster, w: Workload, **kw) -> dict:
    """The workload on ``cluster`` without and with the autoscaling rule: ``{"without": ..., "with":
    ...}`` (:meth:`streamwise.sim.des.SimResult.as_dict`), the latter with ``instances_added``,
    ``instances_removed``, ``added_gpu_hours`` and ``first_added_serving_s`` (when the first added
    instance served, s). ``kw``: :class:`AutoscalingSimulator` options (``start_s``, ``period_s``,
    ``horizon_s``, ``max_scale``, ``cooldown_s``) and the simulator's own (``policy``, ...)."""
    own = {k: kw.pop(k) for k in ("start_s", "period_s", "horizon_s", "max_scale", "cooldown_s") if k in kw}
    without = Simulator(cluster, w, **kw).run().as_dict()
    sim = AutoscalingSimulator(cluster, w, **own, **kw)
    with_ = sim.run().as_dict()
    with_.update({"instances_added": sum(d[2] for d in sim.decisions if d[2] > 0),
                  "instances_removed": -sum(d[2] for d in sim.decisions if d[2] < 0),
                  "added_gpu_hours": round(sim.added_gpu_s / 3600.0, 3),
                  "first_added_serving_s": round(min((s for _, _, s in sim.serving), default=0.0), 1) or None})
    return {"without": without, "with": with_}
