"""The discrete-event engine on a tiny podcast worked out by hand, and the live policies in it.

Tiny podcast at 640x400 (the paper's "medium" level, no upscaler): one scene, two 3.5 s clips (81
FantasyTalking frames, 105 FramePack frames
each), VAEs inline, no upscaler; one A100 instance per model. Per-task seconds from the
reference A100 rows: Gemma 5.941 (one scene), FLUX 0.39 x 25 = 9.75, Kokoro 0.6, FramePack
105/324 x 2.675 x 10 + 105 x 6.173514/324, FantasyTalking 81/77 x 12.209252 x 10 + 81 x 3.817476/77.
"""

from __future__ import annotations

import pytest

from streamwise.quality import Ladder, Rung
from streamwise.sim.cluster import Cluster, Instance
from streamwise.sim.des import simulate
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
    w = TINY.with_(clips=4, video_s=14.0, arrivals=Arrivals("poisson", 60.0, 2, 3,
                                                            (SloClass("batch", 0.5, 10000.0),)))
    w = w.with_(arrivals=Arrivals("single"))
    from streamwise.sim import des
    sim = des.Simulator(CLUSTER, w, policy=policy, cpu_instances=0, cap=1)
    sim._push(0.0, des._ARRIVE, (0, SloClass("batch", 1, 10000.0)))
    sim._push(1.0, des._ARRIVE, (1, SloClass("interactive", 1, 1.0)))
    while sim.events:
        import heapq
        t, _, kind, p = heapq.heappop(sim.events)
        sim.now = t
        if kind == des._DONE:
            sim._done(sim.by_id[p[0]], p[1], p[2])
        elif kind == des._SCENE:
            req = sim.reqs[p[0]]
            if p[1] == 0:
                sim._ready(req, "flux", 0)
            sim._ready(req, "kokoro", p[1])
        else:
            sim._admit(p[0], t, p[1].ttff_s, p[1].name)
    return sim._result().requests


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
