"""The paper's workload on a cluster, run with the live request model (issue 10, a step towards one model).

:mod:`streamwise.sim.des` models the paper's 10-minute podcast with a DAG of its own. This module
states the same workload as the live scheduler sees it, so :class:`~streamwise.sim.plans.PlanSimulator`
(the live ``PodcastPlan``, instance snapshot and scheduling round) can run it on the same cluster:

- **the request**: a script of ``w.scenes`` lines (two speakers, alternating) whose sketch length
  (2.5 words/s plus the pause after a line) adds up to ``w.video_s``; clips at most FantasyTalking's
  81 frames at 23 fps (3.52 s); the TTFF SLO of the workload; 1280x800 at 25 fps;
- **the pool**: one emulated instance per replica of the cluster, each model as the live stage that
  runs it (:data:`STAGE_OF`): FantasyTalking -> ``video``, FramePack -> ``sketch``, its VAE ->
  ``vae``, Real-ESRGAN -> ``upscale``, FLUX -> ``image``, Kokoro -> ``tts``; plus the CPU workers the
  live pipeline needs (the script parser, ``mux``) and ``cpu_video`` CPU talking heads (the static and
  still rungs, as the DES's ``cpu_instances``);
- **the ladder**: the workload's FantasyTalking ladder (``w.ladder``), as the DES's.

What is not the paper's: a script request's screenplay is parsed on a CPU (no Gemma; the LLM
screenplay cannot be emulated, :class:`~streamwise.sim.plans.ProfileOracle`), the show has a studio and
one portrait per speaker (three FLUX images, the DES one), speech is one task per piece of a line (a
Kokoro task costs its profiled time per scene), segments are the live 1 s + 2 s ones muxed on CPU,
and task times are the reference profiles (``core.estimate``), not the analytic model's. FramePack's
fused VAE and FantasyTalking's own VAE are folded into their models' times.
"""

from __future__ import annotations

import math

from ..bus.messages import Heartbeat, Request
from ..core.deadlines import sketch_duration_s
from ..core.quality import load_ladders
from ..workflow.podcast import PAUSE_AFTER_LINE_S
from .cluster import SERVER_GPUS, Cluster, catalog
from .plans import PlanRun, PlanSimulator
from .workload import FLUX, FT, HF, HF_VAE, TTS, UPSCALER, Workload

#: a cluster model -> (live stage, live model name)
STAGE_OF = {FT: ("video", "fantasytalking"), HF: ("sketch", "hunyuanframepack"),
            HF_VAE: ("vae", "hunyuanframepack-vae"), UPSCALER: ("upscale", "realesrgan-x2"),
            FLUX: ("image", "flux"), TTS: ("tts", "kokoro")}
CPU_WORKERS = {"screenplay": ("script-parser", 1), "mux": ("pyav-fmp4", 4)}
_WORDS = ("the studio light falls on the river while the city wakes and people talk about history "
          "science music and the future of the ocean").split()


def paper_script(w: Workload) -> str:
    """``w.scenes`` lines, Ada and Ben in turn, whose sketch durations add up to ``w.video_s``."""
    per_line = w.video_s / w.scenes - PAUSE_AFTER_LINE_S
    words = max(1, round(per_line * 2.5))
    lines = []
    for k in range(w.scenes):
        text = " ".join(_WORDS[(k + i) % len(_WORDS)] for i in range(words)).capitalize() + "."
        lines.append(f"{'Ada' if k % 2 == 0 else 'Ben'}: {text}")
    assert abs(sketch_duration_s(lines[0].split(": ", 1)[1]) - words / 2.5) < 1.0
    return "\n".join(lines) + "\n"


def paper_request(w: Workload, request_id: str = "paper", ttff_s: float | None = None) -> Request:
    """The workload's podcast as a live script request (see the module docstring)."""
    return Request(request_id=request_id, submitted_at=0.0, script=paper_script(w), script_name="paper-podcast.txt",
                   ttff_s=float(ttff_s if ttff_s is not None else w.ttff_slo_s), width=1280, height=800, fps=25.0,
                   segment_s=2.0, first_segment_s=1.0, max_clip_s=w.clip_frames(FT) / w.fps[FT])


