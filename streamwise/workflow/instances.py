"""What a scheduler knows of the worker instances, and what a task will cost on each.

Owns the live instances (from heartbeats, aged on the scheduler's own clock), the tasks
outstanding on each with their expected seconds, the prices, and the online correction of
expected runtimes from observed ones (EWMA per instance, so a CPU worker's real speed is
learnt too; StreamWise scheduler design, arXiv 2603.05800). The scheduler service gathers
its snapshot for :func:`streamwise.core.placement.assign` here, and so does the plan-driven
simulator (:mod:`streamwise.sim.live`) on its own clock: one snapshot builder for both.
"""

from __future__ import annotations

import time
from importlib import resources

import yaml

from ..bus.messages import Heartbeat
from ..core.estimate import CHAIN_MODELS, book, chain_runtime_s, gpu_runtime_s
from ..core.placement import InstanceView
from ..core.profiles import OnlineCorrection
from ..core.quality import Ladder, Rung


def load_prices(pricing: str = "spot") -> dict[str, float]:
    """$/GPU-hour (CPU: per core-hour) by hardware kind, from ``configs/hardware.yaml``.

    Raises:
        KeyError: unknown ``pricing`` (``spot`` or ``reserved``).
    """
    data = yaml.safe_load(resources.files("streamwise.configs").joinpath("hardware.yaml").read_text())
    return {kind: float(p[pricing]) for kind, p in data["kinds"].items()}


