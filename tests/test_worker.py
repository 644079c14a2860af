"""The generic worker loop on a real nats-server: EDF order, events, acks, dead letters, priority."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from streamwise.bus import registry, subjects
from streamwise.bus.codec import decode
from streamwise.bus.messages import Event, Task
from streamwise.stages.runtime.base import TaskContext, TaskError, nice_for_slack
from streamwise.stages.runtime.worker import Worker


class RecordingStage:
    """A minimal stage adapter for exercising the worker loop: it records the order it ran tasks in
    and fails on request. (The loop is generic; the real adapters are tested end to end.)"""

    stage = "screenplay"
    model = "recorder"

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.nice: list[int] = []

    def load(self) -> None:
        pass

    async def run(self, task: Task, ctx: TaskContext) -> dict:
        self.ran.append(task.node_id)
        self.nice.append(await ctx.in_thread(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        if task.inputs.get("fail"):
            raise TaskError("bad input", retryable=False)
        return {"echo": task.node_id}


@pytest.fixture(autouse=True)
async def recorder_tasks(bus):
    """The task stream of the recorder model (``SW_TASKS_recorder``): its tasks are published
    before its worker (which would make it) starts."""
    await bus.task_stream("recorder")


def _task(rid: str, node: str, deadline: float, **inputs) -> Task:
    return Task(task_id=f"{rid}.{node}.1-0", request_id=rid, tenant="t", node_id=node, stage="screenplay",
                model="recorder", deadline=deadline, inputs=inputs)


async def _events(bus, rid: str, n: int) -> list[Event]:
    sub = await bus.js.subscribe(subjects.events("t", rid), stream=subjects.STREAM_EVENTS, ordered_consumer=True)
    out = [decode((await sub.next_msg(timeout=20)).data, Event) for _ in range(n)]
    await sub.unsubscribe()
    return out


async def test_worker_runs_prefetched_tasks_earliest_deadline_first(bus):
    stage = RecordingStage()
    worker = Worker(bus, stage, instance="rec-edf", prefetch=8)
    now = time.time()
    # queued before the worker starts, in the opposite of deadline order
    for node, d in (("late", 30.0), ("mid", 20.0), ("early", 0.5), ("bad", 10.0)):
        await bus.publish(subjects.tasks("recorder", "rec-edf"), _task("edf1", node, now + d, fail=node == "bad"))
    # the consumer is created by the worker; the work-queue stream keeps the tasks until then
    runner = asyncio.create_task(worker.run())
    events = await _events(bus, "edf1", 4)
    worker.stop()
    await runner
    assert stage.ran == ["early", "bad", "mid", "late"]
    by_node = {e.node_id: e for e in events}
    assert by_node["late"].ok and by_node["late"].outputs == {"echo": "late"}
    assert not by_node["bad"].ok and by_node["bad"].error == "bad input" and not by_node["bad"].retryable
    # slack turned into CPU priority: the urgent task ran at normal priority, the late one lower
    assert stage.nice[0] == 0 and stage.nice[-1] >= 5
    subject = subjects.tasks("recorder", "rec-edf")
    info = await bus.js.stream_info(subjects.tasks_stream("recorder"), subjects_filter=subject)
    # every task acked after its event (state.messages counts the whole stream, other tests' tasks too)
    assert (info.state.subjects or {}).get(subject, 0) == 0
    assert "rec-edf" not in {h.instance for h in await registry.list_instances(bus.instances)}


async def test_an_invalid_task_is_dead_lettered_not_retried(bus):
    stage = RecordingStage()
    worker = Worker(bus, stage, instance="rec-dl")
    dead = await bus.js.subscribe(subjects.deadletter("tasks"), stream=subjects.STREAM_DEADLETTER,
                                  ordered_consumer=True)
    await bus.js.publish(subjects.tasks("recorder", "rec-dl"), b"\x81\xa1v\xa3bad")
    runner = asyncio.create_task(worker.run())
    while True:
        letter = await dead.next_msg(timeout=10)
        if letter.data == b"\x81\xa1v\xa3bad":
            break
    worker.stop()
    await runner
    assert stage.ran == [] and "Task" in letter.headers["Sw-Error"]
    await dead.unsubscribe()


class SlowStage(RecordingStage):
    """Takes 0.3 s per task, so an eviction notice finds work queued."""

    async def run(self, task: Task, ctx: TaskContext) -> dict:
        await asyncio.sleep(0.3)
        return await super().run(task, ctx)


async def test_an_eviction_notice_drains_the_worker_and_hands_back_the_rest(bus):
    stage = SlowStage()
    worker = Worker(bus, stage, instance="rec-evict", prefetch=8)
    now = time.time()
    for i in range(6):
        await bus.publish(subjects.tasks("recorder", "rec-evict"), _task("ev1", f"n{i}", now + i))
    runner = asyncio.create_task(worker.run())
    while not stage.ran:
        await asyncio.sleep(0.01)
    await bus.nc.publish(subjects.evict("rec-evict"), b"0.5")    # half a second of notice
    await asyncio.wait_for(runner, 10)
    events = await _events(bus, "ev1", 6)                        # nothing lost: one event per task
    done = [e.node_id for e in events if e.ok]
    back = [e.node_id for e in events if e.handed_back]
    assert done == stage.ran and 1 <= len(done) < 6
    assert sorted(done + back) == [f"n{i}" for i in range(6)]
    assert all(e.handed_back and e.error.startswith("handed back") for e in events if not e.ok)
    assert worker.heartbeat.state == "gone"
    subject = subjects.tasks("recorder", "rec-evict")
    info = await bus.js.stream_info(subjects.tasks_stream("recorder"), subjects_filter=subject)
    # handed-back tasks are gone from the evicted instance's subject (not counting other tests' tasks)
    assert (info.state.subjects or {}).get(subject, 0) == 0


def test_nice_for_slack():
    assert [nice_for_slack(s) for s in (-1, 0.0, 0.9, 1.0, 3.5, 60)] == [0, 0, 0, 1, 3, 10]


async def test_in_thread_raises_priority_only_in_its_own_thread(bus):
    ctx = TaskContext(bus=bus, instance="x", nice=7)
    assert await ctx.in_thread(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) == 7
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0

    def boom():
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await ctx.in_thread(boom)


async def test_a_task_span_is_a_child_of_the_span_in_its_headers(bus):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from streamwise.telemetry import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    worker = Worker(bus, RecordingStage(), instance="rec-trace")
    root = tracing.tracer().start_span("request")
    await bus.publish(subjects.tasks("recorder", "rec-trace"), _task("tr1", "screenplay", time.time() + 5),
                      headers=tracing.inject(root))
    runner = asyncio.create_task(worker.run())
    await _events(bus, "tr1", 1)
    worker.stop()
    await runner
    root.end()
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "screenplay"]
    assert span.parent.span_id == root.get_span_context().span_id
    assert span.attributes["streamwise.node"] == "screenplay" and span.attributes["streamwise.slack_s"] > 0


class TimedStage(RecordingStage):
    """Runs each task for ``inputs["sleep"]`` seconds (a stand-in for a GPU clip's length, scaled
    down together with the ack wait), counting how often each task id ran."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, int] = {}

    async def run(self, task: Task, ctx: TaskContext) -> dict:
        self.runs[task.task_id] = self.runs.get(task.task_id, 0) + 1
        await asyncio.sleep(float(task.inputs.get("sleep", 0)))
        if task.inputs.get("crash"):
            raise RuntimeError("the model crashed")
        return {"echo": task.node_id}


