"""The plan-driven simulator: the live scheduler's request model on a virtual clock (issue 10).

Where :mod:`streamwise.sim.des` models the paper's 10-minute podcast with a DAG of its own, this
engine runs the objects the live scheduler runs: a
:class:`~streamwise.workflow.podcast.PodcastPlan` per request (the same DAG, its expansion on
each completion, its deadline propagation and rung floor), the same
:class:`~streamwise.workflow.instances.InstanceState` snapshot (every instance, busy ones
included; outstanding seconds as dispatched; the online runtime correction), and the same
scheduling round (:func:`streamwise.workflow.dispatch.decide`: EDF or FIFO, instance selection,
adaptive quality). It differs from live only in its clock and in where a task runs: each
instance is emulated, runs one task at a time from a local queue in deadline order (the live
worker's EDF heap) and takes the time an :class:`Oracle` says.

Two oracles:

- :class:`ProfileOracle` (default): every task takes its expected time (the CPU profiles of
  ``configs/profiles/cpu.yaml``, the reference GPU profiles for GPU instances), speech lasts
  the plan's own sketch estimate, clips are cut evenly at the request's clip lengths. No
  stage runs; every output is marked ``"emulated": True``.
- :class:`ReplayOracle`: the outputs and run times a live run recorded in its completion
  events, so a simulation of the same requests can be compared decision by decision with the
  live one (the conformance test, tests/test_conformance.py).

The scheduler's own overheads (a loop pass, the bus round trips: milliseconds) are not
modelled: a dispatched task is in its instance's queue at once.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..bus.messages import Event, Heartbeat, Request
from ..core.dag import Node
from ..core.deadlines import StageProfile, load_profiles, sketch_duration_s
from ..core.placement import Decision
from ..core.quality import Ladder, QualityState, load_ladders
from ..script import parse_script
from ..stages.cpu.screenplay import screenplay_outputs
from ..stages.runtime.base import show_audio_rate
from ..workflow import dispatch
from ..workflow.chain import chain_for
from ..workflow.instances import InstanceState
from ..workflow.podcast import PodcastPlan


@dataclass(frozen=True)
class Dispatched:
    """One decision of a simulated (or recorded live) run: ``request`` (scoped key), ``node`` id,
    ``instance``, ``rung`` name (``None`` for a stage without a ladder), the virtual time it was
    dispatched, started and finished (seconds from the first arrival) and its expected seconds."""

    request: str
    node: str
    instance: str
    rung: str | None
    dispatched_s: float
    started_s: float = math.nan
    finished_s: float = math.nan
    expected_s: float = math.nan


class Oracle(Protocol):
    """What a task produces and how long it takes, in place of running it."""

    def outputs(self, plan: PodcastPlan, node: Node, instance: Heartbeat) -> dict[str, Any]: ...

    def runtime_s(self, plan: PodcastPlan, node: Node, instance: Heartbeat, expected_s: float) -> float: ...

    def published_s(self, plan: PodcastPlan, node: Node, simulated_s: float) -> float: ...

    def dispatch_s(self, plan: PodcastPlan, node: Node) -> float | None: ...


class ProfileOracle:
    """Every task takes its expected seconds (``expected_s``: what placement expected on that
    instance); outputs are emulated: the real script parser's screenplay for a script
    request, speech of the plan's sketch length (words / 2.5 per second, plus the line's pause)
    cut into clips of the request's clip lengths, and empty outputs for images, clips and
    segments. Topic requests are not supported (there is no LLM to emulate the lines of).

    Raises:
        ValueError: (from :meth:`outputs`) a topic or document request.
    """

    def outputs(self, plan: PodcastPlan, node: Node, instance: Heartbeat) -> dict[str, Any]:
        r = plan.request
        if node.stage == "screenplay":
            if plan.is_topic or r.script is None:
                raise ValueError("the profile oracle simulates script requests only (inline script)")
            return {**screenplay_outputs(parse_script(r.script, path=r.script_name or "script", fmt=r.script_format)),
                    "emulated": True}
        if node.stage == "tts":
            inputs = node.inputs
            rate = show_audio_rate(r.fps)
            spf = int(rate / r.fps)
            seconds = sketch_duration_s(inputs["text"]) + float(inputs.get("pause_after_s") or 0.0)
            frames = max(1, math.ceil(seconds * r.fps))
            samples = frames * spf
            return {"audio": f"emulated:{node.node_id}", "samples": samples, "sample_rate": rate,
                    "clips": even_clips(frames, spf, r.fps, float(inputs["max_clip_s"]), inputs.get("first_clip_s")),
                    "emulated": True}
        return {"emulated": True}

    def runtime_s(self, plan: PodcastPlan, node: Node, instance: Heartbeat, expected_s: float) -> float:
        return expected_s

    def published_s(self, plan: PodcastPlan, node: Node, simulated_s: float) -> float:
        """When segment ``node`` was published (simulated s), as its plan sees it: the simulated clock's own."""
        return simulated_s

    def dispatch_s(self, plan: PodcastPlan, node: Node) -> float | None:
        """The earliest simulated second ``node`` may be dispatched at: ``None``, as soon as it is ready."""
        return None


