"""The generic, stateless stage worker: pull tasks, run them earliest-deadline-first, report.

One process serves one model as one instance. It pulls from its own subject
``sw.tasks.<model>.<instance>`` with a bounded prefetch into a local EDF heap (deadline
order across requests, from the StreamWise scheduler design), runs one task at a time
through the stage adapter, sends in-progress acks while it runs, writes outputs to the
object store, publishes a completion event to ``sw.events.<request>`` and only then acks
(at-least-once; outputs are keyed by node, so a redelivery is harmless). Heartbeats go to
KV ``sw_instances``. An eviction notice on ``sw.control.evict.<instance>`` makes it drain:
it stops pulling, hands queued tasks back (nak) and exits after the running one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import socket
import time
import traceback
import uuid

import nats.errors
from nats.js import api
from opentelemetry import trace

from ...telemetry import tracing

from ...bus import registry, subjects
from ...bus.client import ACK_WAIT_S, Bus, connect
from ...bus.codec import MessageError, decode, encode
from ...bus.messages import Event, Heartbeat, Task
from .base import Partial, StageAdapter, TaskContext, TaskError, nice_for_slack

log = logging.getLogger(__name__)

EVICTION_NOTICE_S = 30.0   # spot VMs' eviction notice (Azure: 30 s; the StreamWise design notes)


def new_instance_id(stage: str) -> str:
    """``<stage>-<host>-<pid>-<4 hex>``: unique, a valid subject token."""
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:24] or "host"
    return subjects.token(f"{stage}-{host}-{os.getpid()}-{uuid.uuid4().hex[:4]}")


class Worker:
    """Runs one :class:`StageAdapter` as one bus instance until stopped or evicted.

    ``prefetch`` bounds how many tasks sit in the local EDF queue (not counting the running one).
    ``deadline_priority``: run tasks with deadline slack at a lower CPU priority
    (:func:`~streamwise.stages.base.nice_for_slack`), so co-located workers share cores by urgency.
    """

    def __init__(self, bus: Bus, adapter: StageAdapter, *, instance: str | None = None,
                 hardware: str = "cpu", gpus: int = 0, prefetch: int = 4,
                 deadline_priority: bool | None = None, emulated: bool = False) -> None:
        self.bus = bus
        self.adapter = adapter
        self.instance = instance or new_instance_id(adapter.stage)
        self.prefetch = prefetch
        # tasks with slack run at a lower CPU priority ($STREAMWISE_DEADLINE_PRIORITY=0 turns it off)
        self.deadline_priority = (os.environ.get("STREAMWISE_DEADLINE_PRIORITY", "1") != "0"
                                  if deadline_priority is None else deadline_priority)
        self.heartbeat = Heartbeat(instance=self.instance, stage=adapter.stage, model=adapter.model,
                                   hardware=hardware, gpus=gpus, emulated=emulated, state="starting",
                                   pid=os.getpid(),
                                   host=socket.gethostname())
        self._queue: list[tuple[float, int, Task, object]] = []
        self._seq = itertools.count()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._drain_until: float | None = None   # monotonic end of an eviction notice
        self.done = 0
        self._busy_s = 0.0

    @property
    def subject(self) -> str:
        return subjects.tasks(self.adapter.model, self.instance)

    async def run(self) -> None:
        """Load the adapter, register, and serve tasks until :meth:`stop` or an eviction."""
        await registry.beat(self.bus.instances, self.heartbeat)
        await asyncio.to_thread(self.adapter.load)
        self.heartbeat.model = self.adapter.model     # an adapter may settle its model on load
        sub = await self.bus.js.pull_subscribe(
            self.subject, durable=self.instance, stream=subjects.STREAM_TASKS,
            config=api.ConsumerConfig(ack_wait=ACK_WAIT_S, max_ack_pending=self.prefetch + 2,
                                      inactive_threshold=3600.0))
        evict_sub = await self.bus.nc.subscribe(subjects.evict(self.instance), cb=self._on_evict)
        self.heartbeat.state = "ready"
        await registry.beat(self.bus.instances, self.heartbeat)
        log.info("instance %s ready on %s", self.instance, self.subject)
        tasks = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._pull(sub))]
        try:
            await self._execute()
        finally:
            self.stop()   # nats-py's fetch can swallow a cancellation: the pull loop must see the flag
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await evict_sub.unsubscribe()
            await self._hand_back()
            self.heartbeat.state = "gone"
            await registry.forget(self.bus.instances, self.instance)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _on_evict(self, msg) -> None:
        """Spot-eviction notice (payload: seconds of notice, default 30): take no new task, run
        the queued tasks that fit in the notice (by this instance's mean task time), hand the
        rest back to the scheduler, then stop."""
        try:
            notice_s = float(msg.data or EVICTION_NOTICE_S)
        except ValueError:
            notice_s = EVICTION_NOTICE_S
        log.warning("instance %s: eviction notice (%.0f s), draining", self.instance, notice_s)
        self.heartbeat.state = "draining"
        self._drain_until = time.monotonic() + notice_s
        await registry.beat(self.bus.instances, self.heartbeat)
        self._wake.set()

    async def _heartbeats(self) -> None:
        while True:
            self.heartbeat.queue = len(self._queue)
            try:
                await registry.beat(self.bus.instances, self.heartbeat)
            except Exception as exc:  # a missed beat is survivable; the TTL decides
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(registry.HEARTBEAT_S)

    async def _pull(self, sub) -> None:
        while not self._stop.is_set() and self._drain_until is None:
            room = self.prefetch - len(self._queue)
            if room <= 0:
                await asyncio.sleep(0.005)
                continue
            try:
                msgs = await sub.fetch(batch=room, timeout=1.0)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                continue
            except Exception as exc:  # connection blips: retry shortly
                log.debug("fetch failed: %s", exc)
                await asyncio.sleep(0.2)
                continue
            for msg in msgs:
                await self._admit(msg)
            self._wake.set()

    async def _admit(self, msg) -> None:
        try:
            task = decode(msg.data, Task)
        except MessageError as exc:
            log.error("invalid task on %s: %s", msg.subject, exc)
            await self.bus.deadletter("tasks", msg.data, str(exc))
            await msg.term()
            return
        heapq.heappush(self._queue, (task.deadline, next(self._seq), task, msg))

    def _fits_in_notice(self) -> bool:
        mean = self._busy_s / self.done if self.done else 0.0
        return time.monotonic() + mean <= self._drain_until

    async def _execute(self) -> None:
        while not self._stop.is_set():
            if self._drain_until is not None and not (self._queue and self._fits_in_notice()):
                return   # draining: what is left goes back to the scheduler
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            _, _, task, msg = heapq.heappop(self._queue)
            self.heartbeat.running = 1
            nice = nice_for_slack(task.deadline - time.time()) if self.deadline_priority else 0
            await self._run_one(task, msg, TaskContext(bus=self.bus, instance=self.instance, nice=nice))
            self.heartbeat.running = 0

    async def _run_one(self, task: Task, msg, ctx: TaskContext) -> None:
        started = time.time()
        keepalive = asyncio.create_task(self._keep_alive(msg))
        event = Event(task_id=task.task_id, request_id=task.request_id, node_id=task.node_id,
                      stage=task.stage, instance=self.instance, started_at=started)
        with tracing.tracer().start_as_current_span(task.stage, context=tracing.extract(msg.headers), attributes={
                "streamwise.node": task.node_id, "streamwise.instance": self.instance,
                "streamwise.slack_s": task.deadline - started, "streamwise.attempt": task.attempt}) as span:
            try:
                result = self.adapter.run(task, ctx)
                if hasattr(result, "__anext__"):     # a streaming adapter: partial events first
                    outputs = await self._stream(task, result, ctx, started)
                else:
                    outputs = await result
                event.outputs = await self._store_if_large(task, outputs, ctx)
            except TaskError as exc:
                event.ok, event.error, event.retryable = False, str(exc), exc.retryable
            except Exception as exc:  # an adapter bug or a crashed model: report, let the scheduler retry
                log.error("task %s failed:\n%s", task.task_id, traceback.format_exc())
                event.ok, event.error = False, f"{type(exc).__name__}: {exc}"
            finally:
                keepalive.cancel()
            if not event.ok:
                span.set_status(trace.StatusCode.ERROR, event.error)
        event.finished_at = time.time()
        await self.bus.publish(subjects.events(task.request_id), event, msg_id=f"{task.task_id}:event")
        await msg.ack()
        self.done += 1
        self._busy_s += event.finished_at - started

    async def _store_if_large(self, task: Task, outputs: dict, ctx: TaskContext,
                              name: str = "outputs.msgpack") -> dict:
        """Outputs that would not fit in an event go to the object store as ``{"$ref": name}``."""
        data = encode(outputs)
        if len(data) <= self.bus.max_payload // 2:
            return outputs
        return {"$ref": await self.bus.put_blob(ctx.blob_name(task, name), data)}

    async def _stream(self, task: Task, results, ctx: TaskContext, started: float) -> dict:
        """Publish each :class:`Partial` a streaming adapter yields as a partial event (in
        order, de-duplicated by ``<task id>:partial:<n>``); return its final outputs.

        Raises:
            TaskError: the adapter ended without final outputs.
        """
        final, n = None, 0
        async for item in results:
            if not isinstance(item, Partial):
                final = item
                continue
            n += 1
            outputs = await self._store_if_large(task, item.outputs, ctx, f"partial-{n}.msgpack")
            event = Event(task_id=task.task_id, request_id=task.request_id, node_id=task.node_id, stage=task.stage,
                          instance=self.instance, partial=True, outputs=outputs, started_at=started,
                          finished_at=time.time())
            await self.bus.publish(subjects.events(task.request_id), event, msg_id=f"{task.task_id}:partial:{n}")
        if final is None:
            raise TaskError(f"{self.adapter.model}: the stream ended without final outputs")
        return final

    async def _keep_alive(self, msg) -> None:
        while True:
            await asyncio.sleep(ACK_WAIT_S / 3)
            await msg.in_progress()

    async def _hand_back(self) -> None:
        """Return queued tasks: a ``handed_back`` event lets the scheduler place each one on
        another instance at once, and ``term`` removes it from this instance's subject."""
        while self._queue:
            _, _, task, msg = heapq.heappop(self._queue)
            event = Event(task_id=task.task_id, request_id=task.request_id, node_id=task.node_id, stage=task.stage,
                          instance=self.instance, ok=False, handed_back=True, error="handed back: instance draining",
                          started_at=time.time(), finished_at=time.time())
            try:
                await self.bus.publish(subjects.events(task.request_id), event, msg_id=f"{task.task_id}:event")
                await msg.term()
            except Exception as exc:  # the bus is going away too: the missed heartbeat will resubmit it
                log.warning("could not hand back %s: %s", task.task_id, exc)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (``M_ARENA_MAX``). Workers run each task in a fresh
    thread; with glibc's default of 8 arenas per core the freed frame buffers stay spread over
    many arenas and RSS grows (measured: the mux worker peaked at 524 MB, 353 MB with 2 arenas).
    A no-op where glibc is not the C library."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)   # -8 = M_ARENA_MAX in <malloc.h>
    except (OSError, AttributeError):
        pass


async def serve(url: str, adapter: StageAdapter, **kwargs) -> None:
    """Connect to ``url`` and run a :class:`Worker` for ``adapter`` until cancelled or evicted."""
    limit_malloc_arenas()
    tracing.setup(f"streamwise-{adapter.stage}")
    bus = await connect(url, name=f"streamwise-worker-{adapter.stage}")
    worker = Worker(bus, adapter, **kwargs)
    try:
        await worker.run()
    finally:
        await bus.close()
