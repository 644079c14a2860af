"""The request DAG: nodes, their dependencies and life cycle.

A podcast's DAG is mostly unknown at submit time and grows as completion events arrive
(StreamWise design notes, section 2): the screenplay gives lines, speech gives exact
durations, splitting gives clips. :class:`Dag` only stores nodes and answers which are
ready; what to add when is the workflow's business (:mod:`streamwise.workflow.podcast`).

Readiness is kept incrementally: every node counts its dependencies not yet done, and a
state change of a node (an assignment to ``node.state``) updates its children's counts and
the DAG's ready set, so :meth:`Dag.ready` costs O(ready nodes), not O(all nodes), however
large a request's DAG grows (the scheduler asks for it on every loop).
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


class _TrackedState:
    """Data descriptor for :attr:`Node.state`: stores the state and tells the node's
    :class:`Dag` (once added to one) of every change, so its ready index stays exact."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> NodeState:
        if obj is None:                    # the dataclass machinery asks for the default
            return NodeState.PENDING
        return obj.__dict__[self.slot]

    def __set__(self, obj: Any, value: NodeState) -> None:
        old = obj.__dict__.get(self.slot)
        obj.__dict__[self.slot] = value
        dag = obj.__dict__.get("_dag")
        if dag is not None and old is not value:
            dag._state_changed(obj, old, value)


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
    state: NodeState = _TrackedState()  # type: ignore[assignment]
    attempt: int = 0               # dispatches so far (part of the task id)
    failures: int = 0              # failed or lost attempts (handed-back tasks do not count)
    not_before: float = 0.0        # Unix s: a node whose task could not be published waits (backoff)
    instance: str | None = None
    dispatched_at: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0        # seconds of video the node renders (for GPU runtime estimates)
    quality: Any = None            # the quality rung it was dispatched at (a bus Quality), if chosen
    rung_index: int = 0            # that rung's place in its ladder (0 = highest)
    cache_key: str | None = None   # content hash of what the node computes; None = not cacheable
    # placement's expected seconds of this node by (model, hardware, GPUs, rung), before an instance's
    # learnt correction: the inputs they depend on are fixed when the node is added
    estimates: dict[Any, float] = field(default_factory=dict, repr=False, compare=False)


class Dag:
    """Nodes by id, in insertion order, with an incrementally kept set of ready nodes."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._seq: dict[str, int] = {}            # node id -> insertion index
        self._unmet: dict[str, int] = {}          # node id -> dependencies not done
        self._children: dict[str, list[str]] = {}
        self._ready: set[str] = set()             # pending nodes with every dependency done

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
        nid = node.node_id
        self.nodes[nid] = node
        self._seq[nid] = len(self._seq)
        self._children[nid] = []
        for d in node.deps:
            self._children[d].append(nid)
        self._unmet[nid] = sum(1 for d in node.deps if self.nodes[d].state is not NodeState.DONE)
        if node.state is NodeState.PENDING and not self._unmet[nid]:
            self._ready.add(nid)
        node.__dict__["_dag"] = self
        return node

    def _state_changed(self, node: Node, old: NodeState | None, new: NodeState) -> None:
        nid = node.node_id
        if new is NodeState.PENDING and not self._unmet[nid]:
            self._ready.add(nid)
        else:
            self._ready.discard(nid)
        if (new is NodeState.DONE) != (old is NodeState.DONE):
            step = -1 if new is NodeState.DONE else 1
            for child in self._children[nid]:
                self._unmet[child] += step
                if not self._unmet[child] and self.nodes[child].state is NodeState.PENDING:
                    self._ready.add(child)
                else:
                    self._ready.discard(child)

    def remove(self, node_id: str) -> Node:
        """Take a pending node out again (a plan that changes course, e.g. a steered show whose
        segments not yet dispatched are laid out anew). Returns the node.

        Raises:
            KeyError: no such node.
            ValueError: the node is not pending, or other nodes still depend on it.
        """
        node = self.nodes[node_id]
        if node.state is not NodeState.PENDING:
            raise ValueError(f"node {node_id!r} is {node.state.value}: only a pending node can be removed")
        if self._children[node_id]:
            raise ValueError(f"node {node_id!r} has dependants {self._children[node_id]}: remove them first")
        for d in node.deps:
            self._children[d].remove(node_id)
        for index in (self.nodes, self._seq, self._unmet, self._children):
            del index[node_id]
        self._ready.discard(node_id)
        node.__dict__.pop("_dag", None)
        return node

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nodes

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def ready(self) -> list[Node]:
        """Pending nodes whose dependencies are all done, in insertion order (earlier scenes
        first). O(r log r) for r ready nodes: read from the index, not a scan."""
        seq = self._seq
        return [self.nodes[i] for i in sorted(self._ready, key=seq.__getitem__)]

    def pending(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state in (NodeState.PENDING, NodeState.DISPATCHED)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes.values():
            out[n.state.value] = out.get(n.state.value, 0) + 1
        return out
