"""The request DAG: nodes, their dependencies and life cycle.

A podcast's DAG is mostly unknown at submit time and grows as completion events arrive
(StreamWise design notes, section 2): the screenplay gives lines, speech gives exact
durations, splitting gives clips. :class:`Dag` only stores nodes and answers which are
ready; what to add when is the workflow's business (:mod:`streamwise.podcast`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class NodeState(str, Enum):
    PENDING = "pending"        # waiting for dependencies
    DISPATCHED = "dispatched"  # a task is on an instance's subject
    DONE = "done"
    FAILED = "failed"


@dataclass
class Node:
    """One unit of work of one stage. ``deadline`` is absolute (Unix s); ``runtime_s`` is the
    expected runtime used for upstream deadlines; ``outputs`` come from the completion event."""

    node_id: str
    stage: str
    deps: tuple[str, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)
    deadline: float = float("inf")
    runtime_s: float = 0.0
    state: NodeState = NodeState.PENDING
    attempt: int = 0               # dispatches so far (part of the task id)
    failures: int = 0              # failed attempts (handed-back and lost tasks do not count)
    instance: str | None = None
    dispatched_at: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0        # seconds of video the node renders (for GPU runtime estimates)
    quality: Any = None            # the quality rung it was dispatched at (a bus Quality), if chosen
    rung_index: int = 0            # that rung's place in its ladder (0 = highest)
    cache_key: str | None = None   # content hash of what the node computes; None = not cacheable


class Dag:
    """Nodes by id, in insertion order."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def add(self, node: Node) -> Node:
        """Add a node.

        Raises:
            ValueError: the id exists, or a dependency is unknown (a DAG only grows downstream).
        """
        if node.node_id in self.nodes:
            raise ValueError(f"node {node.node_id!r} already in the DAG")
        missing = [d for d in node.deps if d not in self.nodes]
        if missing:
            raise ValueError(f"node {node.node_id!r} depends on unknown node(s) {missing}")
        self.nodes[node.node_id] = node
        return node

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nodes

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def ready(self) -> list[Node]:
        """Pending nodes whose dependencies are all done."""
        return [n for n in self.nodes.values()
                if n.state is NodeState.PENDING and all(self.nodes[d].state is NodeState.DONE for d in n.deps)]

    def pending(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state in (NodeState.PENDING, NodeState.DISPATCHED)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes.values():
            out[n.state.value] = out.get(n.state.value, 0) + 1
        return out
