"""Instance selection and quality rungs for ready nodes: a pure function over a snapshot.

From the StreamWise scheduler design (arXiv 2603.05800; design notes section 4):

- **EDF across requests**: ready nodes of every request are taken in deadline order.
- **Instance selection**: each goes to the instance of its stage with the earliest expected
  completion, ``queued_s`` (expected seconds of the work already outstanding there) plus
  the expected runtime of this node on it; ties go to the cheaper instance ($/s). An
  instance takes at most ``cap`` outstanding tasks, so ordering stays in the scheduler's
  EDF queue instead of a FIFO stream; the rest wait for a later round.
- **Late binding of work with slack** (EDF): a node with more than :data:`QUEUE_SLACK_S` of
  slack is not queued behind a busy CPU instance's work; it waits for a free instance.
- **Adaptive quality**: for a stage with a ladder, the highest rung whose best instance
  finishes by the node's deadline is feasible (the static CPU rung when none is); the
  per-request hysteresis of :func:`streamwise.core.quality.next_rung` steps down at once and
  climbs back one rung after ``climb_after`` shots with slack.

Everything the policy needs comes in as arguments; the new hysteresis states come back
with the decisions (state passed explicitly, Ray Serve style), so the live scheduler and a
simulator run the same code.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping

from .quality import Ladder, QualityState, Rung, next_rung


@dataclass(frozen=True)
class ReadyNode:
    """A node that could run now. ``key`` identifies it to the caller, ``request`` keys its
    quality state; ``deadline`` is absolute (s)."""

    key: Hashable
    stage: str
    deadline: float
    request: Hashable = None
    arrival: tuple = ()        # (request submit time, node number): the order a FIFO policy uses
    model: str | None = None   # only instances of this model may run it (e.g. "llm" for a topic's screenplay)
    floor: int = 0             # the best rung index it may run at (0: any); a request running late is held low


@dataclass(frozen=True)
class InstanceView:
    """What placement needs to know of an instance: ``queued_s`` = expected seconds of its
    outstanding tasks, ``price_per_s`` in $/s. ``group``: the caller's promise that ``runtime_s``
    gives every instance of the stage and model with this group the same seconds for any node at
    any rung (same hardware and GPUs), so placement asks once per group instead of once per
    instance; ``None``: a group of its own. ``factor``: the instance's learnt speed (observed /
    expected runtime): its expected seconds are ``runtime_s``'s times this."""

    instance: str
    stage: str
    model: str
    outstanding: int
    accepting: bool = True
    hardware: str = "cpu"
    gpus: int = 0
    queued_s: float = 0.0
    price_per_s: float = 0.0
    group: Hashable = None     # instances of one group run every node in the same expected time (None: its own)
    factor: float = 1.0        # its learnt speed: placement multiplies ``runtime_s``'s seconds by it


@dataclass(frozen=True)
class Decision:
    """Dispatch ``node`` to ``instance`` at ``rung`` (``None``: the stage has no ladder);
    ``expected_s``: its expected runtime there."""

    node: ReadyNode
    instance: InstanceView
    rung: Rung | None
    expected_s: float


RuntimeFn = Callable[[ReadyNode, InstanceView, "Rung | None"], float]

QUEUE_SLACK_S = 1.0
"""Seconds of slack above which EDF does not queue a node behind a busy CPU instance's work: it
waits in the scheduler's queue until an instance is free (late binding). Tasks queued on an
instance cannot move to another that frees up first, and a worker runs what it holds: with
eight shows starting at once, a portrait due in 4 s queued on one image worker ran for 1.7 s
while another worker held three first portraits due at once (2026-12-02). Urgent nodes (less
slack) are still queued up to the cap, so a busy worker always has its next task at hand.
Only on a stage whose instances are all CPU: where a GPU instance serves the stage too, a
node held for a CPU worker would be a race between that worker freeing up and the GPU taking it
(the live conformance test with the GPU chain then failed 2 runs of 3: clips that went to the
CPU live went to the GPU in the replay); there the hold-for-a-busy-GPU rule decides."""


