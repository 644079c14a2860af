"""The podcast plan (DAG expansion, timeline, deadlines) as a pure object, fed completion events."""

from __future__ import annotations

import pytest

from streamwise.bus.messages import Event, Request
from streamwise.core.dag import NodeState
from streamwise.core.deadlines import StageProfile, load_profiles
from streamwise.core.placement import InstanceView, ReadyNode, assign
from streamwise.workflow.podcast import MAX_ATTEMPTS, PlanError, PodcastPlan

SR = 22050
SPF = 882  # samples per frame at 25 fps


def _request(**kw) -> Request:
    base = dict(request_id="r1", submitted_at=1000.0, script="x", ttff_s=1.5, fps=25.0, segment_s=2.0,
                first_segment_s=1.0, max_clip_s=3.5)
    base.update(kw)
    return Request(**base)


def _complete(plan: PodcastPlan, node_id: str, outputs: dict, ok: bool = True, retryable: bool = True):
    node = plan.dag[node_id]
    node.state = NodeState.DISPATCHED
    ev = Event(task_id=plan.task_id(node), request_id="r1", node_id=node_id, stage=node.stage, instance="i",
               ok=ok, error=None if ok else "boom", retryable=retryable, outputs=outputs)
    return plan.on_event(ev)


def _speech(frames: int, clip_frames: list[int]) -> dict:
    clips, a = [], 0
    for f in clip_frames:
        clips.append([a * SPF, (a + f) * SPF])
        a += f
    assert a == frames
    return {"audio": "pcm", "samples": frames * SPF, "sample_rate": SR, "clips": clips}


def _screenplay(plan, lines):
    speakers = sorted({s for s, _ in lines})
    _complete(plan, "screenplay", {"title": "T", "studio": None, "speakers": speakers,
                                   "lines": [{"speaker": speakers.index(s), "pieces": p} for s, p in lines]})


@pytest.fixture
def profiles():
    return load_profiles()


def test_screenplay_expands_studio_portraits_and_one_speech_node_per_piece(profiles):
    plan = PodcastPlan(_request(), profiles)
    assert [n.node_id for n in plan.dag.ready()] == ["screenplay"]
    _screenplay(plan, [("A", ["Hello there."]), ("B", ["Hi.", "How are you?"])])
    ids = set(plan.dag.nodes)
    assert {"studio", "portrait:0", "portrait:1", "tts:0", "tts:1", "tts:2"} <= ids
    assert plan.dag["portrait:1"].deps == ("studio",)
    # the show's first piece gets a first clip no longer than the first segment
    assert plan.dag["tts:0"].inputs["first_clip_s"] == 1.0 and plan.dag["tts:1"].inputs["first_clip_s"] is None
    assert plan.dag["tts:2"].inputs["pause_after_s"] > plan.dag["tts:1"].inputs["pause_after_s"]


def test_segments_tile_the_timeline_exactly_and_follow_the_speech_in_order(profiles):
    plan = PodcastPlan(_request(), profiles)
    _screenplay(plan, [("A", ["one"]), ("B", ["two"])])
    # piece 1 finishes first: no segment can be cut before piece 0's length is known
    _complete(plan, "tts:1", _speech(60, [60]))
    assert not [n for n in plan.dag.nodes if n.startswith("seg:")]
    _complete(plan, "tts:0", _speech(37, [25, 12]))
    segs = sorted((n.inputs["frame_from"], n.inputs["frame_to"]) for n in plan.dag.nodes.values()
                  if n.stage == "mux")
    assert segs == [(0, 25), (25, 75), (75, 97)]     # 1 s first segment, then 2 s, last one short
    assert plan.total_frames == 97 and plan.segments_total == 3
    last = plan.dag["seg:2"]
    assert last.inputs["final"] and not plan.dag["seg:1"].inputs["final"]
    assert set(plan.dag["seg:1"].deps) == {"clip:0:1", "clip:1:0", "seg:0"}