def even_clips(frames: int, samples_per_frame: int, fps: float, max_clip_s: float,
               first_clip_s: float | None) -> list[list[int]]:
    """``[[start, end), ...]`` sample ranges covering ``frames`` frames: the first at most
    ``first_clip_s`` seconds (when given), then even clips of at most ``max_clip_s`` seconds,
    in whole frames (the live TTS cuts at pauses; the lengths are what matters here)."""
    limit = max(1, int(max_clip_s * fps))
    first = max(1, int(first_clip_s * fps)) if first_clip_s else limit
    cuts, at = [], 0
    size = min(first, limit)
    while at < frames:
        end = min(frames, at + size)
        cuts.append([at * samples_per_frame, end * samples_per_frame])
        at, size = end, limit
    return cuts


class ReplayOracle:
    """The outputs and run times (``finished_at - started_at``) of a live run's successful
    completion events, by ``(request key, node id)``; a node the live run never completed
    falls back to :class:`ProfileOracle`.

    ``events``: the live events (:class:`~streamwise.bus.messages.Event`), any order; ``t0``: the
    Unix second the simulation's clock starts at (its first arrival), for :meth:`dispatch_s` and
    :meth:`published_s` (``None``: dispatch and publication times are not replayed)."""

    def __init__(self, events: list[Event], t0: float | None = None) -> None:
        self.t0 = t0
        self.done: dict[tuple[str, str], Event] = {}
        for e in events:
            if e.ok and not e.partial:
                self.done[(f"{e.tenant}.{e.request_id}", e.node_id)] = e
        self.fallback = ProfileOracle()

    def outputs(self, plan: PodcastPlan, node: Node, instance: Heartbeat) -> dict[str, Any]:
        e = self.done.get((plan.key, node.node_id))
        return dict(e.outputs) if e is not None else self.fallback.outputs(plan, node, instance)

    def runtime_s(self, plan: PodcastPlan, node: Node, instance: Heartbeat, expected_s: float) -> float:
        e = self.done.get((plan.key, node.node_id))
        return max(0.0, e.finished_at - e.started_at) if e is not None else expected_s

    def published_s(self, plan: PodcastPlan, node: Node, simulated_s: float) -> float:
        """When segment ``node`` was published in the live run (its event's ``finished_at - t0``), as
        the replayed plan sees it: the running-late rule (:attr:`PodcastPlan.running_late`, threshold
        :data:`~streamwise.workflow.podcast.LATE_S`) and the viewer's playback clock
        (:attr:`PodcastPlan.playback_at`, which the later segments' deadlines follow) read it.
        ``simulated_s`` where the live run never completed the node or ``t0`` is not set. The replay's
        clock runs a reaction time ahead of or behind the live one, so a segment 0.24 s late live can
        be 0.26 s late simulated and flip the rule, and every later deadline would move with it: the
        publication time is an observation of the live run, replayed like its run times; the
        decisions it leads to are still the shared plan's. The simulation's own segment times
        (:attr:`PlanRun.segments`, its TTFF and stalls) stay the simulated ones."""
        e = self.done.get((plan.key, node.node_id))
        if self.t0 is None or e is None or not e.finished_at:
            return simulated_s
        return e.finished_at - self.t0

    def dispatch_s(self, plan: PodcastPlan, node: Node) -> float | None:
        """When the live scheduler dispatched ``node``'s completed attempt, in simulated seconds
        (its event's ``dispatched_at - t0``): the replay decides the node no earlier, so each
        decision sees what the live one could have seen. Free-running, a replay decides a node
        the moment it is ready, and under CPU load a decision then races an event the live
        scheduler saw first (measured: a clip decided 30 ms before the segment that put its
        request on the cheapest rung completed in the replay, 1.6 s after it live). The instance
        and rung are still the shared round's (:func:`streamwise.workflow.dispatch.decide`) on the
        replay's own state. ``None`` when not replaying dispatch times or the event has none."""
        e = self.done.get((plan.key, node.node_id))
        if self.t0 is None or e is None or not e.dispatched_at:
            return None
        return e.dispatched_at - self.t0


@dataclass
class _Instance:
    hb: Heartbeat
    queue: list = field(default_factory=list)   # (deadline, seq, request key, node id, task id, record index)
    running: bool = False