class _Group:
    """Instances of one placement group (:attr:`InstanceView.group`) during a round: ``head`` (the
    first by id: the one ``runtime_s`` is asked for), ``queue`` (``(queued s, place in id order,
    instance)`` kept sorted), the smallest learnt ``factor`` and how many are below the cap."""

    __slots__ = ("head", "queue", "fmin", "uncapped")

    def __init__(self, head: InstanceView) -> None:
        self.head, self.queue, self.fmin, self.uncapped = head, [], head.factor, 0


class _Pool:
    """Mutable load bookkeeping for one round of :func:`assign`."""

    def __init__(self, instances: list[InstanceView], cap: int, now: float = 0.0,
                 queue_slack_s: float | None = None) -> None:
        self.cap = cap
        self.now = now
        self.queue_slack_s = queue_slack_s   # None: no late binding (every node may queue up to the cap)
        self.gpu_stages: set[str] = set()    # stages a GPU instance serves: no late binding there
        self.load = {i.instance: i.outstanding for i in instances}
        self.queued = {i.instance: i.queued_s for i in instances}
        # per stage, its groups in the order of their first instance by id
        self.by_stage: dict[str, list[_Group]] = {}
        self.group_of: dict[str, _Group] = {}
        self.place: dict[str, int] = {}
        groups: dict[tuple, _Group] = {}
        for idx, inst in enumerate(sorted(instances, key=lambda i: i.instance)):
            if inst.hardware != "cpu":
                self.gpu_stages.add(inst.stage)
            if inst.accepting:
                key = ((inst.stage, 0, inst.model, inst.group) if inst.group is not None
                       else (inst.stage, 1, inst.instance))
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(inst)
                    self.by_stage.setdefault(inst.stage, []).append(group)
                group.queue.append((inst.queued_s, idx, inst))
                group.fmin = min(group.fmin, inst.factor)
                group.uncapped += self.load[inst.instance] < cap
                self.group_of[inst.instance], self.place[inst.instance] = group, idx
        for group in groups.values():
            group.queue.sort(key=lambda e: e[:2])
        # per stage, its accepting instances below their cap: at 0 no node of the stage can be placed this round
        self.room = {stage: sum(g.uncapped for g in gs) for stage, gs in self.by_stage.items()}

    def best(self, node: ReadyNode, runtime_s: RuntimeFn, rung: Rung | None,
             model: str | None) -> tuple[InstanceView, float, float] | None:
        """(instance, expected runtime, expected completion offset) of the earliest finisher
        among the instances below their cap; ties to the cheaper $/s, then to the one with
        fewer outstanding tasks."""
        return self.best_pair(node, runtime_s, rung, model, busy=False)[0]

    def best_pair(self, node: ReadyNode, runtime_s: RuntimeFn, rung: Rung | None, model: str | None,
                  busy: bool = True) -> tuple[tuple | None, tuple | None]:
        """In one pass over the stage's instances: the earliest finisher below its cap (as
        :meth:`best`) and, with ``busy``, the earliest finisher counting instances at their cap
        too (whose queue the node would wait behind). Ranked by (completion, $/s, outstanding
        tasks, place by id). A group's instances are visited by queued seconds, and the visit stops
        once the next one's completion at the group's smallest factor is later than the best found
        (none after it could win)."""
        free = anyone = None
        free_rank = any_rank = None
        cap, load = self.cap, self.load
        for group in self.by_stage.get(node.stage, ()):
            head = group.head
            if model is not None and head.model != model:
                continue
            if not busy and not group.uncapped:
                continue
            try:
                base = runtime_s(node, head, rung)   # one call per group: the same seconds for each
            except KeyError:          # no profile for this (model, hardware, gpus): cannot place here
                continue
            least = base * group.fmin
            for q, idx, inst in group.queue:
                bound = q + least       # no instance from here on completes before this
                if (free is not None or not group.uncapped) and (anyone is not None or not busy):
                    if bound > (free_rank[0] if free is not None else -math.inf) and \
                            (not busy or bound > any_rank[0]):
                        break
                n = load[inst.instance]
                capped = n >= cap
                if capped and not busy:
                    continue
                rt = base * inst.factor
                done = q + rt
                if (not capped and self.queue_slack_s is not None and n > 0 and inst.hardware == "cpu"
                        and node.stage not in self.gpu_stages
                        and node.deadline - (self.now + done) > self.queue_slack_s):
                    capped = True     # not urgent: it waits for a free instance rather than queue (QUEUE_SLACK_S)
                    if not busy:
                        continue
                rank = (done, inst.price_per_s, n, idx)   # ties: the cheaper, the less loaded, the first by id
                if anyone is None or rank < any_rank:
                    anyone, any_rank = (inst, rt, done), rank
                if not capped and (free is None or rank < free_rank):
                    free, free_rank = (inst, rt, done), rank
        return free, anyone

    def _requeue(self, inst: InstanceView, rt: float) -> None:
        group, idx = self.group_of[inst.instance], self.place[inst.instance]
        old = self.queued[inst.instance]
        at = bisect.bisect_left(group.queue, (old, idx))
        del group.queue[at]
        self.queued[inst.instance] = old + rt
        bisect.insort(group.queue, (old + rt, idx, inst), key=lambda e: e[:2])

    def take(self, inst: InstanceView, rt: float) -> None:
        self.load[inst.instance] += 1
        if self.load[inst.instance] == self.cap:
            self.room[inst.stage] -= 1
            self.group_of[inst.instance].uncapped -= 1
        self._requeue(inst, rt)

    def reserve(self, inst: InstanceView, rt: float) -> None:
        """A held node will wait for ``inst``: later nodes of this round see its queue longer."""
        self._requeue(inst, rt)


