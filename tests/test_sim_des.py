"""The discrete-event engine on a tiny podcast worked out by hand, and the live policies in it.

Tiny podcast at 640x400 (the paper's "medium" level, no upscaler): one scene, two 3.5 s clips (81
FantasyTalking frames, 105 FramePack frames
each), VAEs inline, no upscaler; one A100 instance per model. Per-task seconds from the
reference A100 rows: Gemma 5.941 (one scene), FLUX 0.39 x 25 = 9.75, Kokoro 0.6, FramePack
105/324 x 2.675 x 10 + 105 x 6.173514/324, FantasyTalking 81/77 x 12.209252 x 10 + 81 x 3.817476/77.
"""

from __future__ import annotations

import pytest

from streamwise.core.quality import Ladder, Rung
from streamwise.sim.cluster import Cluster, Instance
from streamwise.sim.des import Simulator, simulate
from streamwise.sim.workload import FT, HF, Arrivals, SloClass, load_workload

BASE = load_workload()
TOP = Rung("high", 640, 400, 10, 23.0, FT)          # no upscaling: the clip is the output
ONE_RUNG = Ladder(FT, (TOP,), (640, 400))
TINY = BASE.with_(video_s=7.0, scenes=1, clips=2, upscaler=False, disaggregate={HF: False, FT: False}, quality="medium",
                  ladder=ONE_RUNG, ttff_slo_s=10.0)
CLUSTER = Cluster({"a100": 8}, tuple(Instance(m, "a100", 1) for m in ("gemma", "flux", "kokoro", HF, FT)), "spot")
HF_S = 105 / 324 * 2.675 * 10 + 105 * 6.173514 / 324
FT_S = 81 / 77 * 12.209252 * 10 + 81 * 3.817476 / 77


def test_tiny_podcast_timeline_by_hand():
    r = simulate(CLUSTER, TINY, policy="edf", cpu_instances=0)
    (s,) = r.requests
    flux_done = 5.941 + 9.75                     # the scene streams out at 5.941 s, then the studio image
    hf0 = flux_done + HF_S                       # TTS (0.6 s) is done long before
    seg0 = hf0 + FT_S
    seg1 = seg0 + FT_S                           # clip 1 waits for the one FantasyTalking instance
    assert s.ttff_s == pytest.approx(seg0, rel=1e-9)
    assert s.makespan_s == pytest.approx(seg1, rel=1e-9)
    assert s.stall_s == pytest.approx(seg1 - (seg0 + 3.5), rel=1e-9)   # clip 1 due 3.5 s into playback
    assert s.deadline_misses == 2                # TTFF SLO 10 s
    assert s.rungs == {"high": 2}
    busy = 5.941 + 9.75 + 0.6 + 2 * HF_S + 2 * FT_S
    assert r.utilisation == pytest.approx(busy / (8 * seg1), rel=1e-9)
    assert r.cost_usd == pytest.approx(8 * 1.07 * seg1 / 3600, rel=1e-9)


def test_pipelining_beats_the_analytic_sum_of_stages():
    from streamwise.sim.analytic import evaluate
    r = simulate(CLUSTER, TINY, cpu_instances=0)
    a = evaluate(CLUSTER, TINY)
    # analytic: every stage after the previous one; DES: clip 1's FramePack overlaps clip 0's lip-sync
    # (the analytic VAE decodes ceil(7 s x 23) = 161 frames in all, the DES 81 per clip)
    vae_frame = 3.817476 / 77
    assert a.makespan_s == pytest.approx(5.941 + 9.75 + 0.6 + 2 * HF_S + 2 * FT_S - vae_frame, rel=1e-9)
    assert r.requests[0].makespan_s == pytest.approx(a.makespan_s - 0.6 - HF_S + vae_frame, rel=1e-9)


def _two_requests(policy):
    # request 0 (batch, loose SLO) arrives first; request 1 (interactive, TTFF 1 s) 1 s later
    w = TINY.with_(clips=4, video_s=14.0)
    sim = Simulator(CLUSTER, w, policy=policy, cpu_instances=0, cap=1)
    return sim.run([(0.0, SloClass("batch", 1, 10000.0)), (1.0, SloClass("interactive", 1, 1.0))]).requests


def test_edf_lets_a_tight_request_overtake_fifo_does_not():
    edf, fifo = _two_requests("edf"), _two_requests("fifo")
    assert edf[1].ttff_s < fifo[1].ttff_s          # the interactive request's first clip goes first
    assert edf[0].makespan_s >= fifo[0].makespan_s  # at the batch request's expense


def test_adaptive_quality_steps_down_under_a_tight_slo_and_stays_high_when_loose():
    w = BASE.with_(video_s=14.0, scenes=1, clips=4, ttff_slo_s=1.0)
    c = Cluster({"h200": 8}, tuple(Instance(m, "h200", 1) for m in ("gemma", "flux", "kokoro", HF,
                                                                    "hunyuanframepack-vae", FT, "realesrgan")))
    tight = simulate(c, w, cpu_instances=2).requests[0]
    assert tight.rungs["static"] > 0
    # with room on the GPU instance (a cap above the clips in flight) slack keeps every clip high;
    # at the live cap (3) a fourth clip finds only the CPU instance with room and goes static:
    # assign() chooses among instances with room (see docs/simulation.md)
    loose = simulate(c, w.with_(ttff_slo_s=10000.0), cpu_instances=2, cap=8).requests[0]
    assert loose.rungs == {"high": 4}


