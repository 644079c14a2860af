"""The scheduler service's dispatch phase: one scheduling round (:mod:`streamwise.workflow.dispatch`)
over the active requests, its tasks built and published, and the wait for a missing model.

A mixin of :class:`~streamwise.service.scheduler.SchedulerService`, which provides ``bus``, ``id``,
``active``, ``pool``, ``cap``, ``ladders``, ``quality_states``, ``policy``, ``overhead_s``,
``dispatch_count``, ``_publish_failures``, ``_status`` and ``_finish``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import traceback

from ..bus import subjects
from ..bus.messages import Task
from ..core.dag import Node, NodeState
from ..telemetry import tracing
from ..workflow import dispatch
from ..workflow.podcast import PodcastPlan

log = logging.getLogger("streamwise.service.scheduler")

# how long a node may wait for an instance of its model to appear (seconds)
MISSING_MODEL_WAIT_S = float(os.environ.get("STREAMWISE_MISSING_MODEL_WAIT_S", "60"))


class Dispatching:
    """Place, build and publish the ready nodes of every active request (see the module docstring)."""

    def _ready(self) -> list[tuple[str, int, Node]]:
        """(request id, position, node) of every ready node of every active request
        (:func:`streamwise.workflow.dispatch.scan`)."""
        return dispatch.scan({rid: active.plan for rid, active in self.active.items()})

    async def _dispatch(self, ready_nodes: list[tuple[str, int, Node]], scan_s: float = 0.0) -> None:
        """Place and publish ``ready_nodes``; ``scan_s`` (the time spent finding them) counts in
        the per-task overhead."""
        started = time.perf_counter() - scan_s
        plans = {rid: active.plan for rid, active in self.active.items()}
        decisions, self.quality_states = dispatch.decide(
            plans, ready_nodes, self.pool, me=self.id, cap=self.cap, now=time.time(), ladders=self.ladders,
            states=self.quality_states, policy=self.policy)
        if not decisions:
            return
        sends = []
        for d in decisions:
            rid, node_id = d.node.key
            active = self.active.get(rid)
            if active is None:
                continue
            plan = active.plan
            node = plan.dag[node_id]
            try:
                task = self._task_for(plan, node, d)
            except Exception as exc:   # one request's bad node fails that request only
                log.error("request %s: building the task of %s failed:\n%s", rid, node_id, traceback.format_exc())
                await self._finish(active, failed=f"internal error building {node_id}: {type(exc).__name__}: {exc}")
                continue
            dispatch.commit(node, d, task.dispatched_at)
            active.dispatched[task.task_id] = (d.instance.instance, node_id)
            self.pool.dispatched(d.instance.instance, task.task_id, d.expected_s)
            sends.append((active, node, task, self.bus.publish(
                subjects.tasks(d.instance.model, d.instance.instance), task, msg_id=task.task_id,
                headers=tracing.inject(active.span))))
        # publish the loop's tasks concurrently: their JetStream acks overlap instead of
        # queueing one round trip per task (Nats-Msg-Id keeps a retried publish single)
        results = await asyncio.gather(*(send for *_, send in sends), return_exceptions=True)
        self._publish_results(sends, results)
        if decisions:
            per_task = (time.perf_counter() - started) / len(decisions)
            self.overhead_s.extend([per_task] * len(decisions))

    def _task_for(self, plan: PodcastPlan, node: Node, d) -> Task:
        dispatch.set_rung(plan, node, d, self.ladders)
        return Task(task_id=plan.task_id(node), request_id=plan.request.request_id, tenant=plan.request.tenant,
                    node_id=node.node_id, stage=node.stage, model=d.instance.model, deadline=node.deadline,
                    attempt=node.attempt, inputs=plan.task_inputs(node), quality=plan.quality_of(node),
                    dispatched_at=time.time(), scheduler=self.id)

    def _publish_results(self, sends, results) -> None:
        for (active, node, task, _), result in zip(sends, results):
            if isinstance(result, BaseException):
                log.warning("publishing %s failed (%s): it will be dispatched again", task.task_id, result)
                inst, _ = active.dispatched.pop(task.task_id, (None, None))
                if inst is not None:
                    self.pool.finished(inst, task.task_id)
                if node.state is NodeState.DISPATCHED:
                    active.plan.requeue(node)
                    # back off (1 s doubling to 30 s); the request's stall timeout ends it if the bus never returns
                    key = (active.plan.key, node.node_id)
                    self._publish_failures[key] = failures = self._publish_failures.get(key, 0) + 1
                    node.not_before = time.time() + min(30.0, 2.0 ** (failures - 1))
            else:
                self._publish_failures.pop((active.plan.key, node.node_id), None)
                self.dispatch_count += 1

    async def _check_missing_models(self, ready: list[tuple[str, int, Node]]) -> None:
        """A ready node that needs a model no instance serves (a topic's screenplay needs an
        ``llm`` instance): tell the viewer once, and fail the request with how to start one
        after ``MISSING_MODEL_WAIT_S``, instead of leaving it to wait in silence."""
        needing = [(self.active[rid], node, model) for rid, _, node in ready
                   if rid in self.active and node.state is NodeState.PENDING
                   and (model := self.active[rid].plan.required_model(node)) is not None]
        if not needing:
            return
        served = {v.model for v in self.pool.views()}
        now = time.time()
        for active, node, model in needing:
            if model in served:
                active.waiting_since = None
                continue
            if active.waiting_since is None:
                active.waiting_since = now
                await self._status(active.plan, "running", f"waiting for a {node.stage} instance of model {model!r}")
            elif now - active.waiting_since > MISSING_MODEL_WAIT_S:
                await self._finish(active, failed=(
                    f"no {node.stage} instance of model {model!r} is running (waited {MISSING_MODEL_WAIT_S:.0f} s); "
                    f"start one with `streamwise worker --stage {node.stage} --model {model} --nats URL` "
                    f"or `streamwise up --llm transformers|vllm`"))
