"""Viewers steering a running request (``Steer`` on ``sw.control.steer.<tenant>.<request>``, core
NATS request/reply): end it after the line now playing, skip the next lines, or (a topic or
document request) give the LLM a direction to continue the screenplay with. A mixin of
:class:`~streamwise.service.scheduler.SchedulerService`, which provides ``bus``, ``active``,
``inbox``, ``pool``, ``profiles``, ``_status``, ``_finish`` and ``_cache_get``. A steer is
persisted at once with the screenplay's checkpoint (:meth:`Steering._checkpoint`,
:func:`streamwise.workflow.steer.checkpoint`), so a scheduler taking the request over continues
the steered show (:meth:`Steering._restore`); the plan does the work
(:meth:`~streamwise.workflow.podcast.PodcastPlan.end_after_current_line`,
:meth:`~streamwise.workflow.podcast.PodcastPlan.skip_ahead`, :func:`streamwise.workflow.steer.direct`);
the LLM task a direction replaces is cancelled on its worker (``Cancel`` on
``sw.control.cancel.<instance>``), so it does not hold the LLM instance the continuation needs."""

from __future__ import annotations

import contextlib
import logging
import os
import time

import msgpack

from ..bus import subjects
from ..bus.codec import MessageError, decode, encode
from ..bus.messages import Cancel, Steer, SteerReply
from ..workflow.podcast import PlanError, PodcastPlan
from ..workflow.steer import checkpoint, direct, persisted, restore, state_key

log = logging.getLogger(__name__)


def steer_lead_s() -> float | None:
    """``$STREAMWISE_STEER_LEAD_S``: seconds of show a direction keeps past the first segment not yet
    dispatched (see :mod:`streamwise.workflow.steer`); None (the plan's rule) when unset or not a
    non-negative number."""
    try:
        value = float(os.environ.get("STREAMWISE_STEER_LEAD_S", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


class Steering:
    """Steer messages of the scheduler service: every scheduler subscribes, the one running the
    request answers (the others stay silent, so the sender gets exactly one answer or none)."""

    async def _subscribe_steering(self):
        """Subscribe to every request's steer subject; messages go through the service's inbox, so
        they are applied between scheduling passes like events. nats-py re-subscribes a core
        subscription after a reconnect. Returns the subscription."""
        async def on_steer(msg) -> None:
            await self.inbox.put(("steer", msg))
        return await self.bus.nc.subscribe(subjects.steer_all(), cb=on_steer)

    async def _on_steer(self, msg) -> None:
        """A viewer's :class:`Steer` for a request: answered only by the scheduler running it."""
        try:
            steer = decode(msg.data, Steer)
        except MessageError as exc:
            if msg.reply:
                await self.bus.nc.publish(msg.reply, encode(SteerReply(ok=False, error=str(exc))))
            return
        # the tenant and request of the subject, which the sender's permissions fix, not the body's
        parts = msg.subject.split(".")
        tenant, rid = (parts[-2], parts[-1]) if len(parts) >= 2 else (steer.tenant, steer.request_id)
        active = self.active.get(subjects.scoped(tenant, rid))
        if active is None or rid != steer.request_id:
            return   # another scheduler's request (or nobody's: the sender's request times out)
        plan = active.plan
        try:
            if steer.action == "end":
                last = plan.end_after_current_line()
                reply = SteerReply(ok=True, last_line=last, segments_total=plan.segments_total)
                done = f"ends after line {last + 1}"
            elif steer.action == "direct":
                record, cancel = direct(plan, steer.direction or "", time.time(), lead=steer_lead_s())
                for task_id, instance in cancel:
                    await self._cancel_task(active, task_id, instance, "replaced by a steered continuation")
                reply = SteerReply(ok=True, last_line=record.kept_through, replaced=record.replaced,
                                   first_line=record.first_line, segments_total=plan.segments_total)
                done = (f"continues after line {record.kept_through + 1} with a direction"
                        f" ({len(record.replaced)} line{'s' if len(record.replaced) != 1 else ''} replaced)")
            else:
                skipped = plan.skip_ahead(steer.lines)
                reply = SteerReply(ok=True, skipped=skipped, segments_total=plan.segments_total)
                done = f"skips line{'s' if len(skipped) > 1 else ''} {', '.join(str(i + 1) for i in skipped)}"
        except PlanError as exc:
            reply = SteerReply(ok=False, error=str(exc))
        else:
            log.info("request %s steered: %s", steer.request_id, done)
            await self._checkpoint(plan)   # a scheduler taking the request over continues the steered show
            await self._status(plan, "running", f"steered: {done}")
        if msg.reply:
            with contextlib.suppress(Exception):
                await self.bus.nc.publish(msg.reply, encode(reply))
        if plan.finished:
            await self._finish(active)


    async def _cancel_task(self, active, task_id: str, instance: str | None, why: str) -> None:
        """Forget a dispatched task whose outputs are no longer wanted and tell its instance to stop it
        (the plan already ignores its events: the node has a new attempt). A lost notice only costs the
        instance the rest of the task's run."""
        inst, _ = active.dispatched.pop(task_id, (instance, None))
        if inst is None:
            return
        self.pool.finished(inst, task_id)
        with contextlib.suppress(Exception):
            await self.bus.nc.publish(subjects.cancel(inst), encode(Cancel(task_id=task_id, reason=why)))
        log.info("task %s cancelled on %s: %s", task_id, inst, why)

    async def _checkpoint(self, plan: PodcastPlan) -> None:
        """Write what a scheduler taking the request over needs (KV ``sw_cache``,
        :func:`~streamwise.workflow.steer.state_key`): an LLM screenplay's lines so far (on every
        screenplay event), so it continues the same show instead of asking the LLM for a new one
        under segments already streamed, and the steers and their effect (on every steer, and
        when a steered line reaches the screen). Nothing for a script never steered."""
        if persisted(plan):
            try:
                await self.bus.cache.put(state_key(plan), msgpack.packb(checkpoint(plan)))
            except Exception as exc:
                log.warning("request %s: could not checkpoint it: %s", plan.request.request_id, exc)

    async def _restore(self, plan: PodcastPlan) -> PodcastPlan:
        """A request taken over from a scheduler that died: ``plan`` (fresh) continued from the
        state :meth:`_checkpoint` wrote, if any; a fresh plan again if that state is unusable."""
        saved = await self._cache_get(state_key(plan))
        if saved is None:
            return plan
        try:
            restore(plan, saved)
        except PlanError as exc:
            log.error("request %s: checkpoint unusable (%s); starting over", plan.request.request_id, exc)
            return PodcastPlan(plan.request, self.profiles, epoch=plan.epoch, chain=plan.chain)
        kept = [f"{len(plan.steers)} direction{'s' if len(plan.steers) != 1 else ''}"] if plan.steers else []
        kept += [f"{len(plan.skipped)} line{'s' if len(plan.skipped) != 1 else ''} skipped"] if plan.skipped else []
        kept += [f"ends after line {plan.cut_line + 1}"] if plan.cut_line is not None else []
        log.info("request %s: resuming %s from a checkpoint (%d lines%s)%s", plan.request.request_id,
                 "its screenplay" if plan.is_topic else "its steers", plan.lines,
                 ", complete" if saved.get("complete") else "", f"; steered: {', '.join(kept)}" if kept else "")
        return plan
