"""Steering a topic request with a direction (issue 13 item 3): the plan (pure, fed events), the
prompt, and end to end on a real nats-server with real worker processes, the screenplay written
by a real transformers LLM (a 24 M-parameter random Llama saved to disk, as in
tests/test_llm_screenplay.py; its words are noise, so the assertions are on recorded decisions:
the continuation task's inputs, the lines delivered and the segments)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import msgpack
import pytest

from helpers import start_scheduler

from streamwise.bus import subjects
from streamwise.bus.codec import decode, encode
from streamwise.bus.messages import Event, Request, Steer, SteerReply
from streamwise.core.dag import NodeState
from streamwise.core.deadlines import load_profiles
from streamwise.llm.format import build_messages
from streamwise.workflow.podcast import PlanError, PodcastPlan
from streamwise.workflow.steer import _segment_lines, checkpoint, direct, lead_s, on_segment, restore

SPF = 882
sys.path.insert(0, str(Path(__file__).parent))


def _plan() -> PodcastPlan:
    return PodcastPlan(Request(request_id="r1", submitted_at=1000.0, topic="the sky"), load_profiles(), opening=False)


def _event(plan, node_id, outputs, *, partial=False, task_id=None) -> Event:
    node = plan.dag[node_id]
    return Event(task_id=task_id or plan.task_id(node), request_id="r1", node_id=node_id, stage=node.stage,
                 instance="llm-1", partial=partial, outputs=outputs, finished_at=1005.0)


def _lines(texts, start=0):
    return [{"index": start + i, "speaker": i % 2, "pieces": [t]} for i, t in enumerate(texts)]


def _speak(plan, node_id, frames):
    node = plan.dag[node_id]
    node.state = NodeState.DISPATCHED
    plan.on_event(_event(plan, node_id, {"audio": "pcm", "samples": frames * SPF, "sample_rate": 22050,
                                         "clips": [[0, frames * SPF]]}))


def _assert_steered_delivery(report, reply) -> None:
    """What was delivered: the kept lines, then only the continuation's (from ``reply.first_line``); no
    replaced line; the segments in order, no gap, no duplicate."""
    spoken = [row["line"] for row in report.script_lines]
    assert spoken == sorted(spoken)
    after_cut = [line for line in spoken if line > reply.last_line]
    assert after_cut and min(after_cut) == reply.first_line
    assert not set(spoken) & set(reply.replaced)
    assert [s.index for s in report.segments] == list(range(len(report.segments))) and report.duplicates == 0


def test_a_direction_keeps_the_lines_being_rendered_and_the_llm_continues_after_them():
    plan = _plan()
    node = plan.dag["screenplay"]
    node.state, node.instance = NodeState.DISPATCHED, "llm-1"
    old_task = plan.task_id(node)
    # the LLM has written 6 lines of 100 frames (4 s at 25 fps) each
    assert plan.on_partial(_event(plan, "screenplay", {"title": "T", "studio": "S", "speakers": ["Ada", "Ben"],
                                                       "lines": _lines([f"line {i}" for i in range(6)])},
                                  partial=True))
    for i in range(6):
        _speak(plan, f"tts:{i}", 100)
    for k in range(3):                                   # segments 0..2 (frames 0..125) are at the mux
        plan.dag[f"seg:{k}"].state = NodeState.DISPATCHED
    assert lead_s(plan) == pytest.approx(11.5)            # no llm.first_line profile: the opening's 10 s + 1.5
    plan.dag["clip:4:0"].state, plan.dag["clip:4:0"].instance = NodeState.DISPATCHED, "video-1"
    plan.dag["clip:5:0"].state, plan.dag["clip:5:0"].instance = NodeState.DISPATCHED, "video-1"
    record, cancel = direct(plan, "  go deeper on   clouds ", at=2000.0)
    # segment 3 starts at frame 125 (5 s), inside line 1; lines starting before 5 + 11.5 s are kept: 0..4
    assert (record.kept_through, record.replaced, record.first_line) == (4, [5], 6)
    # the LLM still writing and the replaced line's shot being rendered are cancelled; line 4's shot is kept
    assert record.direction == "go deeper on clouds"
    assert cancel == [(old_task, "llm-1"), (plan.task_id(plan.dag["clip:5:0"]), "video-1")]
    assert plan.dag["clip:4:0"].state is NodeState.DISPATCHED
    assert node.state is NodeState.PENDING and node.attempt == 1 and record.task_id == plan.task_id(node)
    inputs = plan.task_inputs(node)
    assert inputs["direction"] == "go deeper on clouds" and inputs["after_line"] == 4
    assert [x["text"] for x in inputs["resume"]["lines"]] == [f"line {i}" for i in range(5)]
    assert plan.dag["clip:5:0"].state is NodeState.DONE and not plan.dag["clip:5:0"].outputs   # never shown
    node.state = NodeState.DISPATCHED
    # a late partial of the replaced attempt changes nothing
    assert not plan.on_partial(_event(plan, "screenplay", {"speakers": ["Ada", "Ben"],
                                                           "lines": _lines(["stale"], start=6)},
                                      partial=True, task_id=old_task))
    # the continuation numbers its lines after the 5 resumed ones: they become the plan's lines 6, 7
    plan.on_event(_event(plan, "screenplay", {"title": "T", "studio": "S", "speakers": ["Ada", "Ben"],
                                              "complete": True, "lines": _lines(["new a", "new b"], start=5)}))
    assert plan.lines == 8 and [p.text for p in plan.pieces[6:]] == ["new a", "new b"]
    assert plan.total_frames is None                      # their speech is not known yet
    _speak(plan, "tts:6", 50)
    _speak(plan, "tts:7", 50)
    # the timeline: lines 0..4 (500 frames), then the new ones; line 5 is not in the show
    assert plan.total_frames == 600 and plan.pieces[5].offset is None and plan.pieces[6].offset == 500
    shown = {}
    for k in range(plan.segments_total):
        seg = plan.dag[f"seg:{k}"]
        shown[k] = {p.line for *_, p, _a, _b in plan._clips_between(seg.inputs["frame_from"], seg.inputs["frame_to"])}
    assert all(5 not in lines for lines in shown.values())
    first = min(k for k, lines in shown.items() if 6 in lines)
    assert on_segment(plan, plan.dag[f"seg:{first - 1}"], 2001.0) == []
    done = on_segment(plan, plan.dag[f"seg:{first}"], 2003.25)
    assert done == [record] and record.segment == first and record.steer_to_screen_s == pytest.approx(3.25)
    # the checkpoint (a takeover) is the steered show: kept and new lines, renumbered, no replaced line
    assert [line["pieces"] for line in plan.screenplay_checkpoint()["lines"]] == \
        [[f"line {i}"] for i in range(5)] + [["new a"], ["new b"]]


def test_a_direction_after_the_screenplay_is_complete_reopens_it_and_a_script_cannot_be_directed():
    plan = _plan()
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    plan.on_event(_event(plan, "screenplay", {"title": "T", "studio": "S", "speakers": ["Ada", "Ben"],
                                              "complete": True, "lines": _lines(["a", "b", "c"])}))
    assert plan.screenplay_done and node.state is NodeState.DONE
    _speak(plan, "tts:0", 100)
    record, cancel = direct(plan, "a listener asks: why is it blue?", at=1.0)
    assert cancel == [] and node.state is NodeState.PENDING and not plan.screenplay_done
    assert record.kept_through == 2 and record.replaced == [] and record.first_line == 3   # all within the lead
    assert plan.task_inputs(node)["direction"] == "a listener asks: why is it blue?"
    with pytest.raises(PlanError, match="direction: expected some text"):
        direct(plan, "   ", at=2.0)
    script = PodcastPlan(Request(request_id="r2", submitted_at=0.0, script="A: hi"), load_profiles())
    with pytest.raises(PlanError, match="only a topic or document request"):
        direct(script, "go deeper", at=0.0)


def _takeover(plan: PodcastPlan) -> PodcastPlan:
    """A second scheduler's plan of the same request, restored from what the first one persisted
    (through MessagePack, as in KV ``sw_cache``)."""
    saved = msgpack.unpackb(msgpack.packb(checkpoint(plan)))
    new = PodcastPlan(plan.request, load_profiles(), epoch=plan.epoch + 1, opening=plan.opening_lines > 0)
    restore(new, saved)
    return new


def test_a_steered_show_taken_over_by_another_scheduler_stays_steered():
    """Issue 13: the scheduler that applied a direction dies before the continuation wrote a line;
    the one taking over keeps the steer record, keeps the replaced line out of the show, numbers
    the lines as before and dispatches the screenplay with the direction, so the LLM continues
    the steered show; once the steered line is on screen, a second takeover keeps its time."""
    plan = _plan()
    node = plan.dag["screenplay"]
    node.state, node.instance = NodeState.DISPATCHED, "llm-1"
    assert plan.on_partial(_event(plan, "screenplay", {"title": "T", "studio": "S", "speakers": ["Ada", "Ben"],
                                                       "lines": _lines([f"line {i}" for i in range(6)])},
                                  partial=True))
    for i in range(6):
        _speak(plan, f"tts:{i}", 100)
    for k in range(3):
        plan.dag[f"seg:{k}"].state = NodeState.DISPATCHED
    record, _ = direct(plan, "go deeper on clouds", at=2000.0)
    assert (record.kept_through, record.replaced, record.first_line) == (4, [5], 6)

    new = _takeover(plan)
    assert new.steers == [record] and new.skipped == {5} and new.lines == 6
    node = new.dag["screenplay"]
    assert node.state is NodeState.PENDING
    inputs = new.task_inputs(node)
    assert inputs["direction"] == "go deeper on clouds" and inputs["after_line"] == 4
    assert [x["text"] for x in inputs["resume"]["lines"]] == [f"line {i}" for i in range(5)]
    assert new.dag["tts:5"].state is NodeState.DONE        # the replaced line is never spoken
    node.state = NodeState.DISPATCHED
    # the continuation numbers its lines after the 5 resumed ones: the plan's lines 6 and 7, as before
    new.on_event(_event(new, "screenplay", {"title": "T", "studio": "S", "speakers": ["Ada", "Ben"],
                                            "complete": True, "lines": _lines(["new a", "new b"], start=5)}))
    assert new.lines == 8 and [p.text for p in new.pieces[6:]] == ["new a", "new b"]
    for i in range(5):                                     # (from the result cache, live)
        _speak(new, f"tts:{i}", 100)
    _speak(new, "tts:6", 50)
    _speak(new, "tts:7", 50)
    assert new.total_frames == 600 and new.pieces[5].offset is None and new.pieces[6].offset == 500
    first = min(k for k in range(new.segments_total) if 6 in _segment_lines(new, new.dag[f"seg:{k}"]))
    (done,) = on_segment(new, new.dag[f"seg:{first}"], 2010.0)
    assert done.direction == "go deeper on clouds" and done.steer_to_screen_s == pytest.approx(10.0)

    again = _takeover(new)                                 # complete, steered, the steer on screen
    assert again.screenplay_done and again.lines == 8 and again.skipped == {5}
    assert again.steers[0].steer_to_screen_s == pytest.approx(10.0) and again.steers[0].segment == first
    assert again.dag["tts:5"].state is NodeState.DONE and again.dag["tts:6"].inputs["text"] == "new a"
    # an unsteered checkpoint is the screenplay's alone, restored as before
    assert "steering" not in checkpoint(_plan())


def test_the_continuation_prompt_carries_the_direction():
    messages = build_messages("the sky", direction="go deeper on clouds")
    assert "follow this direction from a listener: go deeper on clouds" in messages[-1]["content"]
    assert "direction" not in build_messages("the sky")[-1]["content"]


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def llm_pool(nats_url, tmp_path_factory):
    """Scheduler + one worker per stage, the screenplay worker a transformers LLM on a random
    24 M-parameter Llama (tests/test_llm_screenplay.py's), as separate OS processes. The
    scheduler keeps no line after the one playing at the first segment not yet muxed when steered
    (``$STREAMWISE_STEER_LEAD_S``; the default lead, 11.5 s, is sized for SmolLM2 and would keep
    every line this fast model has written), so the lines written but not yet playing are replaced."""
    from streamwise.service.pool import DEFAULT_WORKERS, Pool
    from test_llm_screenplay import _tiny_llama

    model = _tiny_llama(tmp_path_factory.mktemp("llama-24m-steer"), hidden=512, layers=8)
    mp = pytest.MonkeyPatch()
    mp.setenv("STREAMWISE_STEER_LEAD_S", "0")     # inherited by the pool's processes
    p = Pool(nats_url, {**DEFAULT_WORKERS, "screenplay": 0}, log_dir=tmp_path_factory.mktemp("steer-logs"),
             extra=[("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", "--llm", "transformers",
                                        "--llm-model", str(model), "--llm-max-tokens", "400"])]).start()
    mp.undo()
    yield p
    p.stop()


async def _ready(bus, pool):
    from streamwise.bus import registry

    while True:
        pool.check()
        live = [h for h in await registry.list_instances(bus.instances) if h.state == "ready"]
        stages = {h.stage for h in live}
        if any(h.model == "llm" for h in live) and {"scheduler", "tts", "image", "video", "mux"} <= stages:
            return
        await asyncio.sleep(0.2)


async def test_a_topic_steered_mid_show_continues_with_the_direction_and_replaces_the_unplayed_lines(
        bus, llm_pool, tmp_path):
    from helpers import events_of
    from streamwise.client import generate

    await asyncio.wait_for(_ready(bus, llm_pool), 180)
    rid = uuid.uuid4().hex[:12]
    direction = "go deeper on why sunsets are red"
    replies: list[SteerReply] = []
    steer_task: list[asyncio.Task] = []

    async def send_steer():
        msg = Steer(request_id=rid, action="direct", direction=direction)
        answer = await bus.nc.request(subjects.steer("default", rid), encode(msg), timeout=10)
        replies.append(decode(answer.data, SteerReply))

    def on_progress(kind, info):
        # once the show plays and the LLM has written lines past the opening (line 0, the host's greeting)
        if kind == "status" and info.get("lines", 0) >= 3 and not steer_task:
            steer_task.append(asyncio.ensure_future(send_steer()))

    request = Request(request_id=rid, submitted_at=0.0, topic="the colour of the sky")
    report = await generate(bus, request, tmp_path, progress=on_progress, idle_timeout_s=180, health=llm_pool.check)
    assert steer_task, "the LLM never wrote 3 lines"
    await steer_task[0]
    reply = replies[0]
    assert reply.ok, reply.error
    assert reply.replaced and min(reply.replaced) == reply.last_line + 1    # written, not yet playing: replaced
    # the report records the steer: the first steered line and the time to its first segment on screen
    assert len(report.steers) == 1, report.steers
    steer = report.steers[0]
    assert steer["direction"] == direction and steer["first_line"] == reply.first_line
    assert steer["kept_through"] == reply.last_line and steer["replaced"] == reply.replaced
    assert steer["steer_to_screen_s"] > 0 and steer["received_s"] >= steer["steer_to_screen_s"] - 0.5
    # the continuation is the LLM task that wrote the lines after the cut, and its inputs carried the direction
    events = await events_of(bus, rid)
    finals = [e for e in events if e.node_id == "screenplay" and not e.partial and e.ok]
    continuation = [e for e in finals if e.task_id == steer["task_id"]]
    assert len(continuation) == 1, [e.task_id for e in finals]
    llm = continuation[0].outputs["llm"]
    assert llm["direction"] == direction and llm["after_line"] == reply.last_line
    assert llm["resumed_lines"] == reply.last_line   # the kept LLM lines (line 0 is the plan's opening)
    # no other LLM attempt finished after the steer: the replaced one was cancelled (or had finished before)
    assert all(e.finished_at <= steer["at"] for e in finals if e.task_id != steer["task_id"])
    _assert_steered_delivery(report, reply)
    assert report.segments[steer["segment"]].start_s >= 0


async def test_a_steered_topic_whose_scheduler_is_killed_is_taken_over_and_stays_steered(
        tmp_path_factory, tmp_path, monkeypatch):
    """Issue 13: a topic request is steered with a direction, and the scheduler that applied it is
    SIGKILLed as soon as it answered; a second scheduler takes the request over (after the
    request's ack wait) from the persisted checkpoint. The show completes with every segment
    once, the replaced lines are never spoken, the LLM task that writes the rest after the
    takeover carries the direction, and the report still records the steer with its
    steer-to-screen time. (Before, the checkpoint held the unsteered lines and no steer: the
    new scheduler continued the unsteered show and the report's ``steers`` was empty.)"""
    import re
    import signal

    from helpers import events_of
    from streamwise.bus.client import connect
    from streamwise.bus.server import EmbeddedServer
    from streamwise.client import generate
    from streamwise.service.pool import DEFAULT_WORKERS, Pool
    from test_llm_screenplay import _tiny_llama

    model = _tiny_llama(tmp_path_factory.mktemp("llama-24m-steer-takeover"), hidden=512, layers=8)
    monkeypatch.setenv("STREAMWISE_STEER_LEAD_S", "0")   # both schedulers: replace every line not yet playing
    logs = tmp_path / "logs"
    direction = "go deeper on why sunsets are red"
    rid = uuid.uuid4().hex[:12]
    replies: list[SteerReply] = []
    steer_task: list[asyncio.Task] = []
    second = None
    with EmbeddedServer() as server, Pool(
            server.url, {**DEFAULT_WORKERS, "screenplay": 0}, log_dir=logs,
            extra=[("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", "--llm", "transformers",
                                       "--llm-model", str(model), "--llm-max-tokens", "400"])]) as pool:
        bus = await connect(server.url)
        try:
            await asyncio.wait_for(_ready(bus, pool), 180)
            first = next(p for name, p in pool.processes if name == "scheduler")

            async def steer_then_kill():
                nonlocal second
                msg = Steer(request_id=rid, action="direct", direction=direction)
                answer = await bus.nc.request(subjects.steer("default", rid), encode(msg), timeout=10)
                replies.append(decode(answer.data, SteerReply))
                first.send_signal(signal.SIGKILL)         # at once: the steer is all it persisted
                second = start_scheduler(server.url, logs / "scheduler-2.log")

            def on_progress(kind, info):
                if kind == "status" and info.get("lines", 0) >= 3 and not steer_task:
                    steer_task.append(asyncio.ensure_future(steer_then_kill()))

            request = Request(request_id=rid, submitted_at=0.0, topic="the colour of the sky")
            report = await generate(bus, request, tmp_path / "out", progress=on_progress, idle_timeout_s=180)
            await steer_task[0]
            events = await events_of(bus, rid)
        finally:
            await bus.close()
            if second is not None:
                second.terminate()
                second.wait(10)
    reply = replies[0]
    assert reply.ok and reply.replaced, reply
    assert first.poll() is not None
    taken_over = (logs / "scheduler-2.log").read_text()
    assert "resuming its screenplay from a checkpoint" in taken_over, taken_over[-2000:]
    # the report still has the steer, and its first steered line reached the screen
    assert len(report.steers) == 1, report.steers
    steer = report.steers[0]
    assert steer["direction"] == direction and steer["first_line"] == reply.first_line
    assert steer["kept_through"] == reply.last_line and steer["replaced"] == reply.replaced
    assert steer["steer_to_screen_s"] is not None and steer["steer_to_screen_s"] > 0
    # an LLM task of the second scheduler (epoch 2: task ids end .<epoch>-<attempt>) finished the
    # screenplay with the direction; none started after the steer without it (the attempt the steer
    # replaced may still finish just after it, before its cancel notice arrives: its event is ignored,
    # which _assert_steered_delivery checks on the delivered lines)
    finals = [e for e in events if e.node_id == "screenplay" and not e.partial and e.ok]
    seen = [(e.task_id, e.outputs["llm"].get("direction")) for e in finals]
    assert any(int(e.task_id.rsplit(".", 1)[1].split("-")[0]) >= 2 and e.outputs["llm"]["direction"] == direction
               for e in finals), seen
    assert not [e for e in finals if e.started_at > steer["at"] and e.outputs["llm"]["direction"] != direction], seen
    assert re.search(r"resuming its screenplay from a checkpoint \(\d+ lines(, complete)?\); steered: 1 direction",
                     taken_over), taken_over[-2000:]
    _assert_steered_delivery(report, reply)
