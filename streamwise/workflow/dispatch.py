"""One scheduling round over the active requests' plans: the live scheduler and the simulator run this.

Issue 10 ("one request model"): the live scheduler (:mod:`streamwise.service.scheduler`) and
the plan-driven simulator (:mod:`streamwise.sim.live`) hold the same objects, a
:class:`~streamwise.workflow.podcast.PodcastPlan` per request and one
:class:`~streamwise.workflow.instances.InstanceState` snapshot of the instances, and decide with
the functions below, so they differ only in their clock and in where a task runs:

- :func:`scan`: every ready node of every plan, in plan order (the FIFO policy's arrival order);
- :func:`decide`: the ready nodes due by ``now`` as :class:`~streamwise.core.placement.ReadyNode`
  (deadline, arrival, required model, rung floor: :func:`floor_of`, :func:`behind_stages`), placed by
  :func:`streamwise.core.placement.assign` on ``pool.views(me)`` (every instance, busy ones
  included, so the hold-for-a-busy-GPU rule sees them) with :func:`node_runtime`, work with slack
  bound late on CPU instances (:data:`~streamwise.core.placement.QUEUE_SLACK_S`);
- :func:`set_rung` and :func:`commit`: a decision applied to its plan (the rung set, the node
  dispatched).

The caller then sends the task (live: publishes it to the instance's subject; simulated: puts
it in the emulated instance's queue) and records it with ``pool.dispatched``.
"""

from __future__ import annotations

from typing import Hashable, Mapping

from ..core.dag import Node, NodeState
from ..core.placement import QUEUE_SLACK_S, Decision, InstanceView, ReadyNode, assign
from ..core.quality import Ladder, QualityState, Rung
from .instances import InstanceState
from .podcast import PodcastPlan


def scan(plans: Mapping[Hashable, PodcastPlan]) -> list[tuple[Hashable, int, Node]]:
    """``(request key, position, node)`` of every ready node of every plan: one scan of the DAGs
    per round, shared by the cache pass and placement. ``position`` is the node's place in its
    DAG (the order a FIFO policy uses within a request)."""
    return [(key, i, n) for key, plan in plans.items() for i, n in enumerate(plan.dag.ready())]


def floor_of(plan: PodcastPlan, node: Node, ladders: Mapping[str, Ladder], behind: frozenset[str] = frozenset()) -> int:
    """The best rung index ``node`` may run at: a request running late (its last segment past
    its deadline, :attr:`PodcastPlan.running_late`) runs its laddered nodes at the cheapest rung
    until a segment is on time again, so quality gives way before playback; so does every request
    while its stage's shared CPU pool is behind (``behind``, from :func:`behind_stages`); 0 (any)
    otherwise."""
    ladder = ladders.get(node.stage)
    if ladder is None or not (plan.running_late or node.stage in behind):
        return 0
    return len(ladder.rungs) - 1


HOLD_SHOTS = 12
"""After a round in which the CPU pool was behind (:func:`behind_stages`), every request on it
climbs back from the cheapest rung only after this many more shots in a row with slack than the
ladder's ``climb_after``. Without the hold, `static` clips came back between `still` ones as soon
as the pool caught up for a moment, and a segment that mixes the two is decoded and encoded again
by the mux (eight shows, 2026-12-02: 15 of 96 clips `static`, mux CPU 3 -> 8 s)."""


def cpu_only_stages(pool: InstanceState, ladders: Mapping[str, Ladder]) -> list[str]:
    """The laddered stages no GPU instance of ``pool`` serves (in ``ladders``' order): where the
    pool-wide rules of :func:`starting_states` and :func:`behind_stages` apply."""
    gpu = {v.stage for v in pool.views() if v.hardware != "cpu"}
    return [stage for stage in ladders if stage not in gpu]


def starting_states(plans: Mapping[Hashable, PodcastPlan], states: Mapping[Hashable, QualityState],
                    pool: InstanceState, ladders: Mapping[str, Ladder]) -> dict[Hashable, QualityState]:
    """The quality state a request starts with, decided when its first clip is placed (it has no state
    yet) from the pool's backlog: on a CPU-only pool where another request has not shown its first
    frame yet either (say eight submitted together), it starts at the cheapest rung and holds it for
    :data:`HOLD_SHOTS` shots, so the start, when every request needs its studio, portraits, first speech
    and first segment at once, is not spent on `static` clips and their re-encoded segments. Alone,
    or beside requests already playing, it starts as the deadlines allow (the ladder's top)."""
    starting = [key for key, plan in plans.items() if plan.playback_at is None]
    if len(starting) < 2:
        return {}
    cpu = cpu_only_stages(pool, ladders)
    if not cpu:
        return {}
    bottom = QualityState(len(ladders[cpu[0]].rungs) - 1, -HOLD_SHOTS)
    return {key: bottom for key in starting if key not in states}