@dataclass
class PlanRun:
    """A plan-driven simulation's result: every decision in dispatch order, and per request
    (scoped key) the time of each segment's completion (seconds from the first arrival), its
    arrival, and whether it finished."""

    decisions: list[Dispatched]
    segments: dict[str, list[float]]
    arrivals: dict[str, float]
    finished: dict[str, bool]
    starts: dict[str, list[float]] = field(default_factory=dict)   # each segment's start in the show (s)

    def stall_s(self, key: str) -> float:
        """Seconds a viewer of ``key`` would wait in total after its first frame: segment k is due
        at first frame + its start in the show + the stalls before it."""
        segs, starts = self.segments.get(key) or [], self.starts.get(key) or []
        stall = 0.0
        for t, start in zip(segs, starts):
            stall += max(0.0, t - (segs[0] + start + stall))
        return stall

    def summary(self) -> dict:
        """Per request: TTFF, stall (s), segments; and the rung mix of the video clips."""
        from collections import Counter

        rungs = Counter(d.rung for d in self.decisions if d.rung)
        return {"requests": {k: {"ttff_s": round(self.ttff_s(k), 3), "stall_s": round(self.stall_s(k), 3),
                                 "segments": len(self.segments[k]), "finished": self.finished[k]}
                             for k in self.segments},
                "rungs": dict(rungs), "tasks": len(self.decisions), "emulated": True}

    def ttff_s(self, key: str) -> float:
        """Time to first frame of request ``key``: its first segment's completion after arrival."""
        segs = self.segments.get(key) or []
        return segs[0] - self.arrivals[key] if segs else math.inf