async def _serve(worker: Worker) -> asyncio.Task:
    runner = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 30
    while worker.heartbeat.state != "ready":
        if runner.done():
            runner.result()          # the worker ended before it was ready: its error, not a hang
            raise AssertionError("the worker ended before it was ready")
        assert time.monotonic() < deadline, "the worker was not ready within 30 s"
        await asyncio.sleep(0.01)
    return runner


async def test_tasks_queued_behind_long_ones_past_the_ack_wait_run_once(bus, monkeypatch):
    """Three tasks of 2.5 s each on one instance with a 2 s ack wait (GPU clips of 6-130 s behind a
    30 s ack wait, scaled down): the queued ones wait 2.5 and 5 s, longer than the ack wait. Every
    held message gets in-progress acks, so none is redelivered and each task runs exactly once."""
    import streamwise.stages.runtime.worker as worker_module

    monkeypatch.setattr(worker_module, "ACK_WAIT_S", 2.0)
    stage = TimedStage()
    worker = Worker(bus, stage, instance="rec-ackwait", prefetch=4)
    runner = await _serve(worker)
    try:
        for i in range(3):
            await bus.publish(worker.subject, _task("rAW", f"n{i}", 1e10 + i, sleep=2.5))
        events = await _events(bus, "rAW", 3)
        await asyncio.sleep(2.5)   # a redelivery would arrive within one more ack wait
    finally:
        worker.stop()
        await runner
    assert sorted(e.node_id for e in events) == ["n0", "n1", "n2"] and all(e.ok for e in events)
    assert stage.runs == {f"rAW.n{i}.1-0": 1 for i in range(3)}
    assert worker.duplicates == 0


