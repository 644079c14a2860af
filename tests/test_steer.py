"""Steering a script request to end early: the plan (pure, fed completion events) and the whole
path end to end (gateway ``POST /v1/podcasts/{id}/steer`` -> core NATS request -> the scheduler
that runs the request -> a shorter show whose final segment ends after a whole line)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from helpers import start_scheduler, wait_ready

from streamwise.bus.messages import Event, Request
from streamwise.core.dag import NodeState
from streamwise.core.deadlines import load_profiles
from streamwise.gateway import make_app
from streamwise.service.pool import Pool
from streamwise.workflow.podcast import PlanError, PodcastPlan

SR, SPF = 22050, 882
ROOT = Path(__file__).parent.parent


def _complete(plan: PodcastPlan, node_id: str, outputs: dict):
    node = plan.dag[node_id]
    node.state = NodeState.DISPATCHED
    return plan.on_event(Event(task_id=plan.task_id(node), request_id="r1", node_id=node_id, stage=node.stage,
                               instance="i", outputs=outputs))


def _speech(frames: int) -> dict:
    return {"audio": "pcm", "samples": frames * SPF, "sample_rate": SR, "clips": [[0, frames * SPF]]}


def test_the_plan_ends_after_the_line_playing_at_the_first_segment_not_yet_muxed():
    plan = PodcastPlan(Request(request_id="r1", submitted_at=1000.0, script="x"), load_profiles())
    _complete(plan, "screenplay", {"title": "T", "studio": None, "speakers": ["A", "B"],
                                   "lines": [{"speaker": i % 2, "pieces": [f"line {i}"]} for i in range(4)]})
    for i in range(3):                       # lines 0..2 are 60 frames each; line 3 is not spoken yet
        _complete(plan, f"tts:{i}", _speech(60))
    assert plan.total_frames is None and plan.next_segment == 4      # segments up to frame 175 are planned
    plan.dag["seg:0"].state = plan.dag["seg:1"].state = NodeState.DISPATCHED   # frames 0..75 at the mux
    # segment 2 starts at frame 75, inside line 1 (frames 60..120): the show ends after line 1
    assert plan.end_after_current_line() == 1
    assert plan.total_frames == 120 and plan.segments_total == 3
    seg2 = plan.dag["seg:2"]
    assert seg2.inputs["final"] and seg2.inputs["frame_to"] == 120 and seg2.state is NodeState.PENDING
    assert "seg:3" not in plan.dag and plan.next_segment == 3     # laid out again: past the end, gone
    assert not plan.dag["seg:1"].inputs["final"]            # what the mux already has is never changed
    assert plan.dag["tts:3"].state is NodeState.DONE        # line 3 is never spoken
    assert all(plan.dag[f"clip:2:{c}"].state is NodeState.DONE for c in range(len(plan.pieces[2].clips)))
    for k in range(3):                      # the mux publishes segments 0..2: the show is complete
        assert not plan.finished
        _complete(plan, f"seg:{k}", {"bytes": 1, "index": k})
    assert plan.finished and plan.segments_done == 3
    # steering again, or steering a show already on its last line, says why
    with pytest.raises(PlanError, match="already ends"):
        plan.end_after_current_line()


def test_skip_ahead_drops_the_next_line_and_lays_the_rest_out_again():
    plan = PodcastPlan(Request(request_id="r1", submitted_at=1000.0, script="x"), load_profiles())
    _complete(plan, "screenplay", {"title": "T", "studio": None, "speakers": ["A", "B"],
                                   "lines": [{"speaker": i % 2, "pieces": [f"line {i}"]} for i in range(4)]})
    _complete(plan, "tts:0", _speech(60))
    _complete(plan, "tts:1", _speech(60))
    plan.dag["seg:0"].state = plan.dag["seg:1"].state = NodeState.DISPATCHED   # frames 0..75 at the mux
    plan.dag["tts:2"].state = NodeState.DISPATCHED                              # line 2 is being spoken
    before = plan.dag["seg:1"].inputs
    # segment 2 starts at frame 75, inside line 1: the next line, 2, is skipped
    assert plan.skip_ahead() == [2]
    _complete(plan, "tts:2", _speech(40))        # its speech comes back: no shot, not on the timeline
    assert plan.pieces[2].clips == [] and not any(n.startswith("clip:2:") for n in plan.dag.nodes)
    assert plan.total_frames is None and plan.dag["tts:3"].state is NodeState.PENDING
    _complete(plan, "tts:3", _speech(50))
    assert plan.total_frames == 170 and plan.segments_total == 4      # lines 0, 1, 3: 60 + 60 + 50 frames
    assert plan.dag["seg:1"].inputs is before and not plan.dag["seg:1"].inputs["final"]
    seg2, seg3 = plan.dag["seg:2"], plan.dag["seg:3"]
    assert (seg2.inputs["frame_from"], seg2.inputs["frame_to"]) == (75, 125)
    assert {d for d in seg2.deps if d.startswith("clip:")} == {"clip:1:0", "clip:3:0"}   # line 1's end, then line 3
    assert seg3.inputs["final"] and seg3.inputs["frame_to"] == 170
    plan.sample_rate = SR
    assert plan._audio_parts(75 * SPF, 125 * SPF) == [["pcm", 15 * SPF, 60 * SPF], ["pcm", 0, 5 * SPF]]
    with pytest.raises(PlanError, match="at least 1"):
        plan.skip_ahead(0)
    # skipping the last later line ends the show after the line playing; then nothing is left
    assert plan.skip_ahead(5) == [3] and plan.cut_line == 1 and plan.total_frames == 120
    assert plan.segments_total == 3 and plan.dag["seg:2"].inputs["final"] and "seg:3" not in plan.dag
    with pytest.raises(PlanError, match="no later line"):
        plan.skip_ahead()


def test_a_show_that_is_already_on_its_last_line_cannot_end_earlier():
    plan = PodcastPlan(Request(request_id="r1", submitted_at=1000.0, script="x"), load_profiles())
    _complete(plan, "screenplay", {"title": "T", "studio": None, "speakers": ["A"],
                                   "lines": [{"speaker": 0, "pieces": ["only line"]}]})
    with pytest.raises(PlanError, match="already ends"):
        plan.end_after_current_line()


def test_a_script_skipped_ahead_or_ended_stays_steered_after_a_takeover():
    """Issue 13: a script request is skipped ahead (or ended early), then its scheduler dies; the one
    taking over (a fresh plan, restored from the persisted state before the script is parsed again)
    lays the parsed script out without the skipped line, or ends it where the first one did, and
    the segments the mux already had are laid out the same."""
    import msgpack

    from streamwise.workflow.steer import checkpoint, on_screenplay, persisted, restore, state_key

    screenplay = {"title": "T", "studio": None, "speakers": ["A", "B"],
                  "lines": [{"speaker": i % 2, "pieces": [f"line {i}"]} for i in range(5)]}

    def steered(how):
        plan = PodcastPlan(Request(request_id="r1", submitted_at=1000.0, script="x"), load_profiles())
        assert not persisted(plan)                        # an unsteered script: nothing to keep
        _complete(plan, "screenplay", screenplay)
        _complete(plan, "tts:0", _speech(60))
        _complete(plan, "tts:1", _speech(60))
        plan.dag["seg:0"].state = plan.dag["seg:1"].state = NodeState.DISPATCHED   # frames 0..75 at the mux
        assert (plan.skip_ahead() == [2]) if how == "skip" else (plan.end_after_current_line() == 1)
        assert persisted(plan)
        new = PodcastPlan(plan.request, load_profiles(), epoch=2)
        restore(new, msgpack.unpackb(msgpack.packb(checkpoint(plan))))
        assert state_key(new) == state_key(plan)
        _complete(new, "screenplay", screenplay)         # parsed again, identically
        on_screenplay(new)                               # (the scheduler's step after it)
        assert all(new.dag[f"tts:{i}"].state is NodeState.PENDING for i in (0, 1, 3) if f"tts:{i}" in new.dag)
        assert "tts:2" not in new.dag or new.dag["tts:2"].state is NodeState.DONE   # never spoken
        for i in range(5):
            if f"tts:{i}" in new.dag and i != 2:
                _complete(new, f"tts:{i}", _speech(60))
        assert [new.dag[f"seg:{k}"].inputs["frame_to"] for k in range(2)] == \
            [plan.dag[f"seg:{k}"].inputs["frame_to"] for k in range(2)]
        return new

    new = steered("skip")
    assert new.skipped == {2} and new.total_frames == 240 and new.pieces[2].offset is None
    assert new.pieces[3].offset == 120
    new = steered("end")
    assert new.cut_line == 1 and new.total_frames == 120 and "tts:2" not in new.dag
    assert new.segments_total == 3 and new.dag["seg:2"].inputs["final"]


@pytest.fixture(scope="module")
def pool(nats_url, tmp_path_factory):
    p = Pool(nats_url, log_dir=tmp_path_factory.mktemp("steer-logs"), scheduler=["--no-cache"]).start()
    yield p
    p.stop()


async def test_end_early_from_the_gateway(bus, pool):
    await wait_ready(bus, pool)
    script = (ROOT / "examples" / "podcast.txt").read_text(encoding="utf-8")
    async with TestClient(TestServer(make_app(bus))) as client:
        assert "no podcast" in (await (await client.post("/v1/podcasts/nosuch/steer", json={"action": "end"})).json())["error"]
        created = await (await client.post("/v1/podcasts", json={"script": script})).json()
        rid, urls = created["id"], created["urls"]
        bad = await client.post(f"/v1/podcasts/{rid}/steer", json={"action": "rewind"})
        assert bad.status == 400 and "action" in (await bad.json())["error"]
        segments, steered, full_total = [], None, None
        async with client.ws_connect(urls["live"]) as ws:
            header = None
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    m = json.loads(msg.data)
                    if m["type"] == "end":
                        break
                    header = m
                    continue
                if header["type"] != "segment":
                    continue
                segments.append(header)
                if header["index"] == 1 and steered is None:
                    full_total = (await (await client.get(urls["status"])).json())["segments_total"]
                    resp = await client.post(f"/v1/podcasts/{rid}/steer", json={"action": "end"})
                    steered = await resp.json()
                    assert resp.status == 200, steered
        assert steered["ok"] and steered["last_line"] >= 0
        until = time.monotonic() + 30     # the scheduler's "done" follows the final segment
        while (status := await (await client.get(urls["status"])).json())["state"] != "done":
            assert time.monotonic() < until, status
            await asyncio.sleep(0.1)
        assert segments[-1]["final"]
        assert [s["index"] for s in segments] == list(range(len(segments)))
        assert len(segments) == status["segments_total"] and steered["segments_total"] in (None, len(segments))
        print(f"\nsteered at segment 1: the show ends after line {steered['last_line']} with {len(segments)} "
              f"segments ({status['video_duration_s']:.1f} s) instead of {full_total}")
        assert full_total is None or len(segments) < full_total
        assert status["video_duration_s"] < 60      # examples/podcast.txt is about 90 s long
        # a finished show cannot be steered: no scheduler runs it any more
        late = await client.post(f"/v1/podcasts/{rid}/steer", json={"action": "end"})
        assert late.status == 409 and "not running" in (await late.json())["error"]


def test_only_a_pending_node_without_dependants_can_be_removed_from_a_dag():
    from streamwise.core.dag import Dag, Node

    dag = Dag()
    dag.add(Node("a", "s"))
    dag.add(Node("b", "s", deps=("a",)))
    with pytest.raises(ValueError, match="dependants"):
        dag.remove("a")
    dag["a"].state = NodeState.DISPATCHED
    with pytest.raises(ValueError, match="pending"):
        dag.remove("a")
    dag["a"].state = NodeState.DONE
    assert [n.node_id for n in dag.ready()] == ["b"]
    dag.remove("b")
    assert "b" not in dag and dag.ready() == [] and dag.counts() == {"done": 1}
    dag.add(Node("b", "s", deps=("a",)))              # the same id can be added again
    assert [n.node_id for n in dag.ready()] == ["b"]
    with pytest.raises(KeyError):
        dag.remove("zzz")


async def _show(client, script: str, *, steer: dict | None = None, at_segment: int = 0) -> tuple[dict, dict | None]:
    """Submit ``script`` through the gateway, read it over the WebSocket to its end, POSTing
    ``steer`` once segment ``at_segment`` arrived; returns (final status, the steer's answer)."""
    created = await (await client.post("/v1/podcasts", json={"script": script})).json()
    urls, answer = created["urls"], None
    async with client.ws_connect(urls["live"]) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            m = json.loads(msg.data)
            if m["type"] == "end":
                break
            if m["type"] == "segment" and m["index"] == at_segment and steer and answer is None:
                resp = await client.post(f"/v1/podcasts/{created['id']}/steer", json=steer)
                answer = await resp.json()
                assert resp.status == 200, answer
    until = time.monotonic() + 30
    while (status := await (await client.get(urls["status"])).json())["state"] != "done":
        assert time.monotonic() < until, status
        await asyncio.sleep(0.1)
    return status, answer


async def test_skip_ahead_from_the_gateway_shortens_the_show_by_the_skipped_line(bus, pool):
    script = (ROOT / "examples" / "short_chat.txt").read_text(encoding="utf-8")
    async with TestClient(TestServer(make_app(bus))) as client:
        bad = await client.post("/v1/podcasts/x/steer", json={"action": "skip", "lines": 0})
        assert bad.status == 404      # the id is checked first
        full, _ = await _show(client, script)
        skipped, answer = await _show(client, script, steer={"action": "skip", "lines": 1})
        assert answer["ok"] and len(answer["skipped"]) == 1 and answer["skipped"][0] >= 1
        assert skipped["segments_delivered"] == skipped["segments_total"] and skipped["segments"][-1]["final"]
        # the same script without the skipped line: shorter by about that line (no line is 0.3 s or less)
        assert skipped["video_duration_s"] < full["video_duration_s"] - 0.3
        print(f"\nskipped line {answer['skipped'][0]}: {skipped['video_duration_s']:.1f} s instead of "
              f"{full['video_duration_s']:.1f} s")
        created = await (await client.post("/v1/podcasts", json={"script": script})).json()
        for body, reason in (({"action": "skip", "lines": 0}, "lines"), ({"action": "end", "lines": 2}, "only for"),
                             ({"action": "skip", "lines": "two"}, "lines"), ({"steer": "end"}, "unknown field"),
                             ({"action": "direct"}, "direction: required"),
                             ({"action": "skip", "direction": "deeper"}, "direction: required with action 'direct'"),
                             ({"action": "direct", "direction": "  "}, "direction: expected text"),
                             ({"action": "direct", "direction": "x" * 501}, "direction: expected text"),
                             ({"action": "direct", "direction": "deeper", "lines": 2}, "only for")):
            resp = await client.post(f"/v1/podcasts/{created['id']}/steer", json=body)
            assert resp.status == 400 and reason in (await resp.json())["error"], body


async def test_a_script_skipped_ahead_then_taken_over_by_another_scheduler_stays_skipped(tmp_path):
    """Issue 13: a script request is skipped ahead by one line and the scheduler that applied it
    is SIGKILLed as soon as it answered; a second scheduler takes the request over. The skipped
    line is never spoken and every segment arrives once. (Before, the new scheduler played the
    whole script: the skipped line came back.)"""
    import signal
    import uuid

    from streamwise.bus import subjects
    from streamwise.bus.client import connect
    from streamwise.bus.codec import decode, encode
    from streamwise.bus.messages import Steer, SteerReply
    from streamwise.bus.server import EmbeddedServer
    from streamwise.client import generate

    logs = tmp_path / "logs"
    rid = uuid.uuid4().hex[:12]
    replies: list[SteerReply] = []
    steer_task: list[asyncio.Task] = []
    second = None
    with EmbeddedServer() as server, Pool(server.url, log_dir=logs) as pool:
        bus = await connect(server.url)
        try:
            await wait_ready(bus, pool)
            first = next(p for name, p in pool.processes if name == "scheduler")

            async def skip_then_kill():
                nonlocal second
                msg = Steer(request_id=rid, action="skip", lines=1)
                answer = await bus.nc.request(subjects.steer("default", rid), encode(msg), timeout=10)
                replies.append(decode(answer.data, SteerReply))
                first.send_signal(signal.SIGKILL)
                second = start_scheduler(server.url, logs / "scheduler-2.log")

            def on_progress(kind, info):
                if kind == "segment" and info["index"] == 1 and not steer_task:
                    steer_task.append(asyncio.ensure_future(skip_then_kill()))

            script = (ROOT / "examples" / "podcast.txt").read_text(encoding="utf-8")
            request = Request(request_id=rid, submitted_at=0.0, script=script)
            report = await generate(bus, request, tmp_path / "out", progress=on_progress, idle_timeout_s=120)
            await steer_task[0]
        finally:
            await bus.close()
            if second is not None:
                second.terminate()
                second.wait(10)
    reply = replies[0]
    assert reply.ok and len(reply.skipped) == 1, reply
    assert first.poll() is not None
    spoken = [row["line"] for row in report.script_lines]
    assert reply.skipped[0] not in spoken and max(spoken) > reply.skipped[0], (reply.skipped, spoken)
    assert spoken == sorted(spoken)
    assert [s.index for s in report.segments] == list(range(len(report.segments))) and report.duplicates == 0
    taken_over = (logs / "scheduler-2.log").read_text()
    assert "resuming its steers from a checkpoint (0 lines); steered: 1 line skipped" in taken_over, taken_over[-2000:]