def test_mux_inputs_name_the_exact_frames_and_audio_with_preroll(profiles):
    plan = PodcastPlan(_request(), profiles)
    _screenplay(plan, [("A", ["one"]), ("B", ["two"])])
    _complete(plan, "tts:0", _speech(37, [25, 12]))
    _complete(plan, "tts:1", _speech(60, [60]))
    for node_id in ("studio", "portrait:0", "portrait:1"):
        _complete(plan, node_id, {"image": node_id, "layout": {}})
    for node_id in ("clip:0:0", "clip:0:1", "clip:1:0"):
        _complete(plan, node_id, {"clip": node_id, "frames": 1})
    inputs = plan.task_inputs(plan.dag["seg:1"])          # frames 25..75
    assert inputs["video"] == [["clip:0:1", 0, 12], ["clip:1:0", 0, 38]]
    preroll = int(0.2 * SR)
    assert inputs["preroll_samples"] == preroll
    total = sum(b - a for _, a, b in inputs["audio"])
    assert total == 50 * SPF + preroll
    assert inputs["audio"][0] == ["pcm", 25 * SPF - preroll, 37 * SPF]


def test_deadlines_follow_the_slo_and_upstream_rule(profiles):
    plan = PodcastPlan(_request(), profiles)
    _screenplay(plan, [("A", ["one"]), ("B", ["two"])])
    _complete(plan, "tts:0", _speech(37, [25, 12]))
    _complete(plan, "tts:1", _speech(60, [60]))
    t0, ttff = 1000.0, 1.5
    assert plan.dag["seg:0"].deadline == pytest.approx(t0 + ttff)
    assert plan.dag["seg:1"].deadline == pytest.approx(t0 + ttff + 1.0)
    assert plan.dag["seg:2"].deadline == pytest.approx(t0 + ttff + 3.0)
    mux = profiles["mux"].runtime_s(50)
    # clip:1:0 starts at frame 37, inside segment 1
    assert plan.dag["clip:1:0"].deadline == pytest.approx(plan.dag["seg:1"].deadline - mux)
    # speech before its first clip, portrait before the speaker's first clip, studio before portraits
    assert plan.dag["tts:1"].deadline < plan.dag["clip:1:0"].deadline
    assert plan.dag["studio"].deadline < plan.dag["portrait:0"].deadline <= plan.dag["tts:0"].deadline + 1e-9
    assert plan.dag["screenplay"].deadline < plan.dag["studio"].deadline


def test_failed_tasks_are_retried_then_fail_the_request(profiles):
    plan = PodcastPlan(_request(), profiles)
    for attempt in range(MAX_ATTEMPTS - 1):
        assert _complete(plan, "screenplay", {}, ok=False) is None
        assert plan.dag["screenplay"].state is NodeState.PENDING and plan.dag["screenplay"].attempt == attempt + 1
    with pytest.raises(PlanError, match="boom"):
        _complete(plan, "screenplay", {}, ok=False)


def test_handed_back_tasks_are_requeued_without_counting_a_failure(profiles):
    plan = PodcastPlan(_request(), profiles)
    for _ in range(MAX_ATTEMPTS + 2):
        node = plan.dag["screenplay"]
        node.state = NodeState.DISPATCHED
        ev = Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay",
                   instance="i", ok=False, handed_back=True)
        assert plan.on_event(ev) is None
    node = plan.dag["screenplay"]
    assert node.state is NodeState.PENDING and node.failures == 0 and node.attempt == MAX_ATTEMPTS + 2


def test_a_bad_script_fails_at_once_and_late_duplicates_are_ignored(profiles):
    plan = PodcastPlan(_request(), profiles)
    with pytest.raises(PlanError):
        _complete(plan, "screenplay", {}, ok=False, retryable=False)
    plan = PodcastPlan(_request(), profiles)
    node = _complete(plan, "screenplay", {"title": "T", "speakers": ["A"], "lines": [{"speaker": 0, "pieces": ["x"]}]})
    assert node is not None
    stale = Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay", instance="i")
    assert plan.on_event(stale) is None                     # duplicate delivery: no second expansion
    with pytest.raises(PlanError, match="no dialogue"):
        _complete(PodcastPlan(_request(), profiles), "screenplay", {"speakers": [], "lines": []})


def test_placement_is_edf_and_respects_per_instance_capacity():
    ready = [ReadyNode("late", "tts", 50.0), ReadyNode("early", "tts", 10.0), ReadyNode("mid", "tts", 20.0),
             ReadyNode("img", "image", 5.0)]
    views = [InstanceView("tts-a", "tts", "piper", outstanding=1), InstanceView("tts-b", "tts", "piper", 0),
             InstanceView("img-a", "image", "cpu-art", 0, accepting=False)]
    decisions, _ = assign(ready, views, cap=2)
    assert [(d.node.key, d.instance.instance) for d in decisions] == [("early", "tts-b"), ("mid", "tts-a"),
                                                                        ("late", "tts-b")]