async def test_a_redelivered_task_id_is_recognised_and_not_run_twice(bus):
    """The same task published twice (as a redelivery after a lost ack would arrive): it runs once,
    one event goes out, and the second copy is counted as a duplicate and acked."""
    stage = TimedStage()
    worker = Worker(bus, stage, instance="rec-dup", prefetch=4)
    runner = await _serve(worker)
    try:
        task = _task("rDUP", "n0", 1e10, sleep=0.5)
        await bus.publish(worker.subject, task)          # no Nats-Msg-Id: the stream keeps both copies
        await bus.publish(worker.subject, task)
        await _events(bus, "rDUP", 1)
        await bus.publish(worker.subject, task)          # and once more after it finished
        deadline = time.monotonic() + 10
        while worker.duplicates < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await runner
    assert stage.runs == {"rDUP.n0.1-0": 1}
    assert worker.duplicates == 2
    info = await bus.js.consumer_info(subjects.tasks_stream("recorder"), "rec-dup")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_poison_task_fails_its_request_and_the_worker_carries_on(bus):
    """A task with a NaN deadline (it would poison the EDF heap) and a task whose adapter raises:
    each gets a failed event (the first not retryable, naming the field); the worker keeps serving."""
    import msgpack

    stage = TimedStage()
    worker = Worker(bus, stage, instance="rec-poison", prefetch=4)
    runner = await _serve(worker)
    try:
        raw = {"task_id": "rP.nan.1-0", "request_id": "rP", "tenant": "t", "node_id": "nan", "stage": "screenplay",
               "model": "recorder", "deadline": float("nan")}
        await bus.js.publish(worker.subject, msgpack.packb(raw))
        bad = await _events(bus, "rP", 1)
        await bus.publish(worker.subject, _task("rP2", "crash", 1e10, crash=True))
        await bus.publish(worker.subject, _task("rP2", "fine", 1e10 + 1))
        crashed, fine = await _events(bus, "rP2", 2)
    finally:
        worker.stop()
        await runner
    assert not bad[0].ok and not bad[0].retryable and "deadline" in bad[0].error
    assert (crashed.node_id, crashed.ok, crashed.retryable) == ("crash", False, True)
    assert "RuntimeError: the model crashed" in crashed.error
    assert (fine.node_id, fine.ok) == ("fine", True)


async def test_a_drain_hands_back_a_task_that_outlives_the_grace_period(bus):
    """SIGTERM's drain with a 0.5 s grace while a 5 s task runs and another waits: the worker
    takes nothing new and hands both back (handed_back events), then stops on its own."""
    stage = TimedStage()
    worker = Worker(bus, stage, instance="rec-drain", prefetch=4)
    runner = await _serve(worker)
    await bus.publish(worker.subject, _task("rDR", "long", 1e10, sleep=5))
    await bus.publish(worker.subject, _task("rDR", "queued", 1e10 + 1, sleep=5))
    while not stage.runs:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    worker.drain(0.5, "test")
    await asyncio.wait_for(runner, 10)
    events = await _events(bus, "rDR", 2)
    assert {e.node_id for e in events} == {"long", "queued"}
    assert all(e.handed_back and not e.ok for e in events)
    assert stage.runs == {"rDR.long.1-0": 1}


def test_outputs_are_named_per_attempt():
    """Two attempts of one node write different object names; one attempt always the same name."""
    from streamwise.stages.runtime.base import TaskContext as Ctx

    ctx = Ctx(bus=None, instance="i")   # type: ignore[arg-type]
    first, retry = _task("r", "clip:0:0", 1.0), _task("r", "clip:0:0", 1.0)
    retry.task_id = "r.clip:0:0.1-1"
    assert ctx.blob_name(first, "clip.mp4") == ctx.blob_name(first, "clip.mp4")
    assert ctx.blob_name(first, "clip.mp4") != ctx.blob_name(retry, "clip.mp4")
    assert ctx.blob_name(first, "clip.mp4").startswith("t/r/clip:0:0/")   # <tenant>/<request>/<node>/
    other_tenant = _task("r", "clip:0:0", 1.0)
    other_tenant.tenant = "u"
    assert ctx.blob_name(other_tenant, "clip.mp4") != ctx.blob_name(first, "clip.mp4")


async def test_a_worker_stops_although_a_loop_swallows_its_cancellation(bus):
    """nats-py turns a cancellation inside a request into a TimeoutError, which a retry loop may
    swallow (CI hung 300 s in ``Worker.run``'s cleanup on a heartbeat loop that never ended). A
    worker whose heartbeat put swallows every cancellation still stops, within a few seconds."""
    stage = TimedStage()
    worker = Worker(bus, stage, instance="rec-stubborn", prefetch=2)
    runner = await _serve(worker)
    real_put = bus.instances.put
    entered = asyncio.Event()

    async def stubborn_put(key, value):
        entered.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:   # as nats-py's next_msg does: the cancel becomes a timeout ...
            pass                         # ... that a retry loop takes as transient
        return await real_put(key, value)

    bus.instances.put = stubborn_put
    try:
        await asyncio.wait_for(entered.wait(), timeout=10)   # the heartbeat loop is inside the put
        worker.stop()
        await asyncio.wait([runner], timeout=15)
    finally:
        bus.instances.put = real_put
    assert runner.done(), "Worker.run did not return within 15 s of stop()"
    assert worker.heartbeat.state == "gone"


async def test_cancel_and_wait_returns_although_a_task_ignores_its_cancellation():
    """A task that swallows one cancellation ends on the next; one that swallows every one is
    left running after the timeout, and the caller is not blocked."""
    from streamwise.bus.aio import cancel_and_wait

    async def once():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(30)

    release = asyncio.Event()

    async def always():
        while not release.is_set():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass

    a, b = asyncio.create_task(once()), asyncio.create_task(always())
    await asyncio.sleep(0)
    t0 = time.monotonic()
    await cancel_and_wait([a, b], timeout_s=1.5)
    assert a.cancelled() and not b.done()
    assert time.monotonic() - t0 < 10
    release.set()
    b.cancel()
    await asyncio.wait([b], timeout=5)
    assert b.done()
