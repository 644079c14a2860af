"""The paper's analytic evaluator and cost accounting, against hand-worked answers.

Every expected number below is worked out by hand from the reference mapping rows
(configs/profiles/reference, A100): FantasyTalking 12.209252 s/step and VAE 3.817476 s per
77-frame row; FramePack 2.675 s/step and VAE 6.173514 s per 324-frame row; FLUX 0.39 s/step;
Gemma 5.941 s first scene + 0.649 s per further scene; Kokoro+YOLO 0.6 s per scene; Real-ESRGAN
0.193 s per frame. Formulas: StreamWise paper (arXiv 2603.05800), Azure/realtimevideogen
simulator/models.py and evaluator.py.
"""

from __future__ import annotations

import pytest

from streamwise.sim.allocate import naive
from streamwise.sim.analytic import evaluate, split_time
from streamwise.sim.cluster import Cluster, ClusterError, Instance, parse_spec
from streamwise.sim.workload import FT, HF, load_workload

W = load_workload()
NAIVE_W = W.with_(upscaler=False, disaggregate={HF: False, FT: False})


def test_split_time_is_work_over_replicas_but_never_below_one_unit():
    assert split_time(172, 2, 10.0) == pytest.approx(860.0)
    assert split_time(1, 5, 10.0) == pytest.approx(10.0)
    assert split_time(10, 0, 10.0) == 0.0


def test_workload_numbers_are_the_papers():
    assert (W.video_s, W.scenes, W.clips) == (600, 43, 172)
    assert W.total_frames(FT) == 13800 and W.total_frames(HF) == 18000
    assert W.clip_frames(FT) == 81 and W.clip_frames(HF) == 105     # ceil(13800/172), ceil(18000/172)


def test_naive_8xa100_takes_8_4_hours_as_in_the_paper():
    c = naive({"a100": 8}, NAIVE_W, "reserved")
    assert sorted((i.model, i.gpus, i.replicas) for i in c.instances) == [
        ("fantasytalking", 1, 4), ("flux", 1, 1), ("gemma", 1, 1), ("hunyuanframepack", 1, 1), ("kokoro", 1, 1)]
    r = evaluate(c, NAIVE_W)
    s = 4.0                                                     # no upscaler: 1280x800 / 640x400
    hf = 172 * (105 / 324 * 2.675 * s * 10) + 18000 * (6.173514 * s / 324)
    ft = 172 / 4 * (81 / 77 * 12.209252 * s * 10) + 13800 / 4 * (3.817476 * s / 77)
    gemma, flux, tts = 5.941 + 0.649 * 42, 0.39 * 25, 43 * 0.6
    makespan = gemma + flux + tts + hf + ft
    assert makespan == pytest.approx(30179.89, abs=0.01)           # 8.38 h; the paper: 8.3 h
    assert r.makespan_s == pytest.approx(makespan, rel=1e-6)
    assert r.cost_usd == pytest.approx(8 * 3.40 * makespan / 3600, rel=1e-6)   # reserved A100, one server
    first = 5.941 + 0.39 * 25 + 0.6 + (105 / 324 * 2.675 * s * 10 + 105 / 324 * 6.173514 * s) \
        + (81 / 77 * 12.209252 * s * 10 + 81 / 77 * 3.817476 * s)
    assert r.first_chunk_s == pytest.approx(first, rel=1e-6)
    assert r.ttff_s == pytest.approx(max(first, makespan - 600), rel=1e-6)


CHEAPEST = Cluster({"a100": 16}, (Instance("gemma", "a100", 1), Instance("flux", "a100", 1),
                                  Instance("kokoro", "a100", 1), Instance("hunyuanframepack", "a100", 1, 2),
                                  Instance("hunyuanframepack-vae", "a100", 1), Instance("fantasytalking", "a100", 1, 7),
                                  Instance("realesrgan", "a100", 1, 3)), "spot")


def test_cheapest_16xa100_streams_10_minutes_in_1_47_hours_for_25_dollars():
    r = evaluate(CHEAPEST, W)
    hf = 172 / 2 * (105 / 324 * 2.675 * 10)                     # disaggregated: the VAE on its own GPU
    vae = 18000 * 6.173514 / 324
    ft = 172 / 7 * (81 / 77 * 12.209252 * 10) + 13800 / 7 * (3.817476 / 77)   # VAE inline
    up = 13800 / 3 * 0.193
    makespan = 5.941 + 0.649 * 42 + 0.39 * 25 + 43 * 0.6 + hf + vae + ft + up
    assert r.makespan_s == pytest.approx(makespan, rel=1e-6)
    assert r.makespan_s / 3600 == pytest.approx(1.472, abs=0.001)         # the paper: 1.4 h, < $25
    assert r.cost_usd == pytest.approx(16 * 1.07 * makespan / 3600, rel=1e-6)
    assert r.cost_usd == pytest.approx(25.20, abs=0.01)


