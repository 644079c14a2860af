"""The request scheduler service: requests in, DAG expansion, EDF dispatch, status out.

One process may run many requests (one :class:`~streamwise.podcast.PodcastPlan` each);
several processes compete for requests on the ``schedulers`` consumer of
``sw.requests.>``. The busy loop reads as its phases (vLLM v1 style): drain inputs
(requests, completion events, instance changes), schedule (a pure placement decision over
the snapshot), execute (publish tasks), update (status, finished requests).

A request message stays un-acked (with in-progress acks) until its podcast is done, so if
this process dies the request is redelivered to another scheduler (after
``REQUEST_ACK_WAIT_S``), which takes it over: it rebuilds the DAG, and every node already
computed completes from the result cache (KV ``sw_cache``: content-keyed outputs are the
request's checkpoint), so the work resumes rather than restarts. Segments are published
again under the same message ids and viewers de-duplicate them by index.

Beside this module, as mixins of :class:`SchedulerService`: the instance watch and vanished
instances (:mod:`.instances`), the dispatch phase (:mod:`.dispatching`), the result cache
(:mod:`.cache`) and viewers' steering (:mod:`.steering`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import traceback
import uuid
from dataclasses import dataclass, field

import msgpack
from nats.js import api

from opentelemetry import trace

from ..telemetry import tracing
from ..telemetry.metrics import SchedulerMetrics
from ..bus import subjects
from ..bus.aio import cancel_and_wait
from ..bus.client import INSTANCE_TTL_S, REQUEST_ACK_WAIT_S, Bus, PullConsumer
from ..bus.codec import MessageError, decode
from ..bus.payloads import check_outputs
from ..bus.messages import Event, Request, Status
from ..core.deadlines import StageProfile, load_profiles
from ..core.estimate import book
from ..workflow.chain import chain_for
from ..workflow.instances import InstanceState
from ..core.quality import Ladder, QualityState, load_ladders
from ..workflow.podcast import PlanError, PodcastPlan
from ..workflow.steer import on_screenplay, on_segment, persisted, state_key
from .admission import check_dedup_id, check_request, server_side
from .cache import ResultCache
from .dispatching import Dispatching
from .instances import InstanceTracking
from .quota import REFRESH_S, Quotas, TenantLedger
from .steering import Steering

log = logging.getLogger(__name__)

# a request with no completed node for this long is failed with the reason, never kept alive forever
REQUEST_STALL_S = float(os.environ.get("STREAMWISE_REQUEST_STALL_S", "600"))
# the most requests one scheduler process serves at once (issue 14: intake spreads over processes);
# a busy one waits INTAKE_DELAY_S per active request before asking for the next
MAX_REQUESTS = int(os.environ.get("STREAMWISE_MAX_REQUESTS", "64"))
INTAKE_DELAY_S = 0.01


@dataclass
class _Active:
    plan: PodcastPlan
    msg: object                      # the request message, acked when the podcast is done
    events_sub: object = None
    reader: asyncio.Task | None = None
    dispatched: dict[str, tuple[str, str]] = field(default_factory=dict)   # task_id -> (instance, node_id)
    span: object = None              # the request's trace span (a no-op span when tracing is off)
    cache_checked: set[str] = field(default_factory=set)   # node ids already looked up in the cache
    waiting_since: float | None = None   # when a ready node first found no instance of its required model
    progress_at: float = field(default_factory=time.monotonic)   # last completed node (or acceptance)


class SchedulerService(ResultCache, Steering, InstanceTracking, Dispatching):
    """Runs request schedulers on one bus connection until :meth:`stop`.

    ``cap`` is the number of tasks kept outstanding per instance (1 running + prefetch).
    """

    def __init__(self, bus: Bus, *, profiles: dict[str, StageProfile] | None = None, cap: int = 3,
                 ladders: dict[str, Ladder] | None = None, policy: str = "edf", use_cache: bool = True,
                 quotas: Quotas | None = None, max_requests: int = MAX_REQUESTS) -> None:
        self.bus = bus
        self.id = f"scheduler-{os.getpid()}-{uuid.uuid4().hex[:4]}"   # tasks name it; instances report by it
        self.max_requests = max_requests
        self.metrics: SchedulerMetrics | None = None
        self._mass_grace_at = -1e9          # when every worker last went silent at once (monotonic s)
        self.ledger = TenantLedger(bus, quotas)   # per-tenant quotas, counted on the bus
        self.profiles = profiles if profiles is not None else load_profiles()
        self.cap = cap
        self.active: dict[str, _Active] = {}
        self.pool = InstanceState(ttl_s=INSTANCE_TTL_S)
        book()   # load and fit the reference profiles now (~0.1 s), not inside the first dispatch
        self.ladders = ladders if ladders is not None else _default_ladders()
        self.quality_states: dict[str, QualityState] = {}
        self.policy = policy
        self.use_cache = use_cache            # benchmarks of identical requests turn the result cache off
        self.overhead_s: list[float] = []     # scheduler time per dispatched task (placement + publish)
        self.inbox: asyncio.Queue = asyncio.Queue()
        self._stop = asyncio.Event()
        self.draining = False                 # told to stop: take no new request, hand active ones over
        self.dispatch_count = 0
        self._tasks: set[asyncio.Future] = set()            # background clean-ups and failures
        self._publish_failures: dict[tuple[str, str], int] = {}   # (request, node) -> failed publishes in a row

    def attach_metrics(self, readers) -> None:
        """Record this scheduler's metrics (:mod:`streamwise.telemetry.metrics`) into ``readers``
        (none: no metrics)."""
        readers = list(readers)
        if readers:
            self.metrics = SchedulerMetrics(readers, self.pool.views,
                                            lambda: {i: hb.cap for i, hb in self.pool.instances.items()})

    def stop(self) -> None:
        self._stop.set()
        self.inbox.put_nowait(("stop", None))

    async def hand_over(self) -> int:
        """Stop cleanly (SIGTERM): take no new request and give every active one back to the
        bus at once (``nak``), so another scheduler takes it over now rather than after the ack
        wait; it resumes from the result cache and the screenplay checkpoint. Returns how many
        requests were handed over."""
        self.draining = True
        handed = 0
        for active in list(self.active.values()):
            with contextlib.suppress(Exception):
                await active.msg.nak()
                handed += 1
            self.active.pop(active.plan.key, None)
            active.span.end()
        self.stop()
        return handed

    # ------------------------------------------------------------------ inputs
    async def _pull_requests(self) -> None:
        consumer = PullConsumer(self.bus, subjects.requests_all(), durable=subjects.SCHEDULER_CONSUMER,
                                stream=subjects.STREAM_REQUESTS,
                                config=api.ConsumerConfig(ack_wait=REQUEST_ACK_WAIT_S, max_deliver=5))
        try:
            while not self._stop.is_set() and not self.draining:
                if len(self.active) >= self.max_requests:   # full: the other schedulers take the next ones
                    await asyncio.sleep(0.2)
                    continue
                # the busier this scheduler, the later it asks: intake spreads over the processes
                await asyncio.sleep(INTAKE_DELAY_S * len(self.active))
                for msg in await consumer.fetch(batch=1, timeout=1.0):
                    await self.inbox.put(("request", msg))
        finally:
            await consumer.unsubscribe()

    async def _read_events(self, request_id: str, consumer: PullConsumer) -> None:
        # loops on the request being active, not only on cancel(): Python 3.11's wait_for
        # (inside fetch) can swallow a cancellation that races with its timeout
        try:
            while request_id in self.active and not self._stop.is_set():
                for msg in await consumer.fetch(batch=64, timeout=1.0):
                    await self.inbox.put(("event", msg))
        finally:
            await consumer.unsubscribe()

    async def _keep_requests_alive(self) -> None:
        refreshed = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(REQUEST_ACK_WAIT_S / 3)
            for active in list(self.active.values()):
                try:
                    await active.msg.in_progress()
                except Exception:
                    pass
            if time.monotonic() - refreshed > REFRESH_S:   # the quota ledger: these still run
                refreshed = time.monotonic()
                by_tenant: dict[str, list[str]] = {}
                for key, active in list(self.active.items()):
                    by_tenant.setdefault(active.plan.request.tenant, []).append(key)
                for tenant, keys in by_tenant.items():
                    try:
                        await self.ledger.refresh(tenant, keys)
                    except Exception as exc:
                        log.warning("quota ledger of tenant %s not refreshed: %s", tenant, exc)

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Serve until :meth:`stop` is called or the task is cancelled."""
        helpers = [asyncio.create_task(c) for c in
                   (self._pull_requests(), self._watch_instances(), self._keep_requests_alive())]
        steering = await self._subscribe_steering()
        try:
            while not self._stop.is_set():
                try:
                    item = await asyncio.wait_for(self.inbox.get(), timeout=0.5)
                except asyncio.TimeoutError:
                    item = None
                items = [item] if item else []
                while not self.inbox.empty():
                    items.append(self.inbox.get_nowait())
                for kind, payload in items:
                    await self._apply_safely(kind, payload)
                try:
                    await self._schedule_once()
                except Exception:   # a bug in one phase must not end the service: log, carry on
                    log.error("scheduling pass failed:\n%s", traceback.format_exc())
                    await asyncio.sleep(0.1)
        finally:
            for active in self.active.values():
                if active.reader:
                    active.reader.cancel()
            with contextlib.suppress(Exception):
                await steering.unsubscribe()
            await cancel_and_wait(helpers, what="the scheduler's loops")

    async def _schedule_once(self) -> None:
        self._expire_instances()
        await self._fail_stalled()
        scan_started = time.perf_counter()
        ready = self._ready()
        scan_s = time.perf_counter() - scan_started
        ready = await self._serve_from_cache(ready)
        await self._dispatch(ready, scan_s)
        await self._check_missing_models(ready)

    async def _apply_safely(self, kind: str, payload) -> None:
        """Apply one input; an error in it fails only the request it belongs to (poison
        containment: no request, event or heartbeat can end the scheduler)."""
        try:
            await self._apply(kind, payload)
        except Exception as exc:
            log.error("%s message could not be applied:\n%s", kind, traceback.format_exc())
            rid = self._request_of(kind, payload)
            if rid in self.active:
                with contextlib.suppress(Exception):
                    await self._finish(self.active[rid], failed=f"internal error on a {kind}: "
                                                                f"{type(exc).__name__}: {exc}"[:500])
            elif kind in ("request", "event"):
                with contextlib.suppress(Exception):
                    await (payload.term() if kind == "request" else payload.ack())

    @staticmethod
    def _request_of(kind: str, payload) -> str | None:
        """The scoped key (``<tenant>.<request>``) of the request a raw request or event names."""
        if kind not in ("request", "event"):
            return None
        try:
            raw = msgpack.unpackb(payload.data)
            tenant = (subjects.tenant_of_request(payload.subject) if kind == "request"
                      else str(raw.get("tenant", "default")))
            return subjects.scoped(tenant, str(raw.get("request_id")))
        except Exception:
            return None

    async def _fail_stalled(self) -> None:
        """Fail a request that has completed no node for :data:`REQUEST_STALL_S` seconds."""
        now = time.monotonic()
        for active in list(self.active.values()):
            if now - active.progress_at > REQUEST_STALL_S:
                counts = active.plan.dag.counts()
                await self._finish(active, failed=(
                    f"no progress for {REQUEST_STALL_S:.0f} s ({counts.get('dispatched', 0)} tasks outstanding, "
                    f"{counts.get('pending', 0)} waiting): are workers for every stage running?"))

    async def _apply(self, kind: str, payload) -> None:
        if kind == "request":
            await self._on_request(payload)
        elif kind == "event":
            await self._on_event(payload)
        elif kind == "instance":
            self._on_instance(payload)
        elif kind == "steer":
            await self._on_steer(payload)

    async def _on_request(self, msg) -> None:
        try:
            request = decode(msg.data, Request)
            subjects.token(request.request_id)
            server_side(request, msg)
            check_dedup_id(request, msg)
            check_request(request)
        except (MessageError, ValueError) as exc:
            await self._reject(msg, str(exc))
            return
        key = subjects.scoped(request.tenant, request.request_id)
        if key in self.active:
            await msg.ack()  # a duplicate publish of a running request
            return
        if not await self.ledger.admit_or_refuse(request, key, msg):
            return
        chain = chain_for(self.pool.views())   # the GPU chain the pool provisions, fixed for the request
        plan = PodcastPlan(request, self.profiles, epoch=msg.metadata.num_delivered, chain=chain)
        if msg.metadata.num_delivered > 1:   # taking over: its screenplay so far, its steers
            plan = await self._restore(plan)
        active = _Active(plan=plan, msg=msg)
        active.events_sub = PullConsumer(
            self.bus, subjects.events(request.tenant, request.request_id), stream=subjects.STREAM_EVENTS,
            config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.NEW, inactive_threshold=120.0))
        active.span = tracing.tracer().start_span("request", attributes={
            "streamwise.request_id": request.request_id, "streamwise.tenant": request.tenant,
            "streamwise.ttff_s": request.ttff_s})
        self.active[key] = active     # before the reader starts: it loops while active
        active.reader = asyncio.create_task(self._read_events(key, active.events_sub))
        log.info("request %s accepted (tenant %s)", request.request_id, request.tenant)
        await self._status(plan, "accepted", "request accepted")

    async def _reject(self, msg, reason: str) -> None:
        log.error("invalid request: %s", reason)
        await self.bus.deadletter("requests", msg.data, reason)
        try:  # tell the client, if it sent enough for us to know who it is
            raw = msgpack.unpackb(msg.data)
            rid, tenant = subjects.token(raw["request_id"]), subjects.tenant_of_request(msg.subject)
            await self.bus.publish(subjects.status(tenant, rid),
                                   Status(request_id=rid, state="failed", error=f"invalid request: {reason}",
                                          message="invalid request", at=time.time()))
        except Exception:
            pass
        await msg.term()

    async def _on_event(self, msg) -> None:
        with contextlib.suppress(Exception):   # events are de-duplicated by task id: a lost ack is harmless
            await msg.ack()
        try:
            event = decode(msg.data, Event)
        except MessageError as exc:
            await self.bus.deadletter("events", msg.data, str(exc))
            return
        active = self.active.get(subjects.scoped(event.tenant, event.request_id))
        if active is None:
            return
        if event.partial:
            await self._on_partial(active, event)
            return
        instance, _ = active.dispatched.pop(event.task_id, (None, None))
        if instance is not None:
            ran = event.ok and event.finished_at > event.started_at
            self.pool.finished(instance, event.task_id, event.finished_at - event.started_at if ran else None)
        plan = active.plan
        if "$ref" in event.outputs:  # outputs too large for one message were stored as an artifact
            event.outputs = msgpack.unpackb(await self.bus.get_blob(event.outputs["$ref"]))
        _check_outputs(event)
        try:
            node = plan.on_event(event)
        except PlanError as exc:
            await self._finish(active, failed=str(exc))
            return
        if node is None:
            return
        active.progress_at = time.monotonic()
        if self.metrics:
            self.metrics.task_done(node.stage, node.deadline, event.finished_at, rung=event.rung)
            if node.node_id == "seg:0":
                self.metrics.first_frame(plan.request.tenant, event.finished_at - plan.request.submitted_at)
        if node.cache_key and self.use_cache:
            await self._cache_put(plan, node)
        t0 = plan.request.submitted_at
        log.debug("%s %s done on %s: started +%.3f s, ran %.3f s, deadline slack %.3f s", event.request_id,
                  node.node_id, event.instance, event.started_at - t0, event.finished_at - event.started_at,
                  node.deadline - event.finished_at)
        if node.node_id == "screenplay":
            on_screenplay(plan)     # (lines steered away before a takeover are not spoken)
            await self._checkpoint(plan)
            await self._status(plan, "running", f"{plan.lines} lines, {len(plan.speakers)} speakers")
        elif node.stage == "mux":   # (and the steers whose first line it is the first to show)
            shown = on_segment(plan, node, event.finished_at or time.time())
            if shown:   # persisted, so a takeover keeps their steer-to-screen times
                await self._checkpoint(plan)
            steered = "".join(f"; steer to screen {r.steer_to_screen_s:.2f} s" for r in shown)
            await self._status(plan, "running", f"segment {node.inputs['index']} published{steered}")
        if plan.finished:
            await self._finish(active)

    async def _on_partial(self, active: _Active, event: Event) -> None:
        """A streaming task's partial outputs (the LLM screenplay's lines so far): expand the
        DAG now; the task stays outstanding on its instance until its final event."""
        plan = active.plan
        if "$ref" in event.outputs:
            event.outputs = msgpack.unpackb(await self.bus.get_blob(event.outputs["$ref"]))
        try:
            check_outputs(event.stage, event.outputs, partial=True)
        except MessageError as exc:   # the final event brings the whole screenplay again
            log.error("request %s: partial %s ignored: %s", event.request_id, event.node_id, exc)
            return
        lines = plan.lines
        try:
            applied = plan.on_partial(event)
        except PlanError as exc:
            await self._finish(active, failed=str(exc))
            return
        if applied:
            active.progress_at = time.monotonic()
        if applied and plan.lines > lines:
            await self._checkpoint(plan)
            await self._status(plan, "running", f"screenplay: {plan.lines} lines so far")


    # ------------------------------------------------------------------ update
    async def _status(self, plan: PodcastPlan, state: str, message: str, error: str | None = None) -> None:
        status = Status(request_id=plan.request.request_id, state=state, message=message, speakers=plan.speakers,
                        lines=plan.lines, opening_lines=plan.opening_lines, segments_done=plan.segments_done, segments_total=plan.segments_total,
                        video_duration_s=plan.video_duration_s, cache_hits=plan.cache_hits, error=error,
                        screenplay_done_at=plan.screenplay_done_at, received_at=plan.request.submitted_at, scheduler=self.id,
                        steers=list(plan.steers),
                        at=time.time())
        try:
            await self.bus.publish(subjects.status(plan.request.tenant, plan.request.request_id), status)
        except Exception as exc:   # the bus stayed away past the publish retries: the next status says more
            log.warning("request %s: status %r not published: %s", plan.request.request_id, state, exc)

    async def _finish(self, active: _Active, failed: str | None = None) -> None:
        plan = active.plan
        rid = plan.key
        self.active.pop(rid, None)
        if active.reader:
            active.reader.cancel()
        for task_id, (inst, _) in active.dispatched.items():
            self.pool.finished(inst, task_id)
        self.quality_states.pop(rid, None)
        try:
            # charged what it spoke: the whole show, or what was published before it failed
            spoken = plan.video_duration_s
            await self.ledger.release(plan.request.tenant, rid, spoken if spoken is not None else
                                      plan.segment_start(plan.segments_done) / plan.request.fps)
        except Exception as exc:   # the entry goes stale and stops counting after quota.STALE_S
            log.warning("request %s: quota ledger not updated: %s", rid, exc)
        if persisted(plan):   # the takeover state (streamwise.service.steering)
            with contextlib.suppress(Exception):
                await self.bus.cache.delete(state_key(plan))
        active.span.set_attribute("streamwise.segments", plan.segments_done)
        if failed:
            active.span.set_status(trace.StatusCode.ERROR, failed)
        active.span.end()
        if failed:
            log.error("request %s failed: %s", rid, failed)
            await self._status(plan, "failed", "failed", error=failed)
        else:
            log.info("request %s done: %d segments", rid, plan.segments_done)
            await self._status(plan, "done", f"{plan.segments_done} segments")
        try:
            await active.msg.ack()
        except Exception:
            pass
        if active.reader is None:
            await active.events_sub.unsubscribe()


def _check_outputs(event: Event) -> None:
    """A successful event whose outputs do not have its stage's shape (bus/payloads.py) becomes
    a failed, retryable attempt naming the field: the plan never reads a malformed output, and
    a worker that keeps sending them fails its request after the attempts run out."""
    if not event.ok:
        return
    try:
        check_outputs(event.stage, event.outputs)
    except MessageError as exc:
        log.error("request %s: %s from %s: %s", event.request_id, event.node_id, event.instance, exc)
        event.ok, event.retryable, event.error = False, True, str(exc)[:500]


def _default_ladders() -> dict[str, Ladder]:
    """Stage -> quality ladder: talking-head clips climb FantasyTalking's ladder when such
    instances (real or emulated) exist, and fall to the CPU rung (``cpu-head``) otherwise."""
    return {"video": load_ladders()["fantasytalking"]}