def assign(ready: list[ReadyNode], instances: list[InstanceView], *, cap: int, now: float = 0.0,
           runtime_s: RuntimeFn | None = None, ladders: Mapping[str, Ladder] | None = None,
           states: Mapping[Hashable, QualityState] | None = None, policy: str = "edf",
           queue_slack_s: float | None = None) -> tuple[list[Decision], dict[Hashable, QualityState]]:
    """Decide which ready nodes to dispatch now, where, and at which rung.

    ``runtime_s(node, instance, rung)`` gives expected seconds (raise ``KeyError`` when the
    instance cannot run it); default: 0 (pure load balancing). ``ladders`` maps a stage to
    its quality ladder; ``states`` holds each request's hysteresis state. ``policy``:
    ``"edf"`` (earliest deadline first with adaptive quality: the StreamWise policy) or
    ``"fifo"`` (the baseline: requests in arrival order, nodes in the order they were added,
    no adaptive quality: the best rung the pool serves, see :func:`_place_without_adapting`).
    ``queue_slack_s`` (EDF only; the scheduler passes :data:`QUEUE_SLACK_S`): a node with more slack
    than this (seconds: deadline - ``now`` - its expected completion there) is not queued on a CPU
    instance that already has work outstanding, on a stage only CPU instances serve; it waits for
    a free one. ``None``: nodes queue up
    to ``cap``. Returns the decisions in dispatch order and the updated states.

    Raises:
        ValueError: unknown ``policy``.
    """
    if policy not in ("edf", "fifo"):
        raise ValueError(f"unknown policy {policy!r}: use 'edf' or 'fifo'")
    order = (lambda n: n.deadline) if policy == "edf" else (lambda n: n.arrival)
    runtime_s = runtime_s or (lambda node, inst, rung: 0.0)
    ladders = ladders or {}
    new_states = dict(states or {})
    pool = _Pool(instances, cap, now, queue_slack_s if policy == "edf" else None)
    decisions = []
    for node in sorted(ready, key=order):
        if not pool.room.get(node.stage):
            # every instance of the stage is at its cap: the node could only be held (a reservation
            # that only later nodes of this stage, which cannot be placed either, would see)
            continue
        ladder = ladders.get(node.stage)
        if ladder is None:
            found = pool.best(node, runtime_s, None, node.model)
            rung = None
        elif policy == "fifo":
            found, rung = _place_without_adapting(node, ladder, pool, runtime_s)
        else:
            found, rung, state = _place_on_ladder(node, ladder, pool, runtime_s, now,
                                                  new_states.get(node.request, QualityState()))
            if found is not None:
                new_states[node.request] = state
        if found is None:
            continue
        inst, rt, _ = found
        pool.take(inst, rt)
        decisions.append(Decision(node, inst, rung, rt))
    return decisions, new_states