class PlanSimulator:
    """Run ``requests`` (``(arrival s, Request)``) on ``instances`` (heartbeats: stage, model,
    hardware, GPUs; ``emulated`` is set on each) with the live scheduling round.

    ``policy``: ``edf`` or ``fifo``; ``cap``: outstanding tasks per instance (the live
    scheduler's default, 3); ``ladders``: stage -> ladder (default: the live scheduler's,
    FantasyTalking's for ``video``); ``oracle``: :class:`ProfileOracle` by default;
    ``latency_s``: seconds from a task's end to the scheduler acting on it (the event's bus
    round trip and a loop pass; 0 by default; :func:`streamwise.sim.conformance.replay`
    measures it from a live run). An instance starts its next queued task at once.

    Raises:
        ValueError: an unknown policy, or two instances with one id.
    """

    def __init__(self, requests: list[tuple[float, Request]], instances: list[Heartbeat], *, policy: str = "edf",
                 cap: int = 3, ladders: dict[str, Ladder] | None = None, oracle: Oracle | None = None,
                 profiles: dict[str, StageProfile] | None = None, latency_s: float = 0.0) -> None:
        if policy not in ("edf", "fifo"):
            raise ValueError(f"policy must be 'edf' or 'fifo', got {policy!r}")
        if len({hb.instance for hb in instances}) != len(instances):
            raise ValueError("instance ids must be unique")
        self.now = 0.0
        self.latency_s = latency_s
        self.policy, self.cap = policy, cap
        self.ladders = ladders if ladders is not None else {"video": load_ladders()["fantasytalking"]}
        self.oracle = oracle or ProfileOracle()
        self.profiles = profiles if profiles is not None else load_profiles()
        self.pool = InstanceState(ttl_s=math.inf, clock=lambda: self.now)
        self.instances: dict[str, _Instance] = {}
        for hb in instances:
            hb = Heartbeat(**{**{f: getattr(hb, f) for f in hb.__struct_fields__}, "emulated": True, "state": "ready"})
            self.pool.beat(hb)
            self.instances[hb.instance] = _Instance(hb)
        self.requests = sorted(requests, key=lambda item: item[0])
        self.me = "scheduler-sim"
        self.states: dict[str, QualityState] = {}
        self.plans: dict[str, PodcastPlan] = {}
        self._events: list = []
        self._seq = itertools.count()
        self.decisions: list[Dispatched] = []
        self.segments: dict[str, list[float]] = {}
        self.arrivals: dict[str, float] = {}
        self.finished: dict[str, bool] = {}
        self.done_plans: dict[str, PodcastPlan] = {}   # finished requests' plans (their DAGs)

    def run(self, *, until_s: float = 86400.0) -> PlanRun:
        """Simulate until every request is finished (or ``until_s`` virtual seconds)."""
        for t, request in self.requests:
            self._push(t, "arrive", request)
        while self._events and self.now <= until_s:
            t = self._events[0][0]
            self.now = t
            while self._events and self._events[0][0] <= t:
                _, _, kind, payload = heapq.heappop(self._events)
                if kind == "arrive":
                    self._arrive(payload)
                elif kind == "done":
                    self._done(*payload)
                elif kind == "seen":
                    self._seen(*payload)
            self._round()
        starts = {k: [p.segment_start(i) / p.request.fps for i in range(len(self.segments[k]))]
                  for k, p in {**self.plans, **self.done_plans}.items()}
        return PlanRun(self.decisions, self.segments, self.arrivals, self.finished, starts)

    # ---------------------------------------------------------------- events
    def _push(self, t: float, kind: str, payload: Any) -> None:
        heapq.heappush(self._events, (t, next(self._seq), kind, payload))

    def _arrive(self, request: Request) -> None:
        request = Request(**{**{f: getattr(request, f) for f in request.__struct_fields__}, "submitted_at": self.now})
        plan = PodcastPlan(request, self.profiles, chain=chain_for(self.pool.views(self.me)))
        self.plans[plan.key] = plan
        self.arrivals[plan.key] = self.now
        self.segments[plan.key] = []
        self.finished[plan.key] = False

    def _round(self) -> None:
        """The live scheduler's pass: scan, decide, commit; then start idle instances. A node
        not due yet (``not_before``) gets a wake-up event."""
        ready, held = [], []   # held: the live dispatch times of nodes not yet due here (ReplayOracle)
        for item in dispatch.scan(self.plans):
            at = self.oracle.dispatch_s(self.plans[item[0]], item[2])
            if at is not None and at > self.now:
                held.append(at)
            else:
                ready.append(item)
        decisions, self.states = dispatch.decide(self.plans, ready, self.pool, me=self.me, cap=self.cap,
                                                 now=self.now, ladders=self.ladders, states=self.states,
                                                 policy=self.policy)
        for d in decisions:
            self._send(d)
        later = [n.not_before for _, _, n in ready if n.not_before > self.now] + held
        if later:
            self._push(min(later), "wake", None)
        for inst in self.instances.values():
            if not inst.running and inst.queue:
                self._start(inst)

    def _send(self, d: Decision) -> None:
        key, node_id = d.node.key
        plan = self.plans[key]
        node = plan.dag[node_id]
        dispatch.set_rung(plan, node, d, self.ladders)
        dispatch.commit(node, d, self.now)
        task_id = plan.task_id(node)
        self.pool.dispatched(d.instance.instance, task_id, d.expected_s)
        self.decisions.append(Dispatched(key, node_id, d.instance.instance, d.rung.name if d.rung else None,
                                         self.now, expected_s=d.expected_s))
        inst = self.instances[d.instance.instance]
        heapq.heappush(inst.queue, (node.deadline, next(self._seq), key, node_id, task_id, len(self.decisions) - 1))

    def _start(self, inst: _Instance) -> None:
        _, _, key, node_id, task_id, rec = heapq.heappop(inst.queue)
        plan = self.plans[key]
        node = plan.dag[node_id]
        seconds = self.oracle.runtime_s(plan, node, inst.hb, self.decisions[rec].expected_s)
        inst.running = True
        self.decisions[rec] = _with(self.decisions[rec], started_s=self.now, finished_s=self.now + seconds)
        self._push(self.now + seconds, "done", (inst.hb.instance, key, node_id, task_id, self.now))

    def _done(self, instance: str, key: str, node_id: str, task_id: str, started: float) -> None:
        """The task ended: its instance takes its next queued task now; the scheduler sees the
        event ``latency_s`` later."""
        inst = self.instances[instance]
        inst.running = False
        if inst.queue:
            self._start(inst)
        if self.latency_s > 0:
            self._push(self.now + self.latency_s, "seen", (instance, key, node_id, task_id, started, self.now))
        else:
            self._seen(instance, key, node_id, task_id, started, self.now)

    def _seen(self, instance: str, key: str, node_id: str, task_id: str, started: float, finished: float) -> None:
        plan = self.plans.get(key)
        if plan is None:
            return
        node = plan.dag[node_id]
        seen = self.oracle.published_s(plan, node, finished) if node.stage == "mux" else finished
        event = Event(task_id=task_id, request_id=plan.request.request_id, tenant=plan.request.tenant,
                      node_id=node_id, stage=node.stage, instance=instance, ok=True,
                      outputs=self.oracle.outputs(plan, node, self.instances[instance].hb),
                      started_at=started, finished_at=seen)
        self.pool.finished(instance, task_id, finished - started)
        done = plan.on_event(event)
        if done is not None and done.stage == "mux":
            self.segments[key].append(finished)
        if plan.finished:
            self.finished[key] = True
            self.done_plans[key] = self.plans.pop(key)
            self.states.pop(key, None)


def _with(d: Dispatched, **changes: Any) -> Dispatched:
    return Dispatched(**{**d.__dict__, **changes})