def test_work_is_split_by_throughput_across_gpu_types():
    # 1 x A100 and 1 x H200 FantasyTalking: shares by 1/(step + vae/steps); each side's time
    # is its ceil(share * 172) clips.
    c = Cluster({"a100": 8, "h200": 8}, CHEAPEST.instances[:5] + (
        Instance("fantasytalking", "a100", 1), Instance("fantasytalking", "h200", 1), Instance("realesrgan", "a100", 1)))
    r = evaluate(c, W)
    ca, ch = 1 / (12.209252 + 3.817476 / 10), 1 / (5.831083 + 1.439167 / 10)
    na, nh = -(-172 * ca // (ca + ch)), -(-172 * ch // (ca + ch))
    ta = na * 81 / 77 * 12.209252 * 10 + -(-13800 * ca // (ca + ch)) * 3.817476 / 77
    th = nh * 81 / 77 * 5.831083 * 10 + -(-13800 * ch // (ca + ch)) * 1.439167 / 77
    assert r.stages["fantasytalking"][0] == pytest.approx(max(ta, th), rel=1e-6)


def test_cost_rounds_used_gpus_up_to_whole_servers_per_type():
    c = Cluster({"a100": 16, "h100": 8}, CHEAPEST.instances + (Instance("fantasytalking", "h100", 2),), "spot")
    assert c.used() == {"a100": 16, "h100": 2} and c.servers() == {"a100": 2, "h100": 1}
    r = evaluate(c, W)
    assert r.cost_usd == pytest.approx((16 * 1.07 + 8 * 4.03) * r.makespan_s / 3600, rel=1e-9)
    res = Cluster({"a100": 16}, CHEAPEST.instances, "reserved")
    assert evaluate(res, W).cost_usd == pytest.approx(16 * 3.40 * evaluate(res, W).makespan_s / 3600, rel=1e-9)


def test_energy_is_busy_watts_while_working_and_idle_watts_after():
    c = naive({"a100": 8}, NAIVE_W, "reserved")
    r = evaluate(c, NAIVE_W)
    M = r.makespan_s
    busy = {"fantasytalking": 388, "flux": 276, "gemma": 300, "hunyuanframepack": 129, "kokoro": 65}
    joules = sum(i.total_gpus * (busy[i.model] * r.stages[i.model][0] + 65 * (M - r.stages[i.model][0]))
                 for i in c.instances)
    assert r.energy_kwh == pytest.approx(joules / 3.6e6, rel=1e-9)


def test_static_slide_shortens_ttff_by_its_length_never_below_zero():
    fast = Cluster({"h200": 8}, tuple(Instance(i.model, "h200", i.gpus, i.replicas) for i in CHEAPEST.instances))
    base = evaluate(fast, W)
    slid = evaluate(fast, W.with_(static_slide_s=0.5))
    assert slid.ttff_s == pytest.approx(base.ttff_s - 0.5)
    assert evaluate(fast, W.with_(static_slide_s=1e6)).ttff_s == 0.0


def test_spec_parsing():
    assert parse_spec("256xA100+64xH200") == {"a100": 256, "h200": 64}
    for bad in ("12xA100", "8xA100+8xH100+8xH200", "8xTPU", "A100"):
        with pytest.raises(ClusterError):
            parse_spec(bad)


def test_missing_model_is_reported():
    with pytest.raises(ValueError, match="no instance of"):
        evaluate(Cluster({"a100": 8}, CHEAPEST.instances[:3]), W)


def test_the_papers_adaptive_method_by_hand_on_the_cheapest_16xa100():
    # Azure/realtimevideogen simulator/provisioning.py get_provisioning_adaptive_results: TTFF of
    # a whole run at the low level (pixels x 1/16 for FLUX, FramePack, FantasyTalking, their
    # VAEs and the upscaler; data_loading.load_adaptive_quality_data) on its own allocation,
    # cost of the high-level run. Here the low run gets the same 16 A100 layout.
    from streamwise.sim.analytic import evaluate_adaptive

    wa = W.with_(static_slide_s=0.5)
    q = 1 / 16
    low_makespan = (5.941 + 0.649 * 42 + 0.39 * 25 * q + 43 * 0.6
                    + 172 / 2 * (105 / 324 * 2.675 * 10 * q) + 18000 * 6.173514 * q / 324
                    + 172 / 7 * (81 / 77 * 12.209252 * 10 * q) + 13800 / 7 * (3.817476 * q / 77)
                    + 13800 / 3 * 0.193 * q)
    assert low_makespan < 600                                 # so the low run's TTFF is its first chunk
    first_low = (5.941 + 0.39 * 25 * q + 0.6
                 + 36 / 324 * 2.675 * q * 10                  # FramePack's first 36-frame section
                 + 105 * 6.173514 * q / 324                   # its VAE, one clip
                 + 81 / 77 * 12.209252 * 10 * q + 81 * 3.817476 * q / 77   # FantasyTalking, VAE inline
                 + 81 * 0.193 * q)                            # Real-ESRGAN, one clip
    paper = evaluate_adaptive(CHEAPEST, wa, method="paper", low_cluster=CHEAPEST)
    assert paper.first_chunk_s == pytest.approx(first_low, rel=1e-6)
    assert paper.ttff_s == pytest.approx(first_low - 0.5, rel=1e-6)          # ~16.2 s
    assert paper.cost_usd == pytest.approx(25.20, abs=0.01)                   # the high run's cost
    assert paper.makespan_s == pytest.approx(evaluate(CHEAPEST, W).makespan_s, rel=1e-9)
    # ours on the same instances: the high run still has to stream 600 s without a stall
    ours = evaluate_adaptive(CHEAPEST, wa, method="ours")
    assert ours.ttff_s == pytest.approx(evaluate(CHEAPEST, W).makespan_s - 600 - 0.5, rel=1e-6)
    assert ours.cost_usd == pytest.approx(paper.cost_usd, rel=1e-9)
    with pytest.raises(ValueError, match="adaptive method"):
        evaluate_adaptive(CHEAPEST, wa, method="mine")