def _place_without_adapting(node: ReadyNode, ladder: Ladder, pool: _Pool, runtime_s: RuntimeFn):
    """The FIFO baseline's quality: no adaptation. The node runs at the best rung any instance of
    the pool serves (busy ones included), on its earliest free finisher; while every instance
    of that rung is at its cap the node waits (``None``) rather than stepping down. With
    FantasyTalking instances that is the top rung, as the paper's baselines run; on a CPU-only
    pool, the CPU rung. The live scheduler and the simulator both call this."""
    for rung in ladder.rungs:
        free, anyone = pool.best_pair(node, runtime_s, rung, ladder.model_of(rung))
        if anyone is None:
            continue              # no instance serves this rung at all
        if free is None:
            pool.reserve(anyone[0], anyone[1])
            return None, None
        return free, rung
    return None, None


def _place_on_ladder(node: ReadyNode, ladder: Ladder, pool: _Pool, runtime_s: RuntimeFn, now: float,
                     state: QualityState):
    """Highest feasible rung (deadline met on its best instance), then hysteresis.

    When every instance of a better rung is at its cap but one of them would still finish the
    node in time at that rung (its queue + the runtime), the node is held (``None``) instead
    of being dropped to a lower rung on a free instance: "no instance free: queue and re-plan
    as capacity frees" (StreamWise scheduler design, arXiv 2603.05800). The wait is reserved
    on that instance for the rest of the round, and re-planned on the next loop (as the clock
    advances, a held node falls to a lower rung once waiting no longer meets its deadline).
    """
    floor = min(max(node.floor, 0), len(ladder.rungs) - 1)
    options, feasible, waiting, feasible_waiting = _rung_options(node, ladder, pool, runtime_s, now, floor)
    if floor and not waiting:   # no instance serves the rungs at or below the floor: it cannot apply
        floor = 0
        options, feasible, waiting, feasible_waiting = _rung_options(node, ladder, pool, runtime_s, now, 0)
    if feasible_waiting is not None:
        target = next_rung(state, ladder, feasible_waiting)[0]
        chosen = next_rung(state, ladder, feasible)[0] if feasible is not None else None
        if (target.name in waiting and (chosen is None or ladder.index(target) < ladder.index(chosen))
                and (target.name not in options or now + options[target.name][2] > node.deadline)):
            inst, rt, _ = waiting[target.name]
            pool.reserve(inst, rt)
            return None, None, state
    if not options:
        return None, None, state
    if feasible is None:   # nothing meets the deadline: the lowest rung we can run at all
        feasible = next(r for r in reversed(ladder.rungs) if r.name in options)
    rung, new_state = next_rung(state, ladder, feasible)
    if rung.name not in options or ladder.index(rung) < floor:
        # hysteresis asks for a rung with no free instance right now, or above the node's floor
        rung, new_state = feasible, QualityState(ladder.index(feasible), 0)
    return options[rung.name], rung, new_state


def _rung_options(node: ReadyNode, ladder: Ladder, pool: _Pool, runtime_s: RuntimeFn, now: float, floor: int = 0):
    """Per rung name, the best instance for ``node`` among free instances (``options``) and
    among all, busy ones included (``waiting``), each with the highest rung whose best
    instance meets the node's deadline (``None``: none); rungs above ``floor`` are left out.
    One pass over the instances per rung."""
    options, waiting = {}, {}
    feasible = feasible_waiting = None
    for i, rung in enumerate(ladder.rungs):
        if i < floor:
            continue
        free, anyone = pool.best_pair(node, runtime_s, rung, ladder.model_of(rung))
        if free is not None:
            options[rung.name] = free
            if feasible is None and now + free[2] <= node.deadline:
                feasible = rung
        if anyone is not None:
            waiting[rung.name] = anyone
            if feasible_waiting is None and now + anyone[2] <= node.deadline:
                feasible_waiting = rung
    return options, feasible, waiting, feasible_waiting
