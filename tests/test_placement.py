"""Placement and adaptive quality as pure policies, with the real reference profiles.

Scenarios from the StreamWise scheduler design (arXiv 2603.05800, section 4): a faster
instance is preferred, ties go to the cheaper one, quality steps down for the first shots
when the TTFF is tight and climbs back one rung at a time, and an instance without a
profile for a task is never chosen.
"""

from __future__ import annotations

import pytest

from streamwise.workflow.instances import InstanceState, load_prices
from streamwise.core.placement import InstanceView, ReadyNode, assign
from streamwise.core.quality import QualityState, load_ladders

LADDER = load_ladders()["fantasytalking"]
CLIP_S = 2.0


@pytest.fixture(scope="module")
def state():
    return InstanceState(ttl_s=10)


def _view(state, name, model, hardware, gpus, queued_s=0.0):
    price = state.prices[hardware] * max(gpus, 1) / 3600
    return InstanceView(name, "video", model, 0, hardware=hardware, gpus=gpus, queued_s=queued_s, price_per_s=price)


def _runtime(state, cpu_s=0.5):
    return lambda node, inst, rung: state.runtime_s(inst, rung, cpu_estimate_s=cpu_s, duration_s=CLIP_S,
                                                   ladder=LADDER)


def test_the_faster_instance_is_preferred_and_ties_go_to_the_cheaper(state):
    views = [_view(state, "ft-a100", "fantasytalking", "a100", 8), _view(state, "ft-h100", "fantasytalking", "h100", 8)]
    (d,), _ = assign([ReadyNode("c0", "video", 1e9, "r")], views, cap=3, now=0, runtime_s=_runtime(state),
                     ladders={"video": LADDER})
    assert d.instance.instance == "ft-h100" and d.rung.name == "high"
    same = [InstanceView("cpu-b", "tts", "piper", 0, price_per_s=0.002),
            InstanceView("cpu-a", "tts", "piper", 0, price_per_s=0.001)]
    (d,), _ = assign([ReadyNode("t0", "tts", 5.0)], same, cap=3, runtime_s=lambda n, i, r: 0.3)
    assert d.instance.instance == "cpu-a"


def test_a_busy_fast_instance_loses_to_an_idle_slower_one(state):
    views = [_view(state, "ft-h100", "fantasytalking", "h100", 8, queued_s=400.0),
             _view(state, "ft-a100", "fantasytalking", "a100", 8)]
    (d,), _ = assign([ReadyNode("c0", "video", 1e9, "r")], views, cap=3, runtime_s=_runtime(state),
                     ladders={"video": LADDER})
    assert d.instance.instance == "ft-a100"


def test_quality_steps_down_when_ttff_is_tight_and_climbs_back_one_rung_at_a_time(state):
    views = [_view(state, "ft", "fantasytalking", "gb200", 8), InstanceView("cpu", "video", "cpu-head", 0)]
    runtime = _runtime(state)
    states = {}
    rungs = []
    # the first three shots are due within seconds (tight TTFF), the rest far in the future
    for k in range(12):
        deadline = 3.0 + k if k < 3 else 10_000.0 + k
        decisions, states = assign([ReadyNode(f"c{k}", "video", deadline, "r")], views, cap=100, now=0.0,
                                   runtime_s=runtime, ladders={"video": LADDER}, states=states)
        rungs.append(decisions[0].rung.name)
    assert rungs[:3] == ["static"] * 3                                # nothing else fits in 3 s
    assert decisions[0].instance.instance == "ft"
    climb = rungs[3:]
    order = [r.name for r in LADDER.rungs]
    assert climb[-1] == "high"
    steps = [order.index(a) - order.index(b) for a, b in zip(climb, climb[1:])]
    assert all(s in (0, 1) for s in steps)                           # one rung at a time, never down
    assert climb.count("low") >= LADDER.climb_after - 1 and "medium" in climb


def test_static_rung_when_no_gpu_instance_exists(state):
    views = [InstanceView("cpu", "video", "cpu-head", 0)]
    decisions, states = assign([ReadyNode("c0", "video", 100.0, "r")], views, cap=3, now=0,
                               runtime_s=_runtime(state), ladders={"video": LADDER})
    assert decisions[0].rung.name == "static" and states["r"] == QualityState(LADDER.index("static"), 0)


def test_an_instance_without_a_profile_is_never_chosen(state):
    views = [_view(state, "odd", "fantasytalking", "h100", 3)]     # 3 GPUs: not a profiled layout
    decisions, _ = assign([ReadyNode("c0", "video", 100.0, "r")], views, cap=3, runtime_s=_runtime(state),
                          ladders={"video": LADDER})
    assert decisions == []


