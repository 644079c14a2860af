"""The scheduler's decisions under load (issue 9 item 8), recorded from the shared workflow code
(:mod:`streamwise.workflow.dispatch`, :class:`~streamwise.workflow.podcast.PodcastPlan`), which the
live scheduler and the plan-driven simulator both run: the viewer's playback clock, first
segments before later ones, quality giving way for every request while the CPU pool is behind,
and the show's first clip as long as its first segment. No timing: each test can fail on a
decision."""

from __future__ import annotations

import numpy as np
import pytest

from streamwise.bus.messages import Event, Heartbeat, Request
from streamwise.core.dag import NodeState
from streamwise.core.deadlines import load_profiles
from streamwise.core.quality import load_ladders
from streamwise.stages.cpu.tts import clip_ranges
from streamwise.workflow import dispatch
from streamwise.workflow.instances import InstanceState
from streamwise.workflow.podcast import PodcastPlan

SR, SPF = 22050, 882        # Hz, samples per frame at 25 fps
LADDERS = {"video": load_ladders()["fantasytalking"]}


def _request(rid: str, submitted_at: float) -> Request:
    return Request(request_id=rid, submitted_at=submitted_at, script="x", ttff_s=1.5, fps=25.0, segment_s=2.0,
                   first_segment_s=1.0, max_clip_s=3.5)


def _done(plan: PodcastPlan, node_id: str, outputs: dict, at: float = 0.0) -> None:
    node = plan.dag[node_id]
    node.state = NodeState.DISPATCHED
    plan.on_event(Event(task_id=plan.task_id(node), request_id=plan.request.request_id, node_id=node_id,
                        stage=node.stage, instance="i", outputs=outputs, started_at=at, finished_at=at))


def _speech(clip_frames: list[int]) -> dict:
    clips, a = [], 0
    for f in clip_frames:
        clips.append([a * SPF, (a + f) * SPF])
        a += f
    return {"audio": "pcm", "samples": a * SPF, "sample_rate": SR, "clips": clips}


def _show(rid: str, submitted_at: float) -> PodcastPlan:
    """A two-line show with its studio, portraits and speech done: its clips are ready."""
    plan = PodcastPlan(_request(rid, submitted_at), load_profiles())
    _done(plan, "screenplay", {"title": "T", "studio": None, "speakers": ["A", "B"],
                               "lines": [{"speaker": 0, "pieces": ["Hello there, and welcome."]},
                                         {"speaker": 1, "pieces": ["Thanks, glad to be here today."]}]})
    _done(plan, "studio", {"image": "studio.png"})
    for s in (0, 1):
        _done(plan, f"portrait:{s}", {"image": f"p{s}.png", "layout": {}})
    _done(plan, "tts:0", _speech([25, 50]))       # 1 s, then 2 s
    _done(plan, "tts:1", _speech([75]))           # 3 s
    return plan


def _mux(plan: PodcastPlan, k: int, at: float) -> None:
    for dep in plan.dag[f"seg:{k}"].deps:
        if dep.startswith("clip:") and plan.dag[dep].state is not NodeState.DONE:
            _done(plan, dep, {"clip": f"{dep}.mp4", "frames": 1})
    _done(plan, f"seg:{k}", {"segment": f"s{k}"}, at=at)


def _pool(*views: tuple[str, str, str]) -> InstanceState:
    pool = InstanceState(ttl_s=1e9, clock=lambda: 0.0)
    for name, stage, hardware in views:
        pool.beat(Heartbeat(instance=name, stage=stage, model="cpu-head" if hardware == "cpu" else "fantasytalking",
                            hardware=hardware, gpus=0 if hardware == "cpu" else 8))
    return pool


def _decide(plans: dict, pool: InstanceState, now: float, cap: int = 3):
    ready = dispatch.scan(plans)
    decisions, _ = dispatch.decide(plans, ready, pool, me="s", cap=cap, now=now, ladders=LADDERS, states={},
                                   policy="edf")
    return decisions


def test_segment_deadlines_follow_the_viewers_playback_clock():
    """Before the first segment is out, segment k is due at submit + TTFF SLO + its start; once it
    is published, at the first segment's publication + its start (the viewer plays from there); a
    later segment published late (a stall) pushes every later one by as much."""
    plan = _show("r", 1000.0)
    assert plan.dag["seg:1"].deadline == pytest.approx(1000.0 + 1.5 + 1.0)
    _mux(plan, 0, at=1003.0)                      # the first frame came 1.5 s after the SLO
    assert plan.playback_at == pytest.approx(1003.0)
    assert plan.dag["seg:1"].deadline == pytest.approx(1003.0 + 1.0)
    assert plan.dag["seg:2"].deadline == pytest.approx(1003.0 + 3.0)
    _mux(plan, 1, at=1004.5)                      # due at 1004.0: the viewer waits 0.5 s
    assert plan.late_s == pytest.approx(0.5) and plan.running_late
    assert plan.dag["seg:2"].deadline == pytest.approx(1003.5 + 3.0)
    early = _show("e", 1000.0)
    _mux(early, 0, at=1000.8)                     # an early first frame: the clock starts early too
    assert early.dag["seg:1"].deadline == pytest.approx(1001.8) and not early.running_late


