"""Instance selection for ready nodes: a pure function over a snapshot.

Earliest-deadline-first across all requests of this scheduler (StreamWise scheduler
design, arXiv 2603.05800, section 4): ready nodes are taken in deadline order and each
goes to the ready instance of its stage with the fewest outstanding tasks, as long as the
instance has fewer than ``cap`` outstanding. Keeping only a few tasks outstanding per
instance is what keeps ordering in the scheduler's hands: the rest wait here, in EDF
order, instead of in a FIFO stream. (Profile-based expected completion times, costs and
quality rungs come with issue 3.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable


@dataclass(frozen=True)
class ReadyNode:
    """A node that could run now: ``key`` identifies it to the caller."""

    key: Hashable
    stage: str
    deadline: float


@dataclass(frozen=True)
class InstanceView:
    """What placement needs to know of an instance."""

    instance: str
    stage: str
    model: str
    outstanding: int
    accepting: bool = True


def assign(ready: list[ReadyNode], instances: list[InstanceView], *, cap: int) -> list[tuple[ReadyNode, InstanceView]]:
    """Decide which ready nodes to dispatch now, and where.

    Returns ``(node, instance)`` pairs in dispatch (deadline) order; nodes with no free
    instance of their stage stay for a later round. Ties in load go to the instance id
    that sorts first, so decisions are deterministic.
    """
    load = {i.instance: i.outstanding for i in instances}
    by_stage: dict[str, list[InstanceView]] = {}
    for inst in sorted(instances, key=lambda i: i.instance):
        if inst.accepting:
            by_stage.setdefault(inst.stage, []).append(inst)
    decisions = []
    for node in sorted(ready, key=lambda n: n.deadline):
        candidates = [i for i in by_stage.get(node.stage, ()) if load[i.instance] < cap]
        if not candidates:
            continue
        best = min(candidates, key=lambda i: load[i.instance])
        load[best.instance] += 1
        decisions.append((node, best))
    return decisions
