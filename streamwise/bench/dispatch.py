"""``streamwise bench --dispatch``: the request scheduler's own cost per dispatched task.

The end-to-end scheduler benchmark (:func:`streamwise.bench.run_scheduler_bench`) runs real
workers, which keep both cores of a small machine busy, so the scheduler's figures there
mix its own cost with CPU contention. This benchmark isolates it, as issue 3 asks ("the
scheduler's own overhead per dispatched task, p99 < 5 ms on loopback, >= 1000 dispatches/s
for one scheduler process"):

- a real nats-server and a real ``streamwise scheduler`` process (its own process, the
  policy under test, the result cache off);
- a **synthetic load generator** in this process, :class:`InstantInstances`: it registers
  heartbeats for ``instances`` pretend instances per stage and answers every task at once
  with a completion event carrying placeholder outputs of the right shape (sample counts,
  clip ranges, object names that do not exist). It renders nothing, and it is a benchmark
  load generator only: never a worker, never used by tests, never reported as a pipeline
  run. The screenplay answer comes from the real script parser, so the DAG grows exactly as
  for the real script; speech durations come from the plan's own sketch (2.5 words/s).

It prints the per-task overhead the scheduler measured in itself (building the snapshot,
placement, publishing; p50 / p99 in ms), the dispatches per second of scheduler time (the
inverse of the mean overhead: what one process could sustain), and the achieved rate
(dispatches over the wall time of the run, which the load generator's own speed bounds).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import nats.errors
from nats.js import api

from ..bus import registry, subjects
from ..bus.client import Bus, connect
from ..bus.codec import decode
from ..bus.messages import Event, Heartbeat, Request, Status, Task
from . import overhead_stats
from ..bus.server import EmbeddedServer
from ..service.pool import Pool
from ..script import parse_script
from ..core.deadlines import sketch_duration_s
from ..stages.cpu.speech import FIRST_PIECE_CHARS, split_text
from ..stages.registry import STAGES, default_model
from ..stages.cpu.screenplay import MAX_PIECE_CHARS

SAMPLE_RATE = 22050


class InstantInstances:
    """Synthetic load generator (benchmark only): pretend instances that answer each task at
    once with placeholder outputs, so that only the scheduler's cost is measured.

    ``per_stage`` instances are registered for each stage, as its default (CPU) model. One pull
    consumer on ``sw.tasks.>`` receives every task; each is answered with an :class:`Event`
    whose outputs have the shape the podcast plan expects (no media is produced).
    """

    def __init__(self, bus: Bus, per_stage: int, fps: float) -> None:
        self.bus = bus
        self.fps = fps
        self.heartbeats = [Heartbeat(instance=f"instant-{stage}-{i}", stage=stage, model=model, pid=os.getpid())
                           for stage in STAGES if (model := default_model(stage)) for i in range(per_stage)]
        self.answered = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        beating = asyncio.create_task(self._beat())
        subs = []   # one consumer on each model's task stream (SW_TASKS_<model>)
        for model in dict.fromkeys(hb.model for hb in self.heartbeats):
            stream = await self.bus.task_stream(model)
            subs.append(await self.bus.js.pull_subscribe(subjects.tasks_of_model(model), durable="instant-instances",
                                                         stream=stream,
                                                         config=api.ConsumerConfig(max_ack_pending=100_000)))

        async def fetch(sub) -> list:
            try:
                return await sub.fetch(batch=256, timeout=0.5)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                return []
        try:
            while not self._stop.is_set():
                msgs = [m for got in await asyncio.gather(*(fetch(sub) for sub in subs)) for m in got]
                events = []
                for msg in msgs:
                    task = decode(msg.data, Task)
                    events.append(self.bus.publish(subjects.events(task.tenant, task.request_id), self._answer(task)))
                    events.append(msg.ack())
                await asyncio.gather(*events)
                self.answered += len(msgs)
        finally:
            beating.cancel()
            for hb in self.heartbeats:
                await registry.forget(self.bus.instances, hb.instance)

    def stop(self) -> None:
        self._stop.set()

    async def _beat(self) -> None:
        while True:
            for hb in self.heartbeats:
                hb.at = time.time()
                await registry.beat(self.bus.instances, hb)
            await asyncio.sleep(registry.HEARTBEAT_S)

    def _answer(self, task: Task) -> Event:
        now = time.time()
        return Event(task_id=task.task_id, request_id=task.request_id, tenant=task.tenant, node_id=task.node_id, stage=task.stage,
                     instance=f"instant-{task.stage}-0", outputs=self._outputs(task), started_at=now,
                     finished_at=now)

    def _outputs(self, task: Task) -> dict:
        i = task.inputs
        if task.stage == "screenplay":
            play = parse_script(i["script"], path=i.get("name") or "script")
            index = {name: n for n, name in enumerate(play.speakers)}
            return {"title": play.title, "studio": play.studio, "speakers": list(play.speakers),
                    "lines": [{"speaker": index[line.speaker],
                               "pieces": split_text(line.text, MAX_PIECE_CHARS, FIRST_PIECE_CHARS)}
                              for line in play.lines]}
        if task.stage == "tts":
            spf = int(SAMPLE_RATE / self.fps)
            frames = max(1, round(sketch_duration_s(i["text"]) * self.fps))
            max_frames = int((i.get("first_clip_s") or i["max_clip_s"]) * self.fps)
            clips = [[a * spf, b * spf] for a, b in ((a, min(frames, a + max_frames)) for a in range(0, frames, max_frames))]
            return {"audio": f"placeholder-{task.task_id}", "samples": frames * spf, "sample_rate": SAMPLE_RATE,
                    "clips": clips}
        if task.stage == "image":
            return {"image": f"placeholder-{task.task_id}", "layout": {}}
        if task.stage == "video":
            return {"clip": f"placeholder-{task.task_id}"}
        return {"bytes": 0, "index": int(task.inputs.get("index", 0))}   # (bus/payloads.py SegmentOutputs)


async def _drive(url: str, script: str, n: int, per_stage: int, fps: float, timeout_s: float) -> dict:
    bus = await connect(url, name="streamwise-bench-dispatch")
    load = InstantInstances(bus, per_stage, fps)
    serving = asyncio.create_task(load.run())
    try:
        await registry.wait_for_stages(bus.instances, {"scheduler"}, 60.0)
        done: set[str] = set()
        failed: list[str] = []

        async def on_status(msg) -> None:
            status = decode(msg.data, Status)
            if status.state == "done":
                done.add(status.request_id)
            elif status.state == "failed":
                failed.append(f"{status.request_id}: {status.error}")

        sub = await bus.nc.subscribe(subjects.status("bench", "*"), cb=on_status)
        started = time.perf_counter()
        ids = [uuid.uuid4().hex[:16] for _ in range(n)]
        await asyncio.gather(*(bus.publish(subjects.requests("bench"), Request(
            request_id=rid, tenant="bench", submitted_at=time.time(), script=script, fps=fps)) for rid in ids))
        while len(done) + len(failed) < n:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"{len(done)} of {n} requests done after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - started
        await sub.unsubscribe()
        if failed:
            raise RuntimeError("requests failed: " + "; ".join(failed[:3]))
        return {"wall_s": wall, "answered": load.answered}
    finally:
        load.stop()
        await asyncio.gather(serving, return_exceptions=True)
        await bus.close()


def run_dispatch_bench(counts: list[int], policies: list[str], *, script: Path, per_stage: int = 4,
                       fps: float = 25.0, timeout_s: float = 300.0) -> list[dict]:
    """For each policy and N: N concurrent requests of ``script`` through a fresh nats-server
    and scheduler process, answered by :class:`InstantInstances`; one row per (policy, N)
    with the scheduler's per-task overhead (ms) and dispatch rates (per second)."""
    from ..cli import _run as run_loop

    text = script.read_text(encoding="utf-8")
    out = Path(tempfile.mkdtemp(prefix="sw-bench-dispatch-"))
    os.environ["STREAMWISE_QUOTAS"] = "off"   # N requests of one tenant at once: no tenant quota
    rows = []
    for policy in policies:
        for n in counts:
            stats = out / f"{policy}-{n}.json"
            options = ["--policy", policy, "--no-cache", "--stats", str(stats)]
            with EmbeddedServer() as server:
                with Pool(server.url, {"screenplay": 0}, log_dir=out / f"logs-{policy}-{n}", scheduler=options):
                    run = run_loop(_drive(server.url, text, n, per_stage, fps, timeout_s))
            recorded = json.loads(stats.read_text())
            ms = overhead_stats(recorded["overhead_s"])
            rows.append({"policy": policy, "requests": n, "dispatches": recorded["dispatches"],
                         "overhead_ms_p50": ms["p50"], "overhead_ms_p99": ms["p99"], "overhead_ms_max": ms["max"],
                         "dispatches_per_scheduler_s": ms["per_s"],
                         "dispatches_per_wall_s": recorded["dispatches"] / run["wall_s"], "wall_s": run["wall_s"]})
    return rows


def print_dispatch_rows(rows: list[dict]) -> None:
    """A Markdown table of :func:`run_dispatch_bench` rows against the issue-3 targets."""
    print("| policy | N | tasks | overhead p50 / p99 / max (ms per task) | dispatches per scheduler-s | "
          "achieved dispatches/s (wall) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['policy']} | {r['requests']} | {r['dispatches']} | {r['overhead_ms_p50']:.2f} / "
              f"{r['overhead_ms_p99']:.2f} / {r['overhead_ms_max']:.2f} | {r['dispatches_per_scheduler_s']:.0f} | "
              f"{r['dispatches_per_wall_s']:.0f} |")
    print("targets: p99 < 5 ms per task, >= 1000 dispatches/s for one scheduler process")
