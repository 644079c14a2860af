"""What the scheduler service does about worker instances: the KV watch of heartbeats, instances
that vanish (their outstanding work resubmitted, their consumer and queued tasks removed).

A mixin of :class:`~streamwise.service.scheduler.SchedulerService`, which provides ``bus``,
``pool`` (:class:`~streamwise.workflow.instances.InstanceState`), ``active``, ``inbox``, ``_stop``,
``_tasks``, ``_mass_grace_at`` and ``_finish``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import nats.errors
from nats.js.errors import NotFoundError

from ..bus import registry, subjects
from ..bus.client import INSTANCE_TTL_S
from ..bus.codec import MessageError, decode
from ..bus.messages import Heartbeat
from ..core.dag import NodeState
from ..workflow.podcast import MAX_ATTEMPTS

log = logging.getLogger("streamwise.service.scheduler")

# after a reconnect, instances get this long to beat again before their work is resubmitted
RECONNECT_GRACE_S = 2 * INSTANCE_TTL_S
WATCH_STALL_S = 3 * registry.HEARTBEAT_S   # no heartbeat at all for this long: the KV watch stalled


class InstanceTracking:
    """The scheduler's view of the instances kept current (see the module docstring)."""

    async def _watch_instances(self) -> None:
        """Follow KV ``sw_instances``; the watcher is re-created after a reconnect or an error
        (a restarted server does not resume it), and instances get :data:`RECONNECT_GRACE_S` to
        beat again before their work is resubmitted."""
        while not self._stop.is_set():
            generation = self.bus.reconnects
            try:
                watcher = await self.bus.instances.watchall()
            except Exception as exc:
                log.debug("instance watch failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            last = time.monotonic()
            stalled = False
            try:
                while not self._stop.is_set() and generation == self.bus.reconnects:
                    try:
                        entry = await watcher.updates(timeout=1.0)
                    except (nats.errors.TimeoutError, asyncio.TimeoutError):
                        # live instances beat every 2 s: silence means the watch stalled (the KV's
                        # stream leader moved to another node of a cluster): re-create it before
                        # their heartbeats age out here, though they still reach the bus
                        if self.pool.instances and time.monotonic() - last > WATCH_STALL_S:
                            stalled = True
                            log.warning("instance watch silent for %.0f s: re-creating it", WATCH_STALL_S)
                            break
                        continue
                    if entry is not None:
                        last = time.monotonic()
                        await self.inbox.put(("instance", entry))
            except Exception as exc:
                log.debug("instance watch ended: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(watcher.stop(), timeout=2.0)
            if stalled or generation != self.bus.reconnects:
                self.pool.grace(RECONNECT_GRACE_S)

    def _on_instance(self, entry) -> None:
        if entry.operation in ("DEL", "PURGE") or not entry.value:
            self._instance_gone(entry.key)
            return
        try:
            hb = decode(entry.value, Heartbeat)
        except MessageError:
            return
        self.pool.beat(hb)
        if hb.state == "gone":
            self._instance_gone(hb.instance)

    def _expire_instances(self) -> None:
        expired = self.pool.expired()
        workers = [i for i, hb in self.pool.instances.items() if hb.stage != "scheduler"]
        if len(workers) >= 2 and set(workers) <= set(expired) and time.monotonic() > self._mass_grace_at + 60.0:
            # every worker silent at once: far likelier our view of the bus than all of them dead
            # (a cluster re-electing the KV's leader); give them the reconnect grace, once a minute
            self._mass_grace_at = time.monotonic()
            log.warning("all %d worker instances silent at once: waiting %.0f s before declaring them gone",
                        len(workers), RECONNECT_GRACE_S)
            self.pool.grace(RECONNECT_GRACE_S)
            expired = [i for i in expired if i not in workers]
        for inst in expired:
            self._instance_gone(inst)

    def _instance_gone(self, instance: str) -> None:
        """Resubmit what was outstanding on a vanished instance (missed heartbeats). A lost
        attempt counts as a failure: a task that loses its worker ``MAX_ATTEMPTS`` times (a
        poison task that crashes the process) fails its request with the reason. The instance's
        consumer and queued tasks are removed from the bus (:meth:`_clean_up_instance`)."""
        hb = self.pool.instances.get(instance)
        self.pool.forget(instance)
        if hb is not None and hb.stage != "scheduler":
            self._background(self._clean_up_instance(hb.model, instance))
        for active in list(self.active.values()):
            for task_id, (inst, node_id) in list(active.dispatched.items()):
                if inst != instance:
                    continue
                del active.dispatched[task_id]
                node = active.plan.dag.nodes.get(node_id)
                if node is None or node.state is not NodeState.DISPATCHED:
                    continue
                node.failures += 1
                if node.failures >= MAX_ATTEMPTS:
                    node.state = NodeState.FAILED
                    reason = (f"{node_id} lost its worker {node.failures} times (last: instance {instance}); "
                              f"the task may crash its worker")
                    self._background(self._finish(active, failed=reason))
                    break
                log.warning("instance %s gone: resubmitting %s", instance, node_id)
                active.plan.requeue(node)

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _clean_up_instance(self, model: str, instance: str) -> None:
        """Delete a vanished instance's durable consumer and purge the tasks still queued on its
        subject (they were resubmitted elsewhere): nothing of a dead instance stays on the bus.
        A worker that was only paused re-creates its consumer when it resumes."""
        try:   # the model's own task stream (SW_TASKS_<model>)
            stream = subjects.tasks_stream(model)
            await self.bus.js.purge_stream(stream, subject=subjects.tasks(model, instance))
            await self.bus.js.delete_consumer(stream, instance)
            log.info("instance %s gone: its consumer and queued tasks removed", instance)
        except NotFoundError:
            pass
        except Exception as exc:
            log.debug("cleaning up instance %s: %s", instance, exc)
