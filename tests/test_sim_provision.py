"""Allocators and the provisioner on small cases with known answers.

16 A100 GPUs (spot) for the paper's 10-minute podcast: the exhaustive search over every
per-model layout finds 1 GPU each for Gemma, FLUX, Kokoro and the FramePack VAE, 2 FramePack
replicas, 7 FantasyTalking replicas and 3 Real-ESRGAN replicas: 1.472 h for $25.20
(tests/test_sim_analytic.py works its makespan out by hand). Our search must find exactly
that; the paper's greedy (re-implemented) must not beat it.
"""

from __future__ import annotations

import numpy as np
import pytest

from streamwise.sim.allocate import greedy, naive
from streamwise.sim.analytic import Model, evaluate
from streamwise.sim.cluster import Instance, load_cluster, plan_emulate_specs, write_plan
from streamwise.sim.provision import _hull, exhaustive, model_options, pareto, search
from streamwise.sim.workload import FT, HF, load_workload

W = load_workload()
OPTIMUM_16 = [("fantasytalking", "a100", 1, 7), ("flux", "a100", 1, 1), ("gemma", "a100", 1, 1),
              ("hunyuanframepack", "a100", 1, 2), ("hunyuanframepack-vae", "a100", 1, 1), ("kokoro", "a100", 1, 1),
              ("realesrgan", "a100", 1, 3)]


def _layout(c):
    return sorted((i.model, i.gpu, i.gpus, i.replicas) for i in c.instances)


def test_exhaustive_and_search_agree_on_16_a100():
    obj, c = exhaustive(W, {"a100": 16})
    assert _layout(c) == OPTIMUM_16
    p = search(W, gpu_types=["a100"], max_gpus=16)
    assert _layout(p.best.cluster) == OPTIMUM_16
    assert p.best.objective == pytest.approx(obj, rel=1e-9)
    r = evaluate(c, W)
    assert obj == pytest.approx(r.ttff_s * r.cost_usd, rel=1e-9)


def test_the_papers_greedy_is_no_better_than_the_optimum():
    obj, _ = exhaustive(W, {"a100": 16})
    g = evaluate(greedy({"a100": 16}, W), W)
    assert g.ttff_s * g.cost_usd >= obj
    assert sum(i.total_gpus for i in greedy({"a100": 16}, W).instances) == 16     # it uses the budget


def test_naive_16_a100_split_by_maximum_parallelism():
    # 8 GPUs of the fixed layout; of the other 8: FLUX int(8*16/106)=1 more (2 GPUs), FramePack
    # int(8*40/106)=3 more replicas, FantasyTalking 3 more, Gemma 0; the last GPU round-robin to
    # FantasyTalking (the model holding most GPUs): 1+2+1+4+8 = 16.
    nw = W.with_(upscaler=False, disaggregate={HF: False, FT: False})
    assert _layout(naive({"a100": 16}, nw)) == [("fantasytalking", "a100", 1, 8), ("flux", "a100", 2, 1),
                                                ("gemma", "a100", 1, 1), ("hunyuanframepack", "a100", 1, 4),
                                                ("kokoro", "a100", 1, 1)]


def test_option_arrays_match_the_evaluator():
    an = Model(W)
    for m in ("fantasytalking", "hunyuanframepack", "realesrgan", "hunyuanframepack-vae", "gemma"):
        o = model_options(an, an, m, "h100", 64)
        for k in np.linspace(0, len(o.n) - 1, 25).astype(int):
            t, f, _ = an.stage(m, o.instances(int(k)))
            assert o.t[k] == pytest.approx(t, rel=1e-9) and o.f[k] == pytest.approx(f, rel=1e-9)
            assert o.n[k] == sum(i.total_gpus for i in o.instances(int(k)))


def test_hull_keeps_the_lower_left_convex_chain():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 2.5])
    v = np.array([10.0, 6.0, 5.0, 2.0, 1.9, 7.0])      # (3, 5) lies above the chord (2,6)-(4,2)
    assert _hull(x, v).tolist() == [0, 1, 3, 4]


def test_slo_is_respected_or_reported():
    p = search(W, max_ttff_s=30.0)
    assert p.feasible and p.result.ttff_s <= 30.0
    assert p.result.makespan_s <= W.video_s + p.result.ttff_s + 1e-6      # real time
    q = search(W, max_ttff_s=1.0)                                        # impossible at high quality
    assert not q.feasible


def test_pareto_frontier():
    p = search(W, gpu_types=["a100"], max_gpus=64, keep_candidates=True)
    front = pareto(p.candidates)
    assert all(a.cost_usd <= b.cost_usd and a.ttff_s > b.ttff_s for a, b in zip(front, front[1:]))
    for c in p.candidates:       # nothing explored dominates a frontier point
        assert not any(c.cost_usd < f.cost_usd - 1e-9 and c.ttff_s < f.ttff_s - 1e-9 for f in front)


def test_plan_round_trip_and_emulate_specs(tmp_path):
    _, c = exhaustive(W, {"a100": 16})
    path = tmp_path / "plan.yaml"
    write_plan(c, path, {"ttff_s": 1.0})
    back = load_cluster(str(path))
    assert _layout(back) == OPTIMUM_16 and back.pricing == "spot"
    specs = plan_emulate_specs(path)
    assert specs.count("fantasytalking:a100:1") == 7 and specs.count("hunyuanframepack:a100:1") == 2
    # the GPU chain's VAE and upscaler too (live stages vae and upscale), under their worker model names
    assert specs.count("hunyuanframepack-vae:a100:1") == 1 and specs.count("realesrgan-x2:a100:1") == 3
    assert len(specs) == 13
    assert Instance("gemma", "a100", 1) in back.instances


def test_the_papers_adaptive_provisioner_pairs_a_low_run_with_the_high_cost():
    from streamwise.sim.analytic import evaluate_adaptive

    wa = load_workload("podcast10_adaptive")
    p = search(wa, gpu_types=["a100"], max_gpus=64, adaptive=True, adaptive_method="paper")
    assert p.low_cluster is not None
    again = evaluate_adaptive(p.best.cluster, wa, method="paper", low_cluster=p.low_cluster)
    assert p.result.ttff_s == pytest.approx(again.ttff_s) and p.result.cost_usd == pytest.approx(again.cost_usd)
    assert p.result.cost_usd == pytest.approx(evaluate(p.best.cluster, wa).cost_usd, rel=1e-9)
    high_servers = p.best.cluster.servers()
    assert all(n <= high_servers.get(g, 0) for g, n in p.low_cluster.servers().items())   # the same budget
    # the paper's method is never stricter than ours on the same cluster
    assert p.result.ttff_s <= evaluate_adaptive(p.best.cluster, wa, method="ours").ttff_s + 1e-9
