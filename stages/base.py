"""The small interface every stage adapter implements, and what a task may use while it runs.

A stage adapter wraps one model family (or the CPU rung of a stage) behind
``load()`` (once per process, heavy) and ``run(task, ctx)`` (per task, returns the
outputs that go into the completion event). The generic worker loop in
:mod:`streamwise.stages.worker` does everything else: pulling, EDF ordering, acks,
heartbeats, events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from ..bus.client import Bus
from ..bus.messages import Task


class TaskError(Exception):
    """A task that failed. ``retryable=False`` means another attempt would fail the same
    way (bad input), so the scheduler fails the request with this message instead."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class TaskContext:
    """What a running task may touch: the bus (object store, publish) and its own identity."""

    bus: Bus
    instance: str

    def blob_name(self, task: Task, suffix: str) -> str:
        """The object-store name of one output of ``task``: ``<request>/<node>/<suffix>``.
        Keyed by node, so a redelivered or retried task overwrites its own output (idempotent)."""
        return f"{task.request_id}/{task.node_id}/{suffix}"

    async def in_thread(self, fn, *args, **kwargs):
        """Run CPU-bound work off the event loop, so heartbeats and acks keep flowing."""
        return await asyncio.to_thread(fn, *args, **kwargs)


class StageAdapter(Protocol):
    """One model (or CPU rung) of one stage."""

    stage: str
    model: str

    def load(self) -> None:
        """Load weights / warm up. Called once before the worker reports ready."""

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        """Do the task and return its outputs (plain MessagePack values; large data by object-store name).

        Raises:
            TaskError: the task failed; ``retryable`` tells the scheduler whether to try again.
        """


class ArtifactCache:
    """A small LRU of decoded artifacts by object-store name (names are immutable per node,
    so a cached value never goes stale). ``size`` bounds memory: decoded clips are large."""

    def __init__(self, size: int) -> None:
        from collections import OrderedDict

        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()

    async def get(self, ctx: TaskContext, name: str, decode=lambda data: data) -> Any:
        """The artifact ``name`` passed through ``decode`` (run in a thread), fetched on a miss.

        Raises:
            TaskError: the artifact does not exist (retryable: it may be re-produced upstream).
        """
        if name in self._items:
            self._items.move_to_end(name)
            return self._items[name]
        try:
            data = await ctx.bus.get_blob(name)
        except KeyError as exc:
            raise TaskError(str(exc)) from None
        value = await ctx.in_thread(decode, data)
        self._items[name] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value
