"""The generic, stateless stage worker: pull tasks, run them earliest-deadline-first, report.

One process serves one model as one instance. It pulls from its own subject
``sw.tasks.<model>.<instance>`` with a bounded prefetch into a local EDF heap (deadline
order across requests, from the StreamWise scheduler design), runs one task at a time
through the stage adapter, sends in-progress acks for every task it holds, writes outputs
to the object store (named per attempt), publishes a completion event to
``sw.events.<tenant>.<request>`` and only then acks (at-least-once; a redelivered task id is
recognised and not run twice). Heartbeats go to KV ``sw_instances``. An eviction notice on
``sw.control.evict.<instance>``, or SIGTERM, makes it drain: it stops pulling, runs what fits
in the notice or grace period, hands the rest back and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import os
import socket
import time
import traceback
import uuid
from collections import Counter, OrderedDict

import msgpack
from nats.js import api
from opentelemetry import trace

from ...telemetry import tracing
from ...telemetry.health import start_health, stop_health

from ...bus import registry, subjects
from ...bus.payloads import check_inputs
from ...bus.aio import cancel_and_wait
from ...bus.client import ACK_WAIT_S, Bus, PullConsumer, connect, retrying
from ...bus.codec import MessageError, decode, encode
from ...bus.messages import Cancel, Event, Heartbeat, Task
from .base import Partial, StageAdapter, TaskContext, TaskError, nice_for_slack
from .lifecycle import on_stop_signals

log = logging.getLogger(__name__)

EVICTION_NOTICE_S = 30.0   # spot VMs' eviction notice (Azure: 30 s; the StreamWise design notes)


def new_instance_id(stage: str) -> str:
    """``<stage>-<host>-<pid>-<4 hex>``: unique, a valid subject token."""
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:24] or "host"
    return subjects.token(f"{stage}-{host}-{os.getpid()}-{uuid.uuid4().hex[:4]}")


class Worker:
    """Runs one :class:`StageAdapter` as one bus instance until stopped, drained or evicted.

    ``prefetch`` bounds how many tasks sit in the local EDF queue (not counting the running one).
    ``deadline_priority``: run tasks with deadline slack at a lower CPU priority
    (:func:`~streamwise.stages.base.nice_for_slack`), so co-located workers share cores by urgency.

    Delivery is at least once, done right: every message the worker holds, queued or running,
    gets in-progress acks (so JetStream does not redeliver a task that merely waits its turn);
    a redelivered task id that is queued or running here is merged with the copy held, and one
    that already finished is acked without running again (the last :data:`SEEN_TASKS` ids are
    remembered); outputs are named per attempt (:meth:`TaskContext.blob_name`). No task,
    valid or not, can end the process: a failure becomes a failed event for that task only.
    """

    SEEN_TASKS = 4096

    def __init__(self, bus: Bus, adapter: StageAdapter, *, instance: str | None = None,
                 hardware: str = "cpu", gpus: int = 0, prefetch: int = 4,
                 deadline_priority: bool | None = None, emulated: bool = False) -> None:
        self.bus = bus
        self.adapter = adapter
        self.instance = instance or new_instance_id(adapter.stage)
        self.prefetch = prefetch
        self.stream = subjects.tasks_stream(adapter.model)   # the model's task stream (settled again in run)
        # tasks with slack run at a lower CPU priority ($STREAMWISE_DEADLINE_PRIORITY=0 turns it off)
        self.deadline_priority = (os.environ.get("STREAMWISE_DEADLINE_PRIORITY", "1") != "0"
                                  if deadline_priority is None else deadline_priority)
        self.heartbeat = Heartbeat(instance=self.instance, stage=adapter.stage, model=adapter.model,
                                   hardware=hardware, gpus=gpus, emulated=emulated, state="starting",
                                   cap=prefetch + 2,
                                   pid=os.getpid(),
                                   host=socket.gethostname())
        self._queue: list[tuple[float, int, Task]] = []
        self._held: dict[str, list] = {}               # task id -> its messages (queued or running)
        self._finished: OrderedDict[str, None] = OrderedDict()   # task ids whose event went out
        self._seq = itertools.count()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._drain_until: float | None = None   # monotonic end of an eviction notice or SIGTERM grace
        self._draining = asyncio.Event()
        self._running: asyncio.Task | None = None
        self._current: Task | None = None          # the task running now
        self._cancelled: str | None = None         # the task id its scheduler cancelled while it ran
        self.duplicates = 0                       # redeliveries recognised and not run twice
        self.done = 0
        self._busy_s = 0.0

    @property
    def cap(self) -> int:
        """The most tasks the server delivers to this instance unacknowledged (its consumer's
        ``max_ack_pending``): the local queue's prefetch, the running task and one redelivery."""
        return self.prefetch + 2

    @property
    def subject(self) -> str:
        return subjects.tasks(self.adapter.model, self.instance)

    async def run(self) -> None:
        """Load the adapter, register, and serve tasks until :meth:`stop`, a drain or an eviction."""
        await self._register()
        await asyncio.to_thread(self.adapter.load)
        self.heartbeat.model = self.adapter.model     # an adapter may settle its model on load
        # the model's own task stream (SW_TASKS_<model>): made here on a bus without auth, by the admin otherwise
        self.stream = await self.bus.task_stream(self.adapter.model)
        consumer = PullConsumer(self.bus, self.subject, durable=self.instance, stream=self.stream,
                                config=api.ConsumerConfig(ack_wait=ACK_WAIT_S, max_ack_pending=self.cap,
                                                          inactive_threshold=3600.0))
        evict_sub = await self.bus.nc.subscribe(subjects.evict(self.instance), cb=self._on_evict)
        cancel_sub = await self.bus.nc.subscribe(subjects.cancel(self.instance), cb=self._on_cancel)
        self.heartbeat.state = "ready"
        await self._register()
        log.info("instance %s ready on %s", self.instance, self.subject)
        tasks = [asyncio.create_task(self._heartbeats()), asyncio.create_task(self._pull(consumer)),
                 asyncio.create_task(self._keep_alive())]
        try:
            await self._execute()
        finally:
            self.stop()   # nats-py's fetch can swallow a cancellation: the pull loop must see the flag
            # let the pull loop finish its fetch (at most its 1 s timeout) and queue what it got,
            # so every message this instance was delivered is handed back below, none left in limbo
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(tasks[1]), timeout=2.5)
            await cancel_and_wait(tasks, what=f"instance {self.instance}'s loops")
            for sub in (evict_sub, cancel_sub):
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            await self._hand_back()
            self.heartbeat.state = "gone"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(registry.forget(self.bus.instances, self.instance), timeout=5.0)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _register(self) -> None:
        """Put the heartbeat, retrying while the bus is not ready (a cluster electing leaders)."""
        await retrying(f"register {self.instance}", lambda: registry.beat(self.bus.instances, self.heartbeat))

    def drain(self, grace_s: float, why: str = "stopping") -> None:
        """Take no new task; run the queued tasks that fit in ``grace_s`` seconds (by this
        instance's mean task time), hand the rest back, and stop. A running task that is not done
        when the grace period ends is handed back too (SIGTERM, spot eviction)."""
        if self._drain_until is not None:
            return
        log.warning("instance %s: %s, draining (%.0f s grace)", self.instance, why, grace_s)
        self.heartbeat.state = "draining"
        self._drain_until = time.monotonic() + grace_s
        self._draining.set()
        asyncio.get_running_loop().create_task(self._beat_once())
        self._wake.set()

    async def _beat_once(self) -> None:
        with contextlib.suppress(Exception):
            await registry.beat(self.bus.instances, self.heartbeat)

    async def _on_evict(self, msg) -> None:
        """Spot-eviction notice (payload: seconds of notice, default 30): :meth:`drain`.

        A JetStream delivery (reply subject ``$JS.ACK.…``) is never a notice: any user allowed
        to create a push consumer can point its deliveries at any subject, this one included
        (docs/security.md); the notice is a plain core-NATS publish, which only the admin's
        permissions allow."""
        if (msg.reply or "").startswith("$JS.ACK.") or (msg.headers or {}).get("Nats-Stream"):
            log.warning("instance %s: ignored a JetStream delivery on its eviction subject", self.instance)
            return
        try:
            notice_s = float(msg.data or EVICTION_NOTICE_S)
        except ValueError:
            notice_s = EVICTION_NOTICE_S
        if not math.isfinite(notice_s) or notice_s < 0:
            notice_s = EVICTION_NOTICE_S
        self.drain(notice_s, f"eviction notice ({notice_s:.0f} s)")

    async def _on_cancel(self, msg) -> None:
        """A scheduler no longer wants a task's outputs (:class:`Cancel`, e.g. the LLM attempt a
        viewer's steer replaced): a queued copy is dropped, a running one cancelled (a streaming
        LLM stops at its next token); either way its messages are acked with no event, and a
        redelivery is recognised as finished. A JetStream delivery on this subject is ignored."""
        if (msg.reply or "").startswith("$JS.ACK.") or (msg.headers or {}).get("Nats-Stream"):
            return
        try:
            task_id = decode(msg.data, Cancel).task_id
        except MessageError as exc:
            log.warning("instance %s: invalid cancel notice: %s", self.instance, exc)
            return
        if self._current is not None and self._current.task_id == task_id and self._running is not None:
            self._cancelled = task_id
            self._running.cancel()       # _wait_running acks it
            return
        if any(t.task_id == task_id for _, _, t in self._queue):
            self._queue = [e for e in self._queue if e[2].task_id != task_id]
            heapq.heapify(self._queue)
            await self._drop(task_id)

    async def _drop(self, task_id: str) -> None:
        """Ack a cancelled task's messages without an event and remember it as finished."""
        self._remember(task_id)
        for m in self._held.pop(task_id, []):
            with contextlib.suppress(Exception):
                await m.ack()
        log.info("task %s cancelled by its scheduler", task_id)

    async def _heartbeats(self) -> None:
        while not self._stop.is_set():    # the flag as well as cancel(): see cancel_and_wait
            self.heartbeat.queue = len(self._queue)
            held = Counter(t.scheduler for _, _, t in self._queue)
            if self._current is not None:
                held[self._current.scheduler] += 1
            self.heartbeat.held_by = dict(held)
            with contextlib.suppress(Exception):   # tasks on our subject the server has not delivered yet
                info = await asyncio.wait_for(self.bus.js.consumer_info(self.stream, self.instance), 1.0)
                self.heartbeat.pending = int(info.num_pending or 0)
            try:
                await registry.beat(self.bus.instances, self.heartbeat)
            except Exception as exc:  # a missed beat is survivable; the TTL decides
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(registry.HEARTBEAT_S)

    async def _pull(self, consumer: PullConsumer) -> None:
        try:
            while not self._stop.is_set() and self._drain_until is None:
                room = self.prefetch - len(self._queue)
                if room <= 0:
                    await asyncio.sleep(0.005)
                    continue
                msgs = await consumer.fetch(batch=room, timeout=1.0)
                for msg in msgs:
                    try:
                        await self._admit(msg)
                    except Exception:   # never let one message end the pull loop
                        log.error("admitting a task failed:\n%s", traceback.format_exc())
                if msgs:
                    self._wake.set()
        finally:
            await consumer.unsubscribe()

    async def _admit(self, msg) -> None:
        try:
            task = decode(msg.data, Task)
            check_inputs(task.stage, task.inputs)      # the stage's typed inputs (bus/payloads.py)
        except MessageError as exc:
            log.error("invalid task on %s: %s", msg.subject, exc)
            await self.bus.deadletter("tasks", msg.data, str(exc))
            await self._refuse(msg.data, f"invalid task: {exc}")
            await msg.term()
            return
        if task.task_id in self._finished:     # redelivered after its event went out (a lost ack)
            self.duplicates += 1
            log.info("task %s redelivered after it finished: acked, not run again", task.task_id)
            await msg.ack()
            return
        if task.task_id in self._held:         # redelivered while queued or running here
            self.duplicates += 1
            log.info("task %s redelivered while held: merged, not run twice", task.task_id)
            self._held[task.task_id].append(msg)
            return
        self._held[task.task_id] = [msg]
        heapq.heappush(self._queue, (task.deadline, next(self._seq), task))
        self.heartbeat.peak_held = max(self.heartbeat.peak_held, len(self._held))

    async def _refuse(self, data: bytes, reason: str) -> None:
        """Tell the scheduler that a task it sent cannot be decoded (a failed, non-retryable
        event), when the raw map names the task; otherwise the dead letter is all there is."""
        try:
            raw = msgpack.unpackb(data)
            event = Event(task_id=str(raw["task_id"]), request_id=subjects.token(str(raw["request_id"])),
                          tenant=subjects.token(str(raw.get("tenant", "default"))), node_id=str(raw["node_id"]), stage=str(raw.get("stage", self.adapter.stage)),
                          instance=self.instance, ok=False, retryable=False, error=reason[:500],
                          started_at=time.time(), finished_at=time.time())
        except Exception:
            return
        with contextlib.suppress(Exception):
            await self.bus.publish(subjects.events(event.tenant, event.request_id), event, msg_id=f"{event.task_id}:event")

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
            _, _, task = heapq.heappop(self._queue)
            self.heartbeat.running = 1
            self._current = task
            try:
                slack = task.deadline - time.time()
                nice = nice_for_slack(slack) if self.deadline_priority else 0
                self._running = asyncio.create_task(
                    self._run_one(task, TaskContext(bus=self.bus, instance=self.instance, nice=nice)))
                await self._wait_running(task)
            except Exception:   # a bug outside the adapter: this task fails, the worker carries on
                log.error("task %s: unexpected error:\n%s", task.task_id, traceback.format_exc())
            finally:
                self._running = None
                self._current = None
                self.heartbeat.running = 0

    async def _wait_running(self, task: Task) -> None:
        """Await the running task; if a drain's grace period ends first (a drain that starts
        meanwhile is noticed at once), cancel it and hand it back."""
        drained = asyncio.ensure_future(self._draining.wait())
        waiters = {self._running, drained}
        try:
            while True:
                timeout = None if self._drain_until is None else max(0.0, self._drain_until - time.monotonic())
                done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if self._running in done:
                    if self._running.cancelled() and self._cancelled == task.task_id:
                        await self._drop(task.task_id)     # its scheduler cancelled it (_on_cancel)
                        return
                    self._running.result()
                    return
                waiters.discard(drained)
                if self._drain_until is not None and time.monotonic() >= self._drain_until:
                    self._running.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._running
                    if task.task_id in self._held:
                        log.warning("task %s did not finish within the grace period: handed back", task.task_id)
                        await self._hand_back_one(task, "handed back: instance stopping (grace period over)")
                    return
        finally:
            drained.cancel()

    async def _run_one(self, task: Task, ctx: TaskContext) -> None:
        started = time.time()
        event = Event(task_id=task.task_id, request_id=task.request_id, tenant=task.tenant, node_id=task.node_id,
                      stage=task.stage, instance=self.instance, started_at=started, deadline=task.deadline,
                      rung=task.quality.rung if task.stage == "video" else None,
                      dispatched_at=task.dispatched_at or None)
        with tracing.tracer().start_as_current_span(task.stage, context=self._trace_context(task), attributes={
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
                event.ok, event.error = False, f"{type(exc).__name__}: {exc}"[:1000]
            if not event.ok:
                span.set_status(trace.StatusCode.ERROR, event.error)
        event.finished_at = time.time()
        try:
            await self.bus.publish(subjects.events(task.tenant, task.request_id), event, msg_id=f"{task.task_id}:event")
        except Exception as exc:
            # the bus stayed away longer than the publish retries: leave the message un-acked, so
            # JetStream redelivers it once the bus is back (to this instance, or the scheduler resubmits)
            log.error("task %s: could not publish its event (%s); it will be redelivered", task.task_id, exc)
            self._held.pop(task.task_id, None)
            return
        self._remember(task.task_id)
        for msg in self._held.pop(task.task_id, []):
            with contextlib.suppress(Exception):   # a lost ack: the redelivery is recognised as finished
                await msg.ack()
        self.done += 1
        self._busy_s += event.finished_at - started

    def _trace_context(self, task: Task):
        msgs = self._held.get(task.task_id) or [None]
        return tracing.extract(getattr(msgs[0], "headers", None))

    def _remember(self, task_id: str) -> None:
        self._finished[task_id] = None
        while len(self._finished) > self.SEEN_TASKS:
            self._finished.popitem(last=False)

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
            event = Event(task_id=task.task_id, request_id=task.request_id, tenant=task.tenant, node_id=task.node_id, stage=task.stage,
                          instance=self.instance, partial=True, outputs=outputs, started_at=started,
                          finished_at=time.time())
            await self.bus.publish(subjects.events(task.tenant, task.request_id), event, msg_id=f"{task.task_id}:partial:{n}")
        if final is None:
            raise TaskError(f"{self.adapter.model}: the stream ended without final outputs")
        return final

    async def _keep_alive(self) -> None:
        """In-progress acks for every message held, queued or running, every third of the ack
        wait: a task that waits its turn behind long ones (GPU clips: 6-130 s) is not redelivered."""
        while not self._stop.is_set():
            await asyncio.sleep(ACK_WAIT_S / 3)
            for msg in [m for msgs in list(self._held.values()) for m in msgs]:
                with contextlib.suppress(Exception):   # an outage: the server redelivers, we de-duplicate
                    await msg.in_progress()

    async def _hand_back_one(self, task: Task, why: str) -> None:
        msgs = self._held.pop(task.task_id, [])
        event = Event(task_id=task.task_id, request_id=task.request_id, tenant=task.tenant, node_id=task.node_id, stage=task.stage,
                      instance=self.instance, ok=False, handed_back=True, error=why,
                      started_at=time.time(), finished_at=time.time())
        try:
            await self.bus.publish(subjects.events(task.tenant, task.request_id), event, msg_id=f"{task.task_id}:event")
            for msg in msgs:
                await msg.term()
            log.info("task %s handed back (%s)", task.task_id, why)
        except Exception as exc:  # the bus is going away too: the missed heartbeat will resubmit it
            log.warning("could not hand back %s: %s", task.task_id, exc)

    async def _hand_back(self) -> None:
        """Return queued tasks: a ``handed_back`` event lets the scheduler place each one on
        another instance at once, and ``term`` removes it from this instance's subject."""
        while self._queue:
            _, _, task = heapq.heappop(self._queue)
            await self._hand_back_one(task, "handed back: instance draining")


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


STOP_GRACE_S = float(os.environ.get("STREAMWISE_STOP_GRACE_S", "25"))
"""Seconds a worker told to stop (SIGTERM, SIGINT) has to finish or hand back what it holds.
Below Kubernetes' default 30 s termination grace period."""


async def serve(url: str, adapter: StageAdapter, *, grace_s: float | None = None, health_port: int | None = None,
                **kwargs) -> None:
    """Connect to ``url`` and run a :class:`Worker` for ``adapter`` until evicted or told to
    stop: SIGTERM or SIGINT drains it (:meth:`Worker.drain`, ``grace_s`` seconds, default
    :data:`STOP_GRACE_S`); a second signal stops it at once (queued tasks are still handed back).
    ``health_port``: serve ``/healthz`` (connected), ``/readyz`` (registered ready) there
    (:mod:`streamwise.telemetry.health`; ``None``: off)."""
    limit_malloc_arenas()
    tracing.setup(f"streamwise-{adapter.stage}")
    bus = await connect(url, name=f"streamwise-worker-{adapter.stage}")
    worker = Worker(bus, adapter, **kwargs)
    grace = STOP_GRACE_S if grace_s is None else grace_s
    health = await start_health(health_port, live=lambda: bus.nc.is_connected,
                                ready=lambda: bus.nc.is_connected and worker.heartbeat.state == "ready")

    def on_signal() -> None:
        if worker._drain_until is None:
            worker.drain(grace, "told to stop")
        else:
            worker.stop()

    try:
        with on_stop_signals(on_signal):
            await worker.run()
    finally:
        await stop_health(health)
        await bus.close()