def test_first_segments_of_every_request_go_before_later_segments_of_any():
    """Request A (submitted first) showed its first frame at 3.0 s; B, submitted 1.5 s later, has
    not. One video instance with room for one task: B's first clip goes before A's next one. On the
    SLO's clock alone A's clip would be due first (A was submitted earlier); on A's viewer's clock it
    is due a second after A's first frame, later than B's first frame is due."""
    a, b = _show("a", 1000.0), _show("b", 1001.5)
    _mux(a, 0, at=1003.0)
    plans = {"a": a, "b": b}
    pool = _pool(("cpu", "video", "cpu"))
    first = [d for d in _decide(plans, pool, now=1003.1, cap=1)]
    assert [d.node.key for d in first] == [("b", "clip:0:0")]
    assert a.dag["clip:0:1"].deadline > b.dag["clip:0:0"].deadline


def test_on_a_cpu_pool_every_request_steps_down_while_another_is_behind():
    """A's clip has all the slack `static` needs. While B (on the same CPU pool) has a ready node past
    its deadline, A's clip runs at the cheapest rung too, and so it does while B is running late;
    once nobody is behind, A's clip is placed at `static` again. With a GPU instance of the stage in
    the pool the rule does not apply: A's clip takes the GPU's top rung."""
    a = _show("a", 1000.0)
    _mux(a, 0, at=1000.9)
    pool = _pool(("cpu", "video", "cpu"))
    alone = _decide({"a": a}, pool, now=1001.0)
    assert {d.node.key: d.rung.name for d in alone if d.rung}[("a", "clip:0:1")] == "static"

    b = PodcastPlan(_request("b", 999.0), load_profiles())     # its screenplay is ready, and past due
    assert b.dag["screenplay"].deadline < 1001.0
    behind = _decide({"a": a, "b": b}, pool, now=1001.0)
    assert {d.node.key: d.rung.name for d in behind if d.rung}[("a", "clip:0:1")] == "still"

    late = _show("c", 1000.0)
    _mux(late, 0, at=1004.0)                      # 2.5 s after its SLO: running late
    assert late.running_late
    held = _decide({"a": a, "c": late}, pool, now=1001.0)
    assert {d.node.key: d.rung.name for d in held if d.rung}[("a", "clip:0:1")] == "still"

    # once the pool was behind, A holds the cheapest rung for HOLD_SHOTS + climb_after shots with slack
    ready = dispatch.scan({"a": a})
    _, states = dispatch.decide({"a": a, "b": b}, dispatch.scan({"a": a, "b": b}), pool, me="s", cap=3,
                                now=1001.0, ladders=LADDERS, states={}, policy="edf")
    rungs = []
    for _ in range(dispatch.HOLD_SHOTS + LADDERS["video"].climb_after):
        (d, *_), states = dispatch.decide({"a": a}, ready, pool, me="s", cap=3, now=1001.0, ladders=LADDERS,
                                          states=states, policy="edf")
        rungs.append(d.rung.name)
    assert rungs == ["still"] * (len(rungs) - 1) + ["static"]

    gpu = _pool(("cpu", "video", "cpu"), ("ft", "video", "gb200"))
    mixed = _decide({"a": a, "b": b}, gpu, now=1001.0)
    assert {d.node.key: d.rung.name for d in mixed if d.rung}[("a", "clip:0:1")] != "still"


