"""The small interface every stage adapter implements, and what a task may use while it runs.

A stage adapter wraps one model family (or the CPU rung of a stage) behind
``load()`` (once per process, heavy) and ``run(task, ctx)`` (per task, returns the
outputs that go into the completion event). The generic worker loop in
:mod:`streamwise.stages.runtime.worker` does everything else: pulling, EDF ordering, acks,
heartbeats, events.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from ...bus.client import Bus
from ...bus.messages import Task

SAMPLE_RATE = 22050  # Hz, mono int16 everywhere in the pipeline (see show_audio_rate for other fps)
WIDE_RATE = 48000    # Hz, a show's audio rate when its fps does not divide SAMPLE_RATE (24, 48, 60 fps)


def show_audio_rate(fps: float) -> int:
    """The audio rate (Hz) of a show at ``fps`` frames/s: :data:`SAMPLE_RATE` (22 050 Hz, the TTS
    engines' rate; 25, 30, 50 fps ...) when a video frame is a whole number of its samples, else
    :data:`WIDE_RATE` (48 000 Hz; 24, 48, 60 fps ...). Every speech piece of a show is padded to
    whole frames at this rate, which keeps audio and video in sync by construction.

    Raises:
        ValueError: neither rate is a whole number of samples per frame (e.g. 23 or 29.97 fps).
    """
    for rate in (SAMPLE_RATE, WIDE_RATE):
        if fps > 0 and (rate / fps).is_integer():
            return rate
    raise ValueError(f"fps {fps:g} is not supported: a frame must be a whole number of audio samples at "
                     f"{SAMPLE_RATE} or {WIDE_RATE} Hz (e.g. 24, 25, 30, 50 or 60 fps)")


@dataclass
class Partial:
    """Outputs a streaming adapter publishes before its task finishes (an ``Event`` with
    ``partial=True``): e.g. the screenplay lines the LLM has written so far."""

    outputs: dict[str, Any]


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
    nice: int = 0   # CPU priority of this task's threads (0 = normal; higher = yields to urgent tasks)

    def blob_name(self, task: Task, suffix: str) -> str:
        """The object-store name of one output of ``task``: ``<tenant>/<request>/<node>/<attempt>/<suffix>``,
        where ``<attempt>`` is a digest of the task id (unique per request, node and attempt).
        Per attempt, so a stale attempt can never replace the output the scheduler accepted
        (and that the result cache names); a redelivery of the same attempt rewrites the same
        name (idempotent)."""
        attempt = hashlib.sha256(task.task_id.encode()).hexdigest()[:12]
        return f"{task.tenant}/{task.request_id}/{task.node_id}/{attempt}/{suffix}"

    async def in_thread(self, fn, *args, **kwargs):
        """Run CPU-bound work off the event loop, so heartbeats and acks keep flowing.

        With ``nice > 0`` the work runs in a fresh thread whose Linux nice value is raised first
        (threads it starts, e.g. x264's, inherit it), so tasks with deadline slack yield the CPU
        to urgent ones in other worker processes on the same machine.
        """
        if self.nice <= 0:
            return await asyncio.to_thread(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(ok: bool, value) -> None:
            if not future.done():
                future.set_result(value) if ok else future.set_exception(value)

        def target() -> None:
            lower_thread_priority(self.nice)
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(settle, False, exc)
            else:
                loop.call_soon_threadsafe(settle, True, value)

        threading.Thread(target=target, name="sw-task", daemon=True).start()
        return await future


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (Linux: per-thread; elsewhere a no-op).
    Raising is always allowed; the thread ends with its task, so nothing needs lowering back."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


def nice_for_slack(slack_s: float) -> int:
    """CPU priority from deadline slack (seconds until the deadline): 0 (normal) under 1 s of
    slack, then one nice level per second of slack up to 10. EDF carried down to the OS scheduler,
    for stage workers that share cores (CFS gives nice 10 about a tenth of nice 0's share)."""
    if slack_s < 1.0:
        return 0
    return min(10, int(slack_s))


class StageAdapter(Protocol):
    """One model (or CPU rung) of one stage."""

    stage: str
    model: str

    def load(self) -> None:
        """Load weights / warm up. Called once before the worker reports ready."""

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        """Do the task and return its outputs (plain MessagePack values; large data by object-store name).

        A streaming adapter may instead be an async generator: it yields :class:`Partial`
        outputs as they are ready (each becomes a partial event) and finally the task's
        outputs as a plain dict (the completion event).

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
