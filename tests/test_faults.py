"""Faults injected into real processes on a real nats-server (issue 9): the bus killed and
restarted mid-request, a 60 s outage, a worker told to stop mid-task, a slow viewer, a large
script on a stock 1 MB-payload server. Each ends with every segment delivered exactly once, in
order, with no gap, and no process of the pool exited.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest

from helpers import events_of, strike_at, video_victim, wait_ready
from streamwise.bus import subjects
from streamwise.bus.client import connect
from streamwise.bus.messages import Request
from streamwise.bus.server import EmbeddedServer
from streamwise.client import GenerateError, generate
from streamwise.service.pool import DEFAULT_WORKERS, Pool
from streamwise.stages.cpu.media import probe

DATA = Path(__file__).parent / "data" / "scripts"


def _request(text: str, name: str = "script.txt", **kw) -> Request:
    return Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0, script=text, script_name=name, **kw)


def _assert_whole(report, out: Path) -> None:
    """Every segment once, in order, no gap; the MP4 as long as the segments."""
    assert [s.index for s in report.segments] == list(range(len(report.segments)))
    assert len(report.segments) >= 3
    info = probe(out / "podcast.mp4")
    assert info["duration_s"] == pytest.approx(report.video_duration_s, abs=0.05)


@pytest.mark.parametrize("outage_s", [4, 60])
async def test_the_bus_killed_mid_request_and_back_after_an_outage_loses_nothing(tmp_path, outage_s):
    """The nats-server (file store) is SIGKILLed after the second segment and started again on the
    same port after ``outage_s`` seconds: scheduler, workers and viewer reconnect, re-create their
    subscriptions and finish the show; no process of the pool exits."""
    server = EmbeddedServer(store_dir=str(tmp_path / "js")).start()
    pool = Pool(server.url, log_dir=tmp_path / "logs").start()
    try:
        bus = await connect(server.url)
        try:
            await wait_ready(bus, pool)

            async def outage():
                server.kill()
                await asyncio.sleep(outage_s)
                await asyncio.to_thread(server.start)

            on_progress, striker = strike_at(1, outage)
            report = await generate(bus, _request((DATA / "two_speakers.txt").read_text()), tmp_path / "out",
                                    progress=on_progress, idle_timeout_s=120)
            await striker
        finally:
            await bus.close()
        pool.check()     # raises if any scheduler or worker process exited
    finally:
        pool.stop()
        server.stop()
    _assert_whole(report, tmp_path / "out")


async def test_a_worker_told_to_stop_mid_task_drains_and_nothing_is_lost(tmp_path):
    """SIGTERM to one of two video workers mid-show: it takes nothing new, finishes or hands back
    what it holds, exits 0 by itself; every task it held is accounted for by an event."""
    with EmbeddedServer() as server, Pool(server.url, dict(DEFAULT_WORKERS, video=2),
                                          log_dir=tmp_path / "logs") as local:
        bus = await connect(server.url)
        try:
            await wait_ready(bus, local)
            victim, victim_id = await video_victim(bus, local)

            async def sigterm():
                victim.send_signal(signal.SIGTERM)

            on_progress, striker = strike_at(0, sigterm)
            request = _request((DATA / "two_speakers.txt").read_text())
            report = await generate(bus, request, tmp_path / "out", progress=on_progress, idle_timeout_s=90)
            await striker
            assert await asyncio.to_thread(victim.wait, 40) == 0      # drained and exited by itself
            events = [e for e in await events_of(bus, request.request_id) if e.instance == victim_id]
        finally:
            await bus.close()
    _assert_whole(report, tmp_path / "out")
    assert events and all(e.ok or e.handed_back for e in events)
    assert "told to stop, draining" in (tmp_path / "logs" / "video-0.log").read_text()


async def test_a_slow_viewer_gets_every_segment_once_in_order(tmp_path):
    """A viewer that takes 0.4 s over each segment (its event loop blocked) still gets the whole
    show, in order, with no duplicate."""
    with EmbeddedServer() as server, Pool(server.url, log_dir=tmp_path / "logs") as local:
        bus = await connect(server.url)
        try:
            await wait_ready(bus, local)

            def slow(kind, info):
                if kind == "segment":
                    time.sleep(0.4)

            report = await generate(bus, _request((DATA / "two_speakers.txt").read_text()), tmp_path / "out",
                                    progress=slow, idle_timeout_s=90)
        finally:
            await bus.close()
    _assert_whole(report, tmp_path / "out")


async def test_scripts_travel_by_reference_on_a_stock_1mb_server(tmp_path):
    """On a nats-server with the stock 1 MB max payload: a script sent by object-store reference
    streams; a 1.5 MB script is uploaded by the client automatically (no payload error, no
    traceback) and refused by the screenplay worker with the limit it exceeds."""
    with EmbeddedServer(max_payload_mb=1) as server, Pool(server.url, log_dir=tmp_path / "logs") as local:
        bus = await connect(server.url)
        try:
            assert bus.max_payload == 1024 * 1024
            await wait_ready(bus, local)
            text = (DATA / "two_speakers.txt").read_text()
            request = _request(text)
            request.script, request.script_ref = None, await bus.put_upload(request.tenant, request.request_id,
                                                                           text.encode())
            report = await generate(bus, request, tmp_path / "out", idle_timeout_s=90)
            line = "Ada: " + "the quick brown fox jumps over the lazy dog " * 400 + "\n"
            big = _request(line * 90)                       # 1.6 MB, about 40 h of speech
            with pytest.raises(GenerateError, match=r"h of speech, over the limit of 4 h"):
                await generate(bus, big, tmp_path / "big", idle_timeout_s=90)
            assert big.script is None and big.script_ref == big.request_id
        finally:
            await bus.close()
    _assert_whole(report, tmp_path / "out")


async def test_one_node_of_a_three_node_cluster_killed_mid_request_loses_nothing(tmp_path, monkeypatch):
    """Three nats-server processes clustered on loopback, every stream, bucket and the object store
    with 3 replicas; the pool and the viewer connect with all three URLs. One node is SIGKILLed
    after the second segment: the show completes whole and no process of the pool exits."""
    from streamwise.bus.server import LocalCluster

    monkeypatch.setenv("STREAMWISE_REPLICAS", "3")     # inherited by the pool's processes
    with LocalCluster(3, str(tmp_path / "cluster")) as cluster:
        bus = await connect(cluster.url)
        info = await bus.js.stream_info(subjects.STREAM_REQUESTS)
        assert info.config.num_replicas == 3
        pool = Pool(cluster.url, log_dir=tmp_path / "logs").start()
        try:
            await wait_ready(bus, pool)
            await cluster.replicated(bus)      # every stream on all three nodes before one is lost

            async def kill_a_node():
                cluster.nodes[1].kill()

            on_progress, striker = strike_at(1, kill_a_node)
            report = await generate(bus, _request((DATA / "two_speakers.txt").read_text()), tmp_path / "out",
                                    progress=on_progress, idle_timeout_s=120)
            await striker
            pool.check()
        finally:
            pool.stop()
            await bus.close()
    _assert_whole(report, tmp_path / "out")


@pytest.mark.timeout(480)
async def test_gpu_length_clips_queued_on_one_instance_past_the_ack_wait_run_once(tmp_path):
    """GPU-length clips at the real ack wait (``ACK_WAIT_S``, 10 s): one emulated FantasyTalking instance (1 x A100, so a
    clip takes the profiled 30-70 s) and no CPU video worker. While a clip runs, the next one waits in the
    instance's local queue (its heartbeats say so) for longer than the ack wait; every clip still runs
    exactly once (one event per clip, no duplicate) and the show arrives whole."""
    from streamwise.bus import registry
    from streamwise.stages.runtime.worker import ACK_WAIT_S

    emulated = [("video-fantasytalking-0", ["worker", "--stage", "video", "--model", "fantasytalking",
                                            "--hardware", "a100", "--gpus", "1", "--emulate"])]
    with EmbeddedServer() as server, Pool(server.url, dict(DEFAULT_WORKERS, video=0), extra=emulated,
                                          log_dir=tmp_path / "logs") as local:
        bus = await connect(server.url)
        queued_since: list[float] = []     # when the GPU instance was seen with a clip running and one queued
        waited = [0.0]
        gpu_ids: set[str] = set()

        async def watch_heartbeats():
            while True:
                beats = [h for h in await registry.list_instances(bus.instances) if h.model == "fantasytalking"]
                gpu_ids.update(h.instance for h in beats)
                busy = any(h.running and h.queue for h in beats)
                if busy and not queued_since:
                    queued_since.append(time.monotonic())
                elif busy:
                    waited[0] = max(waited[0], time.monotonic() - queued_since[0])
                elif queued_since and not busy:
                    queued_since.clear()
                await asyncio.sleep(0.5)

        try:
            await wait_ready(bus, local)
            watcher = asyncio.create_task(watch_heartbeats())
            request = _request("Ada: Good evening, and welcome to the late show.\n"
                               "Bob: Thank you, it is good to be here tonight.\n",
                               ttff_s=200.0, first_segment_s=2.0, segment_s=2.0)
            try:
                report = await generate(bus, request, tmp_path / "out", idle_timeout_s=300)
            finally:
                watcher.cancel()
            events = [e for e in await events_of(bus, request.request_id) if e.stage == "video"]
        finally:
            await bus.close()
        local.check()
    _assert_whole(report, tmp_path / "out")
    clips = [e for e in events if e.ok]
    assert len({e.node_id for e in clips}) == len(clips) >= 2          # each clip ran (reported) once
    assert {e.instance for e in clips} <= gpu_ids and gpu_ids          # all on the emulated GPU instance
    runs = sorted(e.finished_at - e.started_at for e in clips)
    assert runs[-1] >= 60 and runs[-2] >= 20, runs                    # GPU-length clips
    assert waited[0] > 3 * ACK_WAIT_S, waited                          # a clip outwaited the ack wait queued
    assert report.duplicates == 0


@pytest.mark.parametrize("name", ["scheduler-sigstop", "worker-sigstop", "bus-sigstop"])
def test_a_process_frozen_past_its_heartbeat_then_resumed_duplicates_and_loses_nothing(tmp_path, name):
    """SIGSTOP for 20 s, then SIGCONT (a VM paused, a process swapped out): a frozen scheduler's request is
    taken over by the other scheduler, a frozen video worker's tasks are resubmitted to the other instance,
    a frozen nats-server (connections open, nothing answering) makes every call time out and be retried;
    when the frozen process wakes, its stale work (a request it no longer owns, tasks already redone) adds no
    duplicate and no gap: every segment once, in order (the fault matrix's row, from the viewer's report)."""
    from streamwise.bench.faults import run_faults

    (row,) = run_faults([name], tmp_path)
    assert row.outcome == "ok" and row.delivered == row.expected >= 3 and row.gaps == 0, row
    assert row.duplicates == 0, row
    logs = tmp_path / name / "logs"
    if name == "scheduler-sigstop":     # the fault struck: both schedulers accepted the request in turn
        accepted = [f.name for f in sorted(logs.glob("scheduler*.log")) if "accepted" in f.read_text()]
        assert accepted == ["scheduler-2.log", "scheduler.log"], accepted
    elif name == "worker-sigstop":      # ... the frozen instance was declared gone and its work resubmitted
        assert "gone: resubmitting" in (logs / "scheduler.log").read_text()
    else:                               # ... the bus stopped answering: some call timed out and was retried
        assert any("silent" in f.read_text() or "retrying" in f.read_text() for f in logs.glob("*.log"))


def test_the_benchmark_and_fault_matrix_scripts_exist():
    from streamwise.bench import DEFAULT_SCRIPT, SHORT_SCRIPT
    from streamwise.bench.faults import scenarios

    assert DEFAULT_SCRIPT.is_file() and SHORT_SCRIPT.is_file()
    assert {"worker-sigkill", "eviction", "scheduler-sigkill", "bus-restart", "bus-outage-60s", "cluster-node",
            "gpu-queue", "worker-sigterm", "slow-viewer", "script-by-reference", "bad-inputs", "scheduler-sigstop",
            "worker-sigstop", "bus-sigstop"} == set(scenarios())


def test_up_supervises_its_children_and_restarts_one_that_dies(nats_url, tmp_path):
    """`streamwise up`'s supervision (Pool.supervise): a SIGKILLed child is started again after a
    backoff, the log says so, and a second death in a row waits longer."""
    lines: list[str] = []
    pool = Pool(nats_url, {"image": 1}, scheduler=False, log_dir=tmp_path / "logs").start()
    try:
        first = dict(pool.processes)["image-0"]
        first.kill()
        first.wait(10)
        deadline = time.monotonic() + 20
        while "image-0" not in pool.supervise(log=lines.append) and time.monotonic() < deadline:
            time.sleep(0.1)
        second = dict(pool.processes)["image-0"]
        assert second.pid != first.pid and second.poll() is None
        assert lines[0].startswith("image-0 exited with code -9") and "restarting in 1 s" in lines[0]
        assert lines[1].startswith("image-0 restarted (pid ")
        second.kill()
        second.wait(10)
        while len(lines) < 3 and time.monotonic() < deadline:
            pool.supervise(log=lines.append)
            time.sleep(0.1)
        assert "restarting in 2 s" in lines[2]              # backoff doubles for a restart in a row
    finally:
        pool.stop()


def test_the_fault_matrix_expects_the_schedulers_count_not_what_was_delivered():
    """The matrix's "expected" column comes from the scheduler's segments_total, so a viewer that
    missed a segment shows a gap and the row is not ok (it was derived from the delivered count)."""
    import time as _time

    from streamwise.bench.faults import _row
    from streamwise.client import Report, SegmentRecord

    def report(indexes, total):
        segs = [SegmentRecord(i, 2.0 * i, 2.0, 1.0 + i, 100, {}) for i in indexes]
        return Report(request_id="r", speakers=[], lines=1, video_duration_s=2.0 * len(segs), ttff_s=1.0, wall_s=9.0,
                      realtime_factor=1.0, stall_s=0.0, segments=segs, segments_total=total)

    whole = _row("f", [report([0, 1, 2], 3)], _time.monotonic())
    assert (whole.expected, whole.delivered, whole.gaps, whole.ok) == (3, 3, 0, True)
    short = _row("f", [report([0, 1], 3)], _time.monotonic())
    assert (short.expected, short.delivered, short.gaps, short.ok) == (3, 2, 1, False)
    unknown = _row("f", [report([0, 1], None)], _time.monotonic())
    assert (unknown.expected, unknown.gaps, unknown.ok) == (3, 1, False)
