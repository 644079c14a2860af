"""Schedulers that share one pool (issue 14, item 4).

Instances report, in their heartbeats, the tasks they hold per dispatching scheduler and what
waits undelivered on their subject; every scheduler counts the other schedulers' tasks in its
snapshot, so together they keep an instance within its cap, and each scheduler caps its active
requests so intake spreads over the processes. Tested on the placement decision itself and
end to end with two scheduler processes on a real nats-server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from streamwise.bus import registry, subjects
from streamwise.bus.client import connect
from streamwise.bus.codec import decode
from streamwise.bus.messages import Heartbeat, Request
from streamwise.bus.server import EmbeddedServer
from streamwise.client import generate
from streamwise.core.placement import ReadyNode, assign
from streamwise.workflow.instances import InstanceState
from streamwise.service.pool import Pool

ROOT = Path(__file__).parent.parent


def test_a_scheduler_counts_the_other_schedulers_tasks_and_keeps_within_the_cap():
    state = InstanceState(ttl_s=10.0)
    state.beat(Heartbeat(instance="v0", stage="video", model="cpu-head", state="ready", cap=3,
                         held_by={"me": 1, "other": 1}, pending=1))
    state.dispatched("v0", "me-task-1", 2.0)                   # ours, held by the instance
    # the instance holds 1 of ours and 1 of the other's, and 1 task waits undelivered: ours are all
    # delivered, so the waiting one is the other scheduler's too
    assert state.others(state.instances["v0"], "me") == 2
    view = state.views("me")[0]
    assert view.outstanding == 3 and view.queued_s == 2.0 + 2 * 1.0
    node = ReadyNode(("r", "clip"), "video", 100.0, "r", (0.0, 0))
    decisions, _ = assign([node], state.views("me"), cap=3, now=0.0, runtime_s=lambda *a: 1.0,
                          ladders={}, states={})
    assert decisions == []                                     # full with the other's tasks: wait
    alone, _ = assign([node], state.views(""), cap=3, now=0.0, runtime_s=lambda *a: 1.0, ladders={}, states={})
    assert [d.instance.instance for d in alone] == ["v0"]      # blind to the other: it would overfill
    # once the other scheduler's tasks are done (next heartbeat), there is room again
    state.beat(Heartbeat(instance="v0", stage="video", model="cpu-head", state="ready", cap=3,
                         held_by={"me": 1}, pending=0))
    assert state.others(state.instances["v0"], "me") == 0
    assert len(assign([node], state.views("me"), cap=3, now=0.0, runtime_s=lambda *a: 1.0,
                      ladders={}, states={})[0]) == 1


async def test_two_schedulers_share_intake_and_never_overfill_an_instance(tmp_path):
    before = os.environ.get("STREAMWISE_MAX_REQUESTS")
    os.environ["STREAMWISE_MAX_REQUESTS"] = "2"       # each scheduler process serves 2 at most at once
    try:
        with EmbeddedServer() as server:
            with Pool(server.url, log_dir=tmp_path / "logs", extra=[("scheduler-2", ["scheduler"])]) as pool:
                bus = await connect(server.url)
                try:
                    await asyncio.wait_for(_wait_for_schedulers(bus, pool, 2), 90)
                    script = (ROOT / "tests" / "data" / "scripts" / "two_speakers.txt").read_text(encoding="utf-8")
                    requests = [Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0, script=script,
                                        width=320, height=200) for _ in range(5)]
                    schedulers: dict[str, str] = {}

                    def seen(rid):
                        def on(kind, info):
                            if kind == "status" and info.get("scheduler"):
                                schedulers[rid] = info["scheduler"]
                        return on

                    reports = await asyncio.gather(*(
                        generate(bus, r, tmp_path / r.request_id, idle_timeout_s=180, progress=seen(r.request_id))
                        for r in requests))
                    assert all(rep.segments and rep.segments[-1].start_s + rep.segments[-1].duration_s == rep.video_duration_s
                               for rep in reports)   # every show arrived whole
                    assert len(set(schedulers.values())) == 2, schedulers   # both processes served requests
                    beats = await _heartbeats(bus)
                    workers = [hb for hb in beats if hb.stage != "scheduler"]
                    assert workers and all(hb.cap > 0 for hb in workers)
                    # no instance ever held more than its cap, from both schedulers together
                    assert all(hb.peak_held <= hb.cap for hb in workers), [(hb.instance, hb.peak_held) for hb in workers]
                    assert max(hb.peak_held for hb in workers) >= 1
                    for hb in workers:   # and the server enforces it: it delivers at most cap unacked
                        info = await bus.js.consumer_info(subjects.tasks_stream(hb.model), hb.instance)
                        assert info.config.max_ack_pending == hb.cap
                finally:
                    await bus.close()
    finally:
        if before is None:
            os.environ.pop("STREAMWISE_MAX_REQUESTS", None)
        else:
            os.environ["STREAMWISE_MAX_REQUESTS"] = before


async def _heartbeats(bus) -> list[Heartbeat]:
    out = []
    for key in await bus.instances.keys():
        try:
            out.append(decode((await bus.instances.get(key)).value, Heartbeat))
        except Exception:   # an instance that left meanwhile
            continue
    return out


async def _wait_for_schedulers(bus, pool, n: int) -> None:
    while True:
        pool.check()
        try:
            await registry.wait_for_stages(bus.instances, {s for s in pool.stages() if s != "scheduler"}, 0.5)
        except TimeoutError:
            continue
        if sum(hb.stage == "scheduler" for hb in await _heartbeats(bus)) >= n:
            return
        await asyncio.sleep(0.5)