def test_learnt_speed_changes_the_expected_runtime(state):
    s = InstanceState(ttl_s=10)
    cpu = InstanceView("cpu-1", "video", "cpu-head", 0)
    before = s.runtime_s(cpu, None, cpu_estimate_s=1.0, duration_s=2.0, ladder=None)
    for i in range(10):
        s.dispatched("cpu-1", f"t{i}", 1.0)
        s.finished("cpu-1", f"t{i}", observed_s=2.5)                 # this CPU is 2.5x slower than profiled
    after = s.runtime_s(cpu, None, cpu_estimate_s=1.0, duration_s=2.0, ladder=None)
    assert before == 1.0 and after == pytest.approx(2.5, rel=0.05)


def test_prices_come_from_the_paper():
    spot, reserved = load_prices("spot"), load_prices("reserved")
    assert (spot["a100"], spot["h100"], spot["h200"], spot["gb200"]) == (1.07, 4.03, 4.22, 10.76)
    assert reserved["gb200"] == 14.42


def test_fifo_baseline_serves_requests_in_arrival_order():
    ready = [ReadyNode("old-late", "tts", 100.0, "old", (1.0, 0)), ReadyNode("new-early", "tts", 5.0, "new", (2.0, 0))]
    views = [InstanceView("t", "tts", "piper", 0)]
    edf, _ = assign(ready, views, cap=1)
    fifo, _ = assign(ready, views, cap=1, policy="fifo")
    assert [d.node.key for d in edf] == ["new-early"] and [d.node.key for d in fifo] == ["old-late"]
    with pytest.raises(ValueError, match="policy"):
        assign(ready, views, cap=1, policy="lottery")


def test_a_node_waits_for_a_busy_gpu_that_meets_its_deadline_instead_of_dropping_to_static(state):
    """Every GPU instance at its cap, a CPU instance free: a clip whose deadline the busy GPU
    still meets (queue + runtime) is held for it at a GPU rung; a clip due too soon for the
    wait goes to the CPU at once; and the held clip's wait is counted against the next one."""
    gpu = InstanceView("ft", "video", "fantasytalking", 3, hardware="gb200", gpus=8, queued_s=20.0,
                       price_per_s=state.prices["gb200"] * 8 / 3600)
    views = [gpu, InstanceView("cpu", "video", "cpu-head", 0)]
    runtime = _runtime(state)
    low = runtime(ReadyNode("x", "video", 0), gpu, LADDER.rungs[LADDER.index("low")])
    relaxed = ReadyNode("late", "video", 20.0 + 1.5 * low, "r")
    decisions, _ = assign([relaxed], views, cap=3, now=0.0, runtime_s=runtime, ladders={"video": LADDER},
                          states={"r": QualityState(LADDER.index("low"), 0)})
    assert decisions == []                                        # held for the GPU, not rendered static
    urgent = ReadyNode("soon", "video", 3.0, "r")
    (d,), _ = assign([urgent], views, cap=3, now=0.0, runtime_s=runtime, ladders={"video": LADDER})
    assert d.instance.instance == "cpu" and d.rung.name == "static"
    # two relaxed clips that only one wait fits: the first is held, the second goes static now
    second = ReadyNode("late2", "video", 20.0 + 1.5 * low + 0.1, "r")
    decisions, _ = assign([relaxed, second], views, cap=3, now=0.0, runtime_s=runtime, ladders={"video": LADDER},
                          states={"r": QualityState(LADDER.index("low"), 0)})
    assert [(d.node.key, d.rung.name) for d in decisions] == [("late2", "static")]


def test_on_a_busy_cpu_quality_gives_way_before_playback(state):
    """Only a CPU instance, its queue 1 s deep; a clip of 0.5 s CPU work: with 2 s to its deadline
    it renders at `static`; with 1.2 s only the cheaper `still` rung (drawn three times a second,
    its measured cpu_cost 0.25) finishes in time, so it steps down instead of arriving late."""
    cpu = _view(state, "cpu", "cpu-head", "cpu", 0, queued_s=1.0)
    (relaxed,), _ = assign([ReadyNode("c0", "video", 2.0, "r1")], [cpu], cap=3, now=0.0, runtime_s=_runtime(state),
                           ladders={"video": LADDER})
    (tight,), _ = assign([ReadyNode("c1", "video", 1.2, "r2")], [cpu], cap=3, now=0.0, runtime_s=_runtime(state),
                         ladders={"video": LADDER})
    assert relaxed.rung.name == "static" and relaxed.expected_s == pytest.approx(0.5)
    assert tight.rung.name == "still" and tight.expected_s == pytest.approx(0.125)


def test_a_request_running_late_is_held_to_the_cheapest_rung(state):
    """With slack for the top rung on a free GPU, a node whose request is running late (its floor
    at the last rung) still renders at `still`; the hysteresis state follows it down."""
    views = [_view(state, "ft-h100", "fantasytalking", "h100", 8), _view(state, "cpu", "cpu-head", "cpu", 0)]
    (normal,), _ = assign([ReadyNode("c0", "video", 1e9, "r1")], views, cap=3, now=0.0, runtime_s=_runtime(state),
                          ladders={"video": LADDER})
    (late,), states = assign([ReadyNode("c1", "video", 1e9, "r2", floor=len(LADDER.rungs) - 1)], views, cap=3,
                             now=0.0, runtime_s=_runtime(state), ladders={"video": LADDER})
    assert normal.rung.name == "high" and late.rung.name == "still" and late.instance.instance == "cpu"
    assert states["r2"] == QualityState(LADDER.index("still"), 0)