def test_profiles_load_and_validate():
    profiles = load_profiles()
    assert profiles["video"].runtime_s(100) > profiles["video"].runtime_s(10)
    from streamwise.core.deadlines import ProfileError
    with pytest.raises(ProfileError, match="tts"):
        load_profiles(data={"stages": {"tts": {"per_unit_s": 1}}})
    assert isinstance(profiles["mux"], StageProfile)


def test_dag_ready_index_matches_a_full_scan_under_random_changes():
    """The incremental ready index gives exactly what a full scan of the DAG gives, in
    insertion order, through random additions and state changes (including requeues)."""
    import random

    from streamwise.core.dag import Dag, Node

    def scan(dag):
        return [n.node_id for n in dag.nodes.values()
                if n.state is NodeState.PENDING and all(dag[d].state is NodeState.DONE for d in n.deps)]

    rng = random.Random(7)
    dag = Dag()
    for step in range(3000):
        ids = list(dag.nodes)
        if not ids or rng.random() < 0.3:
            deps = tuple(rng.sample(ids, min(len(ids), rng.randint(0, 3))))
            dag.add(Node(f"n{step}", "tts", deps=deps))
        else:
            node = dag[rng.choice(ids)]
            node.state = rng.choice(list(NodeState))
        assert [n.node_id for n in dag.ready()] == scan(dag)


def test_an_llm_screenplay_checkpoint_lets_a_new_scheduler_continue_the_same_show(profiles):
    """Takeover of a topic request: the lines streamed so far, checkpointed, rebuild the same
    speech nodes in a fresh plan (epoch 2), whose screenplay task then resumes after them; a
    complete checkpoint completes the screenplay node at once. Scripts need no checkpoint."""
    first = PodcastPlan(_request(script=None, topic="tides"), profiles)
    node = first.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    lines = [{"index": 0, "speaker": 0, "text": "Welcome.", "pieces": ["Welcome."]},
             {"index": 1, "speaker": 1, "text": "Tides follow the moon.", "pieces": ["Tides follow", "the moon."]}]
    partial = Event(task_id=first.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay",
                    instance="llm-1", partial=True,
                    outputs={"title": "Tides", "studio": "a beach studio", "speakers": ["Host", "Guest"],
                             "lines": lines})
    assert first.on_partial(partial)
    checkpoint = first.screenplay_checkpoint()
    assert first.checkpoint_key and checkpoint["complete"] is False and len(checkpoint["lines"]) == 2

    second = PodcastPlan(_request(script=None, topic="tides"), profiles, epoch=2)
    second.restore_screenplay(checkpoint)
    assert [p.text for p in second.pieces] == [p.text for p in first.pieces]
    assert sorted(n for n in second.dag.nodes) == sorted(n for n in first.dag.nodes)
    assert second.dag["screenplay"].state is NodeState.PENDING
    resume = second.task_inputs(second.dag["screenplay"])["resume"]
    assert [line["text"] for line in resume["lines"]] == ["Welcome.", "Tides follow the moon."]
    assert resume["speakers"] == ["Host", "Guest"] and resume["studio"] == "a beach studio"

    done = dict(checkpoint, complete=True)
    third = PodcastPlan(_request(script=None, topic="tides"), profiles, epoch=3)
    third.restore_screenplay(done)
    assert third.dag["screenplay"].state is NodeState.DONE and third.screenplay_done
    assert third.lines == third.opening_lines + 2
    assert PodcastPlan(_request(), profiles).checkpoint_key is None