def paper_pool(cluster: Cluster, *, cpu_video: int = 16) -> list[Heartbeat]:
    """One heartbeat per replica of the cluster's instances (models the live pipeline has no stage
    for are left out), plus the CPU workers (see the module docstring)."""
    out = []
    for grp in cluster.instances:
        if grp.model not in STAGE_OF:
            continue
        stage, model = STAGE_OF[grp.model]
        for r in range(grp.replicas):
            out.append(Heartbeat(instance=f"{grp.model}-{grp.gpu}x{grp.gpus}-{r}", stage=stage, model=model,
                                 hardware=grp.gpu, gpus=grp.gpus if grp.model != HF_VAE else 1))
    for stage, (model, n) in CPU_WORKERS.items():
        out += [Heartbeat(instance=f"{stage}-{i}", stage=stage, model=model) for i in range(n)]
    out += [Heartbeat(instance=f"video-cpu-{i}", stage="video", model="cpu-head") for i in range(cpu_video)]
    return out


def simulate_plans(cluster: Cluster, w: Workload, *, policy: str = "edf", cpu_video: int = 16) -> dict:
    """One request of ``w`` on ``cluster`` with :class:`PlanSimulator`: TTFF, makespan, stall (s),
    the realtime factor, rungs of the talking-head clips, tasks, the span (s) and the cost ($, every
    server paid for the span, as the DES)."""
    request = paper_request(w)
    ladder = w.ladder or load_ladders()[FT]     # the workload's FantasyTalking ladder, as the DES's
    run: PlanRun = PlanSimulator([(0.0, request)], paper_pool(cluster, cpu_video=cpu_video if len(ladder.rungs) > 1 else 0),
                                 policy=policy, ladders={"video": ladder}).run()
    key = f"{request.tenant}.{request.request_id}"
    segs = run.segments.get(key) or []
    span = segs[-1] if segs else math.inf
    video_s = run.starts[key][-1] + (request.segment_s if segs else 0.0) if segs else 0.0
    cat = catalog()
    cost = sum(n * SERVER_GPUS * cat[g].price(cluster.pricing) for g, n in cluster.servers().items()) * span / 3600.0
    rungs: dict[str, int] = {}
    for d in run.decisions:
        if d.rung and d.node.startswith("clip:"):
            rungs[d.rung] = rungs.get(d.rung, 0) + 1
    return {"engine": "plans", "cluster": cluster.spec(), "completed": int(run.finished[key]),
            "ttff_s": round(max(0.0, run.ttff_s(key) - w.static_slide_s), 3), "makespan_s": round(span, 2),
            "realtime_factor": round(span / video_s, 3) if video_s else None, "stall_s": round(run.stall_s(key), 3),
            "video_s": round(video_s, 1), "segments": len(segs), "rungs": rungs, "tasks": len(run.decisions),
            "cost_usd": round(cost, 2)}


def main(argv: list[str] | None = None) -> None:
    """``python -m streamwise.sim.paperplan [--requests N] [--rate R] [--cluster FILE] [--policy P]``: N
    requests of the paper's workload (Poisson, R a minute, seed 0) on a cluster file with
    :class:`PlanSimulator`; prints the tasks, the CPU and wall seconds it took and the median TTFF."""
    import argparse
    import random
    import time

    from .cluster import load_cluster
    from .workload import load_workload

    ap = argparse.ArgumentParser(prog="python -m streamwise.sim.paperplan")
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--rate", type=float, default=10.0, help="Poisson arrivals per minute (default 10)")
    ap.add_argument("--cluster", default="hq-realtime-ttff20.yaml", help="a cluster file (configs/clusters/)")
    ap.add_argument("--policy", choices=("edf", "fifo"), default="edf")
    args = ap.parse_args(argv)
    w, c, rng = load_workload(), load_cluster(args.cluster), random.Random(0)
    t, reqs = 0.0, []
    for i in range(args.requests):
        reqs.append((t, paper_request(w, f"r{i}")))
        t += rng.expovariate(args.rate / 60.0)
    pool = paper_pool(c)
    c0, w0 = time.process_time(), time.perf_counter()
    run = PlanSimulator(reqs, pool, policy=args.policy, ladders={"video": w.ladder or load_ladders()[FT]}).run()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    ttff = sorted(run.ttff_s(k) for k in run.segments)
    print(f"{args.requests} request(s) at {args.rate}/min on {args.cluster} ({len(pool)} instances), {args.policy}: "
          f"{len(run.decisions)} tasks in {cpu:.1f} s CPU, {wall:.1f} s wall ({1e3 * cpu / max(len(run.decisions), 1):.2f} "
          f"ms a task); {sum(run.finished.values())} finished, median TTFF {ttff[len(ttff) // 2]:.2f} s")


if __name__ == "__main__":
    main()