def test_the_first_clip_is_exactly_the_first_segment_even_when_a_pause_comes_earlier():
    """Speech with a silence at 0.6 s: the show's first clip still ends at 1.0 s (25 frames), so the
    first segment (1 s) waits for one clip; the rest is cut at pauses, at most 3.5 s a clip."""
    audio = np.full(int(4.0 * SR) // SPF * SPF, 3000, np.int16)
    audio[int(0.55 * SR):int(0.65 * SR)] = 0
    ranges = clip_ranges(audio, 3.5, SPF, first_clip_s=1.0, sample_rate=SR)
    assert ranges[0] == (0, 25 * SPF)
    assert ranges[-1][1] == len(audio) and all(b - a <= 3.5 * SR for a, b in ranges)
    assert clip_ranges(audio[:20 * SPF], 3.5, SPF, first_clip_s=1.0, sample_rate=SR) == [(0, 20 * SPF)]


def test_the_up_pool_draws_with_two_image_processes_and_generate_with_one():
    """`streamwise up` (and `bench --requests N`) start two image workers, so the studios and first
    portraits of requests starting together are drawn two at a time; `--workers` overrides any
    stage and keeps the others; `generate`'s one-request pool keeps one process per stage."""
    from streamwise.service.pool import DEFAULT_WORKERS, UP_WORKERS, parse_workers

    assert parse_workers(None) == UP_WORKERS and UP_WORKERS["image"] == 2
    assert all(n == 1 for stage, n in UP_WORKERS.items() if stage != "image")
    assert parse_workers("tts=2") == {**UP_WORKERS, "tts": 2}
    assert parse_workers("image=1", DEFAULT_WORKERS) == DEFAULT_WORKERS and set(DEFAULT_WORKERS.values()) == {1}


def test_work_with_slack_waits_for_a_free_cpu_instance_rather_than_queue():
    """Two image workers, one busy. A show's first portrait (due within a second) goes to the free
    one; its second speaker's portrait (due seconds later) is not queued behind either worker's
    task, where it could not move when the other frees up first: it stays in the scheduler's EDF
    queue. An urgent node still queues behind a busy worker (up to the cap)."""
    plan = PodcastPlan(_request("a", 1000.0), load_profiles())
    _done(plan, "screenplay", {"title": "T", "studio": None, "speakers": ["A", "B"],
                               "lines": [{"speaker": 0, "pieces": ["Hello there, and welcome."]}] * 3
                               + [{"speaker": 1, "pieces": ["Thanks, glad to be here today."]}]})
    _done(plan, "studio", {"image": "studio.png"})
    assert plan.dag["portrait:1"].deadline - plan.dag["portrait:0"].deadline > 2.0
    pool = _pool(("img-a", "image", "cpu"), ("img-b", "image", "cpu"))
    pool.dispatched("img-a", "other-task", 0.2)
    placed = {d.node.key[1]: d.instance.instance for d in _decide({"a": plan}, pool, now=1000.3)
              if d.node.stage == "image"}
    assert placed == {"portrait:0": "img-b"}
    pool.dispatched("img-b", "another", 0.2)
    urgent = {d.node.key[1]: d.instance.instance for d in _decide({"a": plan}, pool, now=1000.9)
              if d.node.stage == "image"}
    assert "portrait:0" in urgent and "portrait:1" not in urgent


def test_requests_starting_together_on_a_cpu_pool_start_at_the_cheapest_rung():
    """Two shows submitted together, neither playing yet, nothing past its deadline: the first clip
    of each runs at `still` (the pool's backlog decides at admission), and the hold lasts. One show
    alone starts at `static` (what its deadlines allow)."""
    a, b = _show("a", 1000.0), _show("b", 1000.0)
    pool = _pool(("cpu", "video", "cpu"), ("cpu2", "video", "cpu"))
    first = {d.node.key: d.rung.name for d in _decide({"a": a, "b": b}, pool, now=1000.05) if d.rung}
    assert first[("a", "clip:0:0")] == first[("b", "clip:0:0")] == "still"
    alone = {d.node.key: d.rung.name for d in _decide({"c": _show("c", 1000.0)}, pool, now=1000.05) if d.rung}
    assert alone[("c", "clip:0:0")] == "static"


def test_late_binding_applies_only_to_a_stage_that_only_cpu_instances_serve():
    """A node with slack is not queued behind a busy CPU instance's work on a stage only CPUs serve;
    where a GPU instance serves the stage too, it queues as before (the hold-for-a-busy-GPU rule
    decides there, and a late-bound node would race the CPU freeing up against the GPU)."""
    from streamwise.core.placement import QUEUE_SLACK_S, InstanceView, ReadyNode, assign

    node = ReadyNode("n", "image", deadline=10.0, request="r")
    busy_cpu = InstanceView("cpu-a", "image", "procedural", 1, queued_s=0.2)
    assert assign([node], [busy_cpu], cap=3, now=0.0, runtime_s=lambda n, i, r: 0.1, policy="edf",
                  queue_slack_s=QUEUE_SLACK_S) == ([], {})
    gpu = InstanceView("gpu-a", "image", "flux", 3, hardware="h100", gpus=1, queued_s=30.0)
    placed, _ = assign([node], [busy_cpu, gpu], cap=3, now=0.0, runtime_s=lambda n, i, r: 0.1, policy="edf",
                       queue_slack_s=QUEUE_SLACK_S)
    assert [d.instance.instance for d in placed] == ["cpu-a"]
