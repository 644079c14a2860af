"""The paper's workload stated as the live scheduler sees it (streamwise/sim/paperplan.py) and run
with the plan-driven simulator: the request's length, the pool's instances, and a run on the
cheapest 16-A100 cluster."""

from __future__ import annotations

from streamwise.core.dag import NodeState
from streamwise.sim.cluster import Cluster, Instance
from streamwise.sim.paperplan import STAGE_OF, paper_pool, paper_request, simulate_plans
from streamwise.sim.plans import ProfileOracle
from streamwise.sim.workload import load_workload
from streamwise.workflow.podcast import PodcastPlan
from streamwise.core.deadlines import load_profiles


def _cluster() -> Cluster:
    return Cluster({"a100": 16}, (
        Instance("fantasytalking", "a100", 1, 7), Instance("flux", "a100", 1, 1), Instance("gemma", "a100", 1, 1),
        Instance("hunyuanframepack", "a100", 1, 2), Instance("hunyuanframepack-vae", "a100", 1, 1),
        Instance("kokoro", "a100", 1, 1), Instance("realesrgan", "a100", 1, 3)), "spot", "t")


def test_the_paper_request_speaks_its_scenes_for_the_workload_s_length():
    w = load_workload()
    r = paper_request(w)
    plan = PodcastPlan(r, load_profiles())
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    plan._complete(node, ProfileOracle().outputs(plan, node, None))
    assert plan.lines == w.scenes and len(plan.speakers) == 2
    spoken = sum(p.est_s for p in plan.pieces) + plan.lines * 0.35
    assert abs(spoken - w.video_s) < 0.05 * w.video_s
    assert abs(r.max_clip_s - 81 / 23) < 1e-9 and r.ttff_s == w.ttff_slo_s


def test_the_pool_has_one_instance_per_replica_in_its_live_stage():
    pool = paper_pool(_cluster(), cpu_video=3)
    stages = {}
    for hb in pool:
        stages[(hb.stage, hb.model)] = stages.get((hb.stage, hb.model), 0) + 1
    assert stages[("video", "fantasytalking")] == 7 and stages[("upscale", "realesrgan-x2")] == 3
    assert stages[("sketch", "hunyuanframepack")] == 2 and stages[("vae", "hunyuanframepack-vae")] == 1
    assert stages[("video", "cpu-head")] == 3 and ("screenplay", "script-parser") in stages
    assert not any(hb.model == "gemma" for hb in pool)      # a script request's screenplay is parsed on CPU
    assert set(STAGE_OF) >= {"fantasytalking", "hunyuanframepack", "realesrgan", "flux", "kokoro"}


def test_fifo_runs_the_whole_show_at_the_top_rung_through_the_gpu_chain():
    w = load_workload()
    out = simulate_plans(_cluster(), w, policy="fifo")
    assert out["completed"] == 1 and out["rungs"] == {"high": out["rungs"]["high"]}
    assert out["rungs"]["high"] >= w.clips                      # every clip, at least as many as the paper's
    assert abs(out["video_s"] - w.video_s) < 0.05 * w.video_s
    assert out["makespan_s"] > w.video_s and out["stall_s"] > 0   # 16 A100 are far from real time
    edf = simulate_plans(_cluster(), w, policy="edf")
    assert edf["completed"] == 1 and edf["ttff_s"] < out["ttff_s"]