def test_a_topic_opens_with_the_host_s_greeting_before_the_llm_writes_a_line():
    """Issue 12 item 6: a topic's first segment needs no LLM. The plan starts with the studio
    (title card), the host's portrait and the greeting's speech, ready at once; the greeting
    covers the LLM's expected first-line time; the LLM's speakers and lines come after it."""
    profiles = load_profiles()
    plan = PodcastPlan(_request(script=None, topic="the history of the bicycle"), profiles)
    ready = {n.node_id for n in plan.dag.ready()}
    assert {"screenplay", "studio"} <= ready and any(r.startswith("tts:") for r in ready)
    assert plan.speakers == ["Host"] and plan.opening_lines == 1 and plan.title == "The history of the bicycle"
    opening = [p for p in plan.pieces if p.line == 0]
    spoken = sum(p.est_s for p in opening) + plan.dag[opening[-1].node_id].inputs["pause_after_s"]
    assert spoken >= 10.0 - 1e-6                      # OPENING_S: until the LLM's first line is on screen
    assert "bicycle" in " ".join(p.text for p in opening)
    # the LLM is due by its own first line, after the opening, not by the opening's first segment:
    # its deadline slack lets the opening's tasks have the CPU first
    first_seg = plan.request.submitted_at + plan.request.ttff_s
    assert plan.dag["screenplay"].deadline > first_seg + 5.0
    assert plan.dag["screenplay"].not_before == first_seg    # nor does it compete for the CPU before then
    # the LLM's speaker 0 and line 0 follow the host's
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    assert plan.on_partial(Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay",
                                 instance="llm-1", partial=True, outputs={
                                     "title": "Bikes", "studio": "a garage", "speakers": ["Maya", "Tom"],
                                     "lines": [{"index": 0, "speaker": 1, "pieces": ["Wheels!"]}]}))
    assert plan.speakers == ["Host", "Maya", "Tom"] and plan.pieces[-1].speaker == 2 and plan.pieces[-1].line == 1
    assert plan.title == "The history of the bicycle"          # the title card is already on screen
    checkpoint = plan.screenplay_checkpoint()                  # the LLM's own lines only, in its indices
    assert checkpoint["speakers"] == ["Maya", "Tom"] and checkpoint["studio"] == "a garage"
    assert checkpoint["lines"] == [{"index": 0, "speaker": 1, "pieces": ["Wheels!"]}]
    # the show's timeline starts with the opening: once its speech is known, the first segment
    # (1 s) is added, all of it the host's greeting, while the LLM's line follows after it
    for piece in opening:
        n = plan.dag[piece.node_id]
        n.state = NodeState.DISPATCHED
        plan.on_event(Event(task_id=plan.task_id(n), request_id="r1", node_id=n.node_id, stage="tts", instance="i",
                            outputs={"audio": "pcm", "samples": 50 * 882, "sample_rate": 22050,
                                     "clips": [[0, 50 * 882]]}))
    assert "seg:0" in plan.dag
    assert all(cid.startswith(tuple(f"clip:{p.index}:" for p in opening)) for cid in plan.dag["seg:0"].deps)
    # a script has no opening
    assert PodcastPlan(_request(), profiles).opening_lines == 0


def test_deadlines_kept_between_expansions_equal_a_full_recompute_after_every_event(profiles):
    """A plan recomputes its deadlines only when the screenplay or a speech piece completes (they
    alone change the pieces, the timeline or the nodes); after every other event of a simulated
    show (GPU chain included) a full recompute changes no deadline of an unfinished node."""
    from streamwise.bus.messages import Heartbeat
    from streamwise.sim.plans import PlanSimulator

    pool = [Heartbeat(instance=f"{s}-0", stage=s, model=m) for s, m in
            (("screenplay", "script-parser"), ("tts", "piper"), ("image", "cpu-art"), ("video", "cpu-head"),
             ("mux", "pyav-fmp4"))]
    pool += [Heartbeat(instance="fp", stage="sketch", model="hunyuanframepack", hardware="gb200", gpus=40),
             Heartbeat(instance="vae", stage="vae", model="hunyuanframepack-vae", hardware="h200", gpus=1),
             Heartbeat(instance="ft", stage="video", model="fantasytalking", hardware="gb200", gpus=40),
             Heartbeat(instance="up", stage="upscale", model="realesrgan-x2", hardware="gb200", gpus=8)]
    script = "Ada: Welcome to the show, today we talk about rivers and the sea.\nBen: Thanks. Rivers carry the rain down to the sea, slowly.\n"
    sim = PlanSimulator([(0.0, _request(request_id="a", script=script)), (2.0, _request(request_id="b", script=script))], pool)
    checked = {"events": 0}
    seen = sim._seen

    def seen_and_check(instance, key, node_id, task_id, started, finished):
        plan = sim.plans.get(key)
        seen(instance, key, node_id, task_id, started, finished)
        if plan is None or plan.finished:
            return
        kept = {n.node_id: n.deadline for n in plan.dag.nodes.values() if n.state is not NodeState.DONE}
        plan.refresh_deadlines()
        assert kept == {n.node_id: n.deadline for n in plan.dag.nodes.values() if n.state is not NodeState.DONE}, node_id
        checked["events"] += 1

    sim._seen = seen_and_check
    run = sim.run()
    assert all(run.finished.values())
    assert checked["events"] > 50
    assert any(d.node.startswith("sketch:") for d in run.decisions)