def test_poisson_arrivals_are_seeded_and_classes_drawn_by_share():
    a = Arrivals("poisson", 10.0, 200, 7, (SloClass("a", 0.25, 2.0), SloClass("b", 0.75, 10.0)))
    t1, t2 = a.times(10.0), a.times(10.0)
    assert t1 == t2 and t1[0][0] == 0.0 and all(x[0] <= y[0] for x, y in zip(t1, t1[1:]))
    mean_gap = t1[-1][0] / 199
    assert 4.0 < mean_gap < 8.0                       # 6 s at 10 per minute
    assert 30 < sum(c.name == "a" for _, c in t1) < 70


# ------------------------------------------------------------------ spot evictions

FT_ID = f"{FT}-a100x1-0"           # the tiny cluster's one FantasyTalking instance


def test_an_eviction_during_a_clip_loses_it_and_the_replacement_runs_it_again():
    """Notice 1 s into clip 1's lip-sync (132 s long): the notice (30 s) is too short to finish
    it, so it is lost at +31 s and runs again when the replacement serves (+60 s)."""
    base = simulate(CLUSTER, TINY, cpu_instances=0).requests[0]
    seg0 = base.ttff_s                                   # clip 1 starts on the instance at seg0
    r = simulate(CLUSTER, TINY, cpu_instances=0, evict_at=[(FT_ID, seg0 + 1.0)], replace_s=60.0)
    (s,) = r.requests
    assert s.ttff_s == pytest.approx(seg0, rel=1e-9)     # clip 0 was done before the notice
    assert s.makespan_s == pytest.approx(seg0 + 31.0 + 60.0 + FT_S, rel=1e-9)
    assert (r.evictions, r.tasks_rerun, r.tasks_handed_back) == (1, 1, 0)
    assert r.lost_gpu_s == pytest.approx(31.0, rel=1e-9)
    busy = 5.941 + 9.75 + 0.6 + 2 * HF_S + 3 * FT_S - (FT_S - 31.0)   # the lost run's 31 s count, not its rest
    assert r.utilisation == pytest.approx(busy / (8 * s.makespan_s), rel=1e-9)
    assert s.rungs == {"high": 2}                        # each clip counted once


def test_an_evicted_instance_hands_its_queue_back_and_a_running_clip_is_lost():
    """Notice while clip 0 runs and clip 1 waits in the instance's queue: clip 1 is handed back
    at once, clip 0 is lost at the end of the notice; the replacement runs both, in order."""
    hf1 = 5.941 + 9.75 + 2 * HF_S                        # clip 1's FramePack done: it queues behind clip 0
    notice = hf1 + 0.5
    r = simulate(CLUSTER, TINY, cpu_instances=0, evict_at=[(FT_ID, notice)], replace_s=60.0)
    (s,) = r.requests
    back = notice + 30.0 + 60.0
    assert s.ttff_s == pytest.approx(back + FT_S, rel=1e-9)
    assert s.makespan_s == pytest.approx(back + 2 * FT_S, rel=1e-9)
    assert (r.evictions, r.tasks_rerun, r.tasks_handed_back) == (1, 1, 1)
    assert r.lost_gpu_s == pytest.approx(notice + 30.0 - (5.941 + 9.75 + HF_S), rel=1e-9)


def test_an_evicted_instance_runs_what_fits_in_the_notice_as_the_live_worker_does():
    """Notice 1 s into clip 0's FramePack (10.7 s) with clip 1's queued behind it: both finish
    within the 30 s notice, so, as the live worker drains (issue 10: one eviction rule), nothing
    is handed back or lost and the show is as fast as without the eviction."""
    hf_id = f"{HF}-a100x1-0"
    flux_done = 5.941 + 9.75
    base = simulate(CLUSTER, TINY, cpu_instances=0).requests[0]
    r = simulate(CLUSTER, TINY, cpu_instances=0, evict_at=[(hf_id, flux_done + 1.0)], replace_s=60.0)
    (s,) = r.requests
    assert (r.evictions, r.tasks_rerun, r.tasks_handed_back) == (1, 0, 0)
    assert r.lost_gpu_s == 0.0
    assert s.makespan_s == pytest.approx(base.makespan_s, rel=1e-9)


def test_spot_evictions_at_a_rate_lose_nothing_and_are_seeded():
    w = TINY.with_(clips=4, video_s=14.0, arrivals=Arrivals("poisson", 2.0, 6, 3, (SloClass("all", 1.0, 10.0),)))
    c = Cluster({"a100": 16}, tuple(Instance(m, "a100", 1, 2) for m in ("gemma", "flux", "kokoro", HF, FT)), "spot")
    calm = simulate(c, w, cpu_instances=0)
    stormy = simulate(c, w, cpu_instances=0, evictions_per_hour=30.0, replace_s=60.0, seed=5)
    assert stormy.evictions > 0 and stormy.tasks_rerun + stormy.tasks_handed_back > 0
    for res in (calm, stormy):
        assert len(res.requests) == 6 and all(sum(s.rungs.values()) == 4 for s in res.requests)
    assert max(s.makespan_s for s in stormy.requests) > max(s.makespan_s for s in calm.requests)
    again = simulate(c, w, cpu_instances=0, evictions_per_hour=30.0, replace_s=60.0, seed=5)
    assert again.as_dict() == stormy.as_dict()
    reserved = simulate(Cluster(c.budget, c.instances, "reserved"), w, cpu_instances=0, evictions_per_hour=30.0)
    assert reserved.evictions == 0                          # reserved VMs are not evicted
    assert simulate(c, w, cpu_instances=0, evictions_per_hour=0.0).as_dict() == calm.as_dict()


def test_evict_at_names_a_gpu_instance():
    with pytest.raises(ValueError, match="no GPU instance 'nope'"):
        simulate(CLUSTER, TINY, cpu_instances=0, evict_at=[("nope", 1.0)])