def test_a_floor_no_instance_can_serve_does_not_apply(state):
    """Only GPU instances (no CPU head): a late request's floor (the CPU `still` rung) would
    leave the node nowhere to run, so it is placed on the GPU rungs as usual."""
    views = [_view(state, "ft-h100", "fantasytalking", "h100", 8)]
    (d,), _ = assign([ReadyNode("c1", "video", 1e9, "r", floor=len(LADDER.rungs) - 1)], views, cap=3, now=0.0,
                     runtime_s=_runtime(state), ladders={"video": LADDER})
    assert d.instance.instance == "ft-h100" and d.rung.name == "high"


def test_fifo_does_not_adapt_quality_it_runs_the_best_rung_the_pool_serves_and_waits_for_it(state):
    """The FIFO baseline means one thing live and simulated (issue 10): no adaptive quality. A
    clip due in 1 s (the top rung cannot make it) stays on the top rung under FIFO, where EDF
    steps down; with the top rung's instance at its cap, FIFO holds the clip instead of sending
    it to the free CPU instance; on a pool without FantasyTalking it runs the best CPU rung (static, not the
    cheaper still rung below it)."""
    ft = _view(state, "ft", "fantasytalking", "h100", 1)
    cpu = InstanceView("cpu", "video", "cpu-head", 0)
    node = [ReadyNode("c0", "video", 1.0, "r", (0, 0))]
    kw = dict(cap=1, now=0, runtime_s=_runtime(state), ladders={"video": LADDER})
    (edf,), _ = assign(node, [ft, cpu], policy="edf", **kw)
    (fifo,), _ = assign(node, [ft, cpu], policy="fifo", **kw)
    assert edf.rung.name != LADDER.top.name
    assert (fifo.rung.name, fifo.instance.instance) == (LADDER.top.name, "ft")
    busy = InstanceView("ft", "video", "fantasytalking", 1, hardware="h100", gpus=1, queued_s=30.0)
    held, _ = assign(node, [busy, cpu], policy="fifo", **kw)
    assert held == []
    (alone,), _ = assign(node, [cpu], policy="fifo", **kw)
    best_cpu = next(r for r in LADDER.rungs if LADDER.model_of(r) == "cpu-head")
    assert alone.instance.instance == "cpu" and alone.rung.name == best_cpu.name == "static"


def test_placement_groups_decide_exactly_as_placing_on_every_instance(state):
    """A pool of instances placed by group (one runtime per model, hardware and GPU count,
    ``InstanceView.group``, each instance's learnt ``factor`` applied by placement) gives the same
    decisions, rungs, expected seconds and states as the same pool placed instance by instance,
    over random loads, speeds, deadlines and caps; and it asks for fewer runtimes."""
    import random

    rng = random.Random(7)
    calls = {"grouped": 0, "each": 0}
    kinds = [("fantasytalking", "gb200", 40), ("fantasytalking", "h200", 8), ("cpu-head", "cpu", 0)]
    for trial in range(60):
        views = []
        for k, (model, hw, gpus) in enumerate(kinds):
            for r in range(rng.randint(0 if k else 1, 6)):
                price = state.prices[hw] * max(gpus, 1) / 3600
                views.append(InstanceView(f"i{r}-{model}-{hw}", "video", model, rng.randint(0, 4),
                                          hardware=hw, gpus=gpus, queued_s=rng.choice([0.0, 0.0, rng.uniform(0, 60)]),
                                          price_per_s=price, group=(hw, gpus), factor=rng.choice([1.0, 1.0, 0.8, 1.3])))
        ungrouped = [InstanceView(**{**v.__dict__, "group": None}) for v in views]
        nodes = [ReadyNode(f"c{i}", "video", rng.uniform(0, 90), f"r{i % 3}", (i // 3, i)) for i in range(rng.randint(1, 30))]
        cap = rng.randint(1, 4)

        def runtime(name):
            def rt(node, inst, rung):
                calls[name] += 1
                return state.runtime_s(inst, rung, cpu_estimate_s=0.5, duration_s=CLIP_S, ladder=LADDER)
            return rt

        for policy in ("edf", "fifo"):
            now = rng.uniform(0, 5)
            a, sa = assign(nodes, views, cap=cap, now=now, runtime_s=runtime("grouped"), ladders={"video": LADDER},
                           policy=policy)
            b, sb = assign(nodes, ungrouped, cap=cap, now=now, runtime_s=runtime("each"), ladders={"video": LADDER},
                           policy=policy)
            assert [(d.node.key, d.instance.instance, d.rung.name, d.expected_s) for d in a] == \
                   [(d.node.key, d.instance.instance, d.rung.name, d.expected_s) for d in b], (trial, policy)
            assert sa == sb
    assert calls["grouped"] < calls["each"] / 2