class InstanceState:
    """Instances, their outstanding work and learnt speed. ``ttl_s``: an instance whose
    heartbeat is older than this (by our clock) is gone."""

    def __init__(self, *, ttl_s: float, pricing: str = "spot", clock=time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock          # seconds; the simulator passes its virtual clock
        self.prices = load_prices(pricing)
        self.instances: dict[str, Heartbeat] = {}
        self.seen: dict[str, float] = {}
        self.outstanding: dict[str, dict[str, float]] = {}   # instance -> task id -> expected s
        self.mean_s: dict[str, float] = {}                    # instance -> EWMA of observed task seconds
        self.correction = OnlineCorrection()
        # instance -> scheduler id -> its last view; dropped whenever the instance's heartbeat or
        # outstanding work changes, so a snapshot rebuilds only the instances that changed
        self._views: dict[str, dict[str, InstanceView]] = {}

    # ---------------------------------------------------------------- heartbeats
    def _changed(self, instance: str) -> None:
        self._views.pop(instance, None)

    def beat(self, hb: Heartbeat) -> None:
        self.instances[hb.instance] = hb
        self._changed(hb.instance)
        self.seen[hb.instance] = self.clock()     # our clock, not the worker's: hosts' clocks differ

    def expired(self) -> list[str]:
        now = self.clock()
        return [i for i in self.instances if now - self.seen.get(i, now) > self.ttl_s]

    def grace(self, seconds: float) -> None:
        """Give every known instance ``seconds`` from now before it counts as expired (after the
        bus connection came back: their heartbeats could not reach us while it was away)."""
        until = self.clock() + seconds - self.ttl_s
        for instance in self.instances:
            self.seen[instance] = max(self.seen.get(instance, until), until)

    def forget(self, instance: str) -> None:
        self._changed(instance)
        self.instances.pop(instance, None)
        self.seen.pop(instance, None)
        self.outstanding.pop(instance, None)

    # ---------------------------------------------------------------- outstanding work
    def dispatched(self, instance: str, task_id: str, expected_s: float) -> None:
        self.outstanding.setdefault(instance, {})[task_id] = expected_s
        self._changed(instance)

    def finished(self, instance: str, task_id: str, observed_s: float | None = None) -> None:
        """A task left ``instance``; with ``observed_s`` (it ran), correct its expected speed."""
        expected = self.outstanding.get(instance, {}).pop(task_id, None)
        self._changed(instance)
        if expected is not None and observed_s is not None:
            self.correction.observe(instance, expected, observed_s)
        if observed_s is not None:
            old = self.mean_s.get(instance)
            self.mean_s[instance] = observed_s if old is None else 0.8 * old + 0.2 * observed_s

    def others(self, hb: Heartbeat, me: str) -> int:
        """Tasks other schedulers have outstanding on ``hb``'s instance, from its last heartbeat
        (issue 14: schedulers share what they know of instance load through the bus): what it
        holds for other schedulers, plus what waits undelivered on its subject beyond our own
        undelivered tasks. Lags the truth by at most a heartbeat (2 s)."""
        held = hb.held_by or {}
        ours = len(self.outstanding.get(hb.instance, {}))
        ours_undelivered = max(0, ours - held.get(me, 0))
        return sum(n for s, n in held.items() if s != me) + max(0, hb.pending - ours_undelivered)

    # ---------------------------------------------------------------- snapshot
    def views(self, me: str = "") -> list[InstanceView]:
        """The snapshot for placement. ``me``: this scheduler's id; the tasks other schedulers
        have on an instance (:meth:`others`) count in its outstanding tasks and, at its mean
        observed task time (1 s before any), in its queued seconds. Instances of one model on one
        hardware and GPU count form a placement group
        (:attr:`~streamwise.core.placement.InstanceView.group`): :meth:`base_runtime_s` gives them
        the same seconds, so placement asks once per group and applies each instance's learnt
        correction (``factor``) itself. An instance's view is kept until its heartbeat or
        outstanding work changes (or its learnt factor), so a snapshot of a large pool costs
        little more than the instances that changed."""
        out = []
        factor = self.correction.factor
        cache = self._views
        for hb in self.instances.values():
            kept = cache.get(hb.instance)
            view = kept.get(me) if kept is not None else None
            if view is not None and view.factor == factor(hb.instance):
                out.append(view)
                continue
            work = self.outstanding.get(hb.instance, {})
            others = self.others(hb, me) if me else 0
            price = self.prices.get(hb.hardware, 0.0) * max(hb.gpus, 1) / 3600.0
            view = InstanceView(hb.instance, hb.stage, hb.model, len(work) + others, accepting=hb.state == "ready",
                                hardware=hb.hardware, gpus=hb.gpus,
                                queued_s=sum(work.values()) + others * self.mean_s.get(hb.instance, 1.0),
                                price_per_s=price, group=(hb.hardware, hb.gpus), factor=factor(hb.instance))
            cache.setdefault(hb.instance, {})[me] = view
            out.append(view)
        return out

    def runtime_s(self, inst: InstanceView, rung: Rung | None, *, cpu_estimate_s: float, duration_s: float,
                  ladder: Ladder | None, upscale: bool = True, decode: bool = True) -> float:
        """Expected seconds of a task on ``inst``: :meth:`base_runtime_s` times the instance's
        learnt correction.

        Raises:
            KeyError: no profile for the instance's (model, hardware, GPU count).
        """
        return self.correction.corrected(inst.instance, self.base_runtime_s(
            inst, rung, cpu_estimate_s=cpu_estimate_s, duration_s=duration_s, ladder=ladder, upscale=upscale,
            decode=decode))

    @staticmethod
    def base_runtime_s(inst: InstanceView, rung: Rung | None, *, cpu_estimate_s: float, duration_s: float,
                       ladder: Ladder | None, upscale: bool = True, decode: bool = True) -> float:
        """Expected seconds of a task on ``inst`` before its learnt correction: the CPU rung's
        profile on a CPU instance, the reference GPU profile of the instance's model otherwise (a
        GPU-chain model, FramePack, its VAE or Real-ESRGAN:
        :func:`~streamwise.core.estimate.chain_runtime_s`, ``decode`` False when FramePack's VAE
        runs apart). ``upscale`` False: an ``upscale`` rung's Real-ESRGAN pass runs in a node of
        its own, not here. A function of the instance's model, hardware and GPU count alone.

        Raises:
            KeyError: no profile for the instance's (model, hardware, GPU count).
        """
        if inst.hardware == "cpu":
            return cpu_estimate_s * (rung.cpu_cost if rung is not None else 1.0)
        if rung is not None:
            return gpu_runtime_s(inst.model, inst.hardware, inst.gpus, rung, duration_s=duration_s,
                                 upscale_to=ladder.output if ladder and upscale else None)
        if inst.model in CHAIN_MODELS:
            return chain_runtime_s(inst.model, inst.hardware, inst.gpus, duration_s, decode=decode)
        return book().runtime_s(inst.model, inst.hardware, inst.gpus, units=1)