def behind_stages(plans: Mapping[Hashable, PodcastPlan], ready: list[tuple[Hashable, int, Node]],
                  pool: InstanceState, ladders: Mapping[str, Ladder], now: float) -> frozenset[str]:
    """The laddered stages whose every clip should run at the cheapest rung now, because the CPU
    pool is behind: some request is running late (its last segment stalled its viewer) or a ready
    node of any request is already past its deadline (say eight shows starting at once, whose
    studios, portraits and first pieces queue behind each other). On CPU-only pools, where every
    stage shares the same cores, one request's better rung is another's stall, so quality gives
    way for all of them before playback does for any (issue 9 item 8). A stage with a GPU
    instance is left out: its rungs run on other hardware, and the per-request rule holds."""
    if not ladders:
        return frozenset()
    stages = cpu_only_stages(pool, ladders)
    if not stages:
        return frozenset()
    late = (any(p.running_late for p in plans.values())
            or any(n.deadline < now and n.not_before <= now for key, _, n in ready if key in plans))
    return frozenset(stages) if late else frozenset()


def node_runtime(pool: InstanceState, plan: PodcastPlan, node: Node, inst: InstanceView, rung: Rung | None,
                 ladders: Mapping[str, Ladder]) -> float:
    """Expected seconds of ``node`` on ``inst`` at ``rung`` before the instance's learnt correction
    (:meth:`InstanceState.base_runtime_s`; placement multiplies by the view's ``factor``, giving
    :meth:`InstanceState.runtime_s`), remembered on the node by (model, hardware, GPUs, rung): a
    waiting clip is placed again on every round.

    Raises:
        KeyError: no profile for the instance's (model, hardware, GPU count): it cannot run it.
    """
    key = (inst.model, inst.hardware, inst.gpus, rung.name if rung is not None else None)
    base = node.estimates.get(key)
    if base is None:
        base = node.estimates[key] = pool.base_runtime_s(
            inst, rung, cpu_estimate_s=node.runtime_s, duration_s=node.duration_s, ladder=ladders.get(node.stage),
            upscale=not node.inputs.get("upscale_after"), decode=node.inputs.get("decode", True))
    return base


def decide(plans: Mapping[Hashable, PodcastPlan], ready: list[tuple[Hashable, int, Node]], pool: InstanceState, *,
           me: str, cap: int, now: float, ladders: Mapping[str, Ladder],
           states: Mapping[Hashable, QualityState], policy: str
           ) -> tuple[list[Decision], dict[Hashable, QualityState]]:
    """Place the nodes of ``ready`` (from :func:`scan`) that are due (``not_before <= now``).

    ``now``: seconds on the caller's clock (wall time live, virtual time simulated); ``me``: the
    scheduler's id (other schedulers' tasks count in the snapshot); ``cap``: outstanding tasks per
    instance; ``policy``: ``edf`` or ``fifo`` (:func:`streamwise.core.placement.assign`).
    Decisions carry ``(request key, node id)`` as their node's key, in dispatch order.

    Raises:
        ValueError: an unknown policy.
    """
    behind = behind_stages(plans, ready, pool, ladders, now) if policy == "edf" else frozenset()
    nodes = [ReadyNode((key, n.node_id), n.stage, n.deadline, key, (plans[key].request.submitted_at, i),
                       model=plans[key].required_model(n), floor=floor_of(plans[key], n, ladders, behind))
             for key, i, n in ready if key in plans and n.not_before <= now]
    if not nodes:
        return [], dict(states)

    def runtime(r: ReadyNode, inst: InstanceView, rung: Rung | None) -> float:
        key, node_id = r.key
        plan = plans[key]
        return node_runtime(pool, plan, plan.dag[node_id], inst, rung, ladders)

    states = {**starting_states(plans, states, pool, ladders), **states} if policy == "edf" else states
    decisions, new_states = assign(nodes, pool.views(me), cap=cap, now=now, runtime_s=runtime, ladders=ladders,
                                   states=states, policy=policy, queue_slack_s=QUEUE_SLACK_S)
    for stage in behind:   # every request on the pool holds the cheapest rung for a while (HOLD_SHOTS)
        bottom = QualityState(len(ladders[stage].rungs) - 1, -HOLD_SHOTS)
        for key in plans:
            new_states[key] = bottom
    return decisions, new_states


def commit(node: Node, decision: Decision, at: float) -> None:
    """Mark ``node`` dispatched to the decision's instance at ``at`` seconds. Call it after the
    task's inputs are built (they depend on the rung: :func:`set_rung` first, then this)."""
    node.state, node.instance, node.dispatched_at = NodeState.DISPATCHED, decision.instance.instance, at


def set_rung(plan: PodcastPlan, node: Node, decision: Decision, ladders: Mapping[str, Ladder]) -> None:
    """The decision's rung on ``node`` (nothing for a stage without a ladder)."""
    if decision.rung is not None:
        plan.set_rung(node, decision.rung, ladders[node.stage])
