"""The StreamWise paper's analytic evaluator, on our reference profiles.

Source of every formula: the paper's simulator (arXiv 2603.05800; Azure/realtimevideogen
``simulator/evaluator.py``, ``simulator/models.py``, ``simulator/sim_types.py``,
``simulator/data_loading.py``). For one request on a cluster of model instances:

- **Per-unit time** of an instance of ``model`` on ``d`` GPUs of type ``g`` (seconds), from the
  mapping rows of ``configs/profiles/reference`` (per-step time ``step``, VAE time ``vae``):
  FramePack clip ``105/324 * step * steps * s``; FantasyTalking clip ``81/77 * step * steps * s``;
  their VAEs per frame ``vae(1) * s / 324`` and ``vae(1) * s / 77``; Real-ESRGAN per frame;
  Gemma the whole screenplay ``(first + per * (scenes - 1)) * tokens / 20K``; FLUX one image
  ``step * 25``; Kokoro+YOLO ``scenes * per-scene``. ``s`` is the resolution scale (1 with the
  upscaler at the high level: the models generate 640x400; 4 without it; adaptive levels
  multiply pixels by 1/4 (medium) and 1/16 (low), FLUX and the upscaler too).
- **Work split** (``evaluate_times``): a model whose work is more than one unit (clips for the
  DiTs, frames for VAEs and the upscaler) is split over its instances by throughput
  ``replicas / per-step latency`` (plus the VAE share when it is not disaggregated); an
  instance's time is ``max(ceil(share * work) / replicas * unit, unit)`` (``_calculate_total_time``),
  plus, without disaggregation, its share of the VAE frames the same way. The LLM, FLUX and
  TTS are not split: every instance takes the whole time.
- **Stage time** = the slowest instance of the model; **makespan** = the sum over models (the
  stages run one after another). **First-chunk latency** = the sum over models of the fastest
  instance's time for the first unit (Gemma's first scene, the image, one scene of TTS,
  FramePack's first 36-frame section when disaggregated, one clip otherwise, the VAE and the
  upscaler of one clip). **TTFF** = ``max(first-chunk, makespan - video length)``.
- **Cost** = GPUs used, rounded up to whole 8-GPU servers per type, x $/GPU-hour x makespan
  (``calc_cost(round_up_to_server=True)``). **Energy** = busy watts x an instance's time plus
  idle watts for the rest of the makespan, per GPU (``calculate_energy``; watts from
  ``configs/clusters/gpus.yaml``).

Ours on top: ``static_slide_s`` (a pre-rendered slide covers the first seconds, so TTFF drops
by its length, never below 0) and :func:`evaluate_adaptive`, two ways: ``paper`` (the paper's
``get_provisioning_adaptive_results``: TTFF of a whole low-level run on its own allocation,
cost of the high-level run) and ``ours`` (first clip at the low level, the rest at the high
level, on the same instances; stricter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from ..core.estimate import book
from .cluster import SERVER_GPUS, Cluster, Instance, catalog
from .workload import FLUX, FT, FT_VAE, GEMMA, HF, HF_VAE, PARENT_OF, TTS, UPSCALER, VAE_OF, Workload

#: Pixel ratio of the paper's adaptive quality levels (``load_adaptive_quality_data``:
#: medium = 320x200 / 640x400, low = 160x100 / 640x400), applied to FLUX, FramePack,
#: FantasyTalking, their VAEs and the upscaler.
LEVEL_RATIO = {"high": 1.0, "medium": 0.25, "low": 1.0 / 16.0}
HIGH_PIXELS, MEDIUM_PIXELS, LOW_PIXELS = 1280 * 800, 640 * 400, 320 * 200


@dataclass(frozen=True)
class LatencyTable:
    """Seconds from the reference mapping rows, keyed by (model, gpu, GPUs): ``step`` per
    denoising step (FLUX, FramePack, FantasyTalking), ``vae`` VAE decode per mapping row,
    ``first`` / ``per`` Gemma's first and further scenes, ``unit`` Kokoro per scene and
    Real-ESRGAN per frame."""

    step: dict[tuple[str, str, int], float]
    vae: dict[tuple[str, str, int], float]
    first: dict[tuple[str, int], float]
    per: dict[tuple[str, int], float]
    unit: dict[tuple[str, str, int], float]

    def has(self, model: str, gpu: str, d: int) -> bool:
        """Whether (model, gpu, d) is profiled."""
        if model == GEMMA:
            return (gpu, d) in self.first
        if model in (FLUX, HF, FT):
            return (model, gpu, d) in self.step
        if model in PARENT_OF:
            return (PARENT_OF[model], gpu, d) in self.vae and d == 1
        return (model, gpu, d) in self.unit


@lru_cache(maxsize=1)
def paper_latency() -> LatencyTable:
    """The mapping rows, read back through :class:`streamwise.core.profiles.ProfileBook` at each
    row's own configuration (where its fitted shapes are exactly 1): ``step = r(2 steps) -
    r(1 step)``, ``vae = r(1 step) - step``."""
    b = book()
    step, vae, first, per, unit = {}, {}, {}, {}, {}
    for m in (FLUX, HF, FT):
        for hw, d in b.known(m):
            r1, r2 = b.runtime_s(m, hw, d, steps=1), b.runtime_s(m, hw, d, steps=2)
            step[(m, hw, d)] = r2 - r1
            vae[(m, hw, d)] = max(r1 - (r2 - r1), 0.0)
    for hw, d in b.known(GEMMA):
        f = b.runtime_s(GEMMA, hw, d, units=1)
        first[(hw, d)], per[(hw, d)] = f, b.runtime_s(GEMMA, hw, d, units=2) - f
    for m in (TTS, UPSCALER):
        for hw, d in b.known(m):
            unit[(m, hw, d)] = b.runtime_s(m, hw, d, units=1)
    return LatencyTable(step, vae, first, per, unit)


def resolution_scale(w: Workload) -> float:
    """The paper's ``WorkflowConfig.get_resolution_scale``: latency profiled at 640x400; with the
    upscaler a high target generates at 640x400 (1.0) and a medium one at 320x200 (0.25);
    without it, high is 4x, medium 1x, low 0.25x."""
    if w.upscaler:
        return 1.0 if w.quality == "high" else LOW_PIXELS / MEDIUM_PIXELS
    return {"high": HIGH_PIXELS / MEDIUM_PIXELS, "medium": 1.0, "low": LOW_PIXELS / MEDIUM_PIXELS}[w.quality]


class Model:
    """The analytic model of one workload: per-unit, per-instance and first-chunk times."""

    def __init__(self, w: Workload, level: str = "high", table: LatencyTable | None = None) -> None:
        self.w, self.t = w, table or paper_latency()
        self.level = level
        self.s = resolution_scale(w) * LEVEL_RATIO[level]      # DiTs and VAEs
        self.q = LEVEL_RATIO[level]                            # FLUX and the upscaler
        self.tok = w.input_tokens / w.reference_tokens

    # ------------------------------------------------------------------ per unit
    def unit_s(self, model: str, gpu: str, d: int) -> float:
        """Seconds per unit of work (clip, frame, or the whole stage for Gemma/FLUX/TTS)."""
        w, t = self.w, self.t
        if model in (HF, FT):
            return w.clip_frames(model) / w.reference_frames[model] * t.step[(model, gpu, d)] * w.steps[model] * self.s
        if model in PARENT_OF:
            p = PARENT_OF[model]
            return t.vae[(p, gpu, d)] * self.s / w.reference_frames[p]
        if model == UPSCALER:
            return t.unit[(UPSCALER, gpu, d)] * self.q
        if model == GEMMA:
            return (t.first[(gpu, d)] + t.per[(gpu, d)] * (w.scenes - 1)) * self.tok
        if model == FLUX:
            return t.step[(FLUX, gpu, d)] * w.steps[FLUX] * self.q * w.images
        return w.scenes * t.unit[(TTS, gpu, 1)]

    def vae_inline_s(self, model: str, gpu: str) -> float:
        """Seconds per frame of the VAE decode run inside a non-disaggregated DiT instance
        (the paper always takes the one-GPU VAE time)."""
        return self.t.vae[(model, gpu, 1)] * self.s / self.w.reference_frames[model]

    def capacity_latency(self, model: str, gpu: str, d: int) -> float:
        """The per-step latency the paper splits work by (``evaluate_times``)."""
        t, w = self.t, self.w
        if model in (HF, FT):
            lat = t.step[(model, gpu, d)]
            if not w.disaggregate.get(model, False):
                lat += t.vae[(model, gpu, 1)] / w.steps[model]
            return lat
        if model in PARENT_OF:
            return t.vae[(PARENT_OF[model], gpu, d)]
        return self.unit_s(model, gpu, d)

    def first_s(self, model: str, gpu: str, d: int) -> float:
        """Seconds for the first unit on one instance (``calculate_time_first``)."""
        w, t = self.w, self.t
        if model == GEMMA:
            return t.first[(gpu, d)] * self.tok
        if model == FLUX:
            return self.unit_s(FLUX, gpu, d)
        if model == TTS:
            return t.unit[(TTS, gpu, 1)]
        if model == HF and w.disaggregate.get(HF, False):
            per_chunk = t.step[(HF, gpu, d)] * self.s * w.steps[HF]
            return min(w.first_chunk_frames[HF] / w.reference_frames[HF] * per_chunk, self.unit_s(HF, gpu, d))
        if model in (HF, FT):
            u = self.unit_s(model, gpu, d)
            if not w.disaggregate.get(model, False):
                u += w.clip_frames(model) * self.vae_inline_s(model, gpu)
            return u
        if model in PARENT_OF:
            return w.clip_frames(PARENT_OF[model]) * self.unit_s(model, gpu, d)
        return w.clip_frames(FT) * self.unit_s(UPSCALER, gpu, d)

    # ------------------------------------------------------------------ per stage
    def stage(self, model: str, instances: list[Instance]) -> tuple[float, float, list[float]]:
        """(stage time, first-unit time, per-instance-group times) of ``model`` (seconds)."""
        if not instances:
            return 0.0, 0.0, []
        first = min(self.first_s(model, i.gpu, i.gpus) for i in instances)
        if self.w.work(model) <= 1:
            times = [self.unit_s(model, i.gpu, i.gpus) for i in instances]
            return max(times), first, times
        caps = [i.replicas / self.capacity_latency(model, i.gpu, i.gpus) for i in instances]
        total = sum(caps)
        work = self.w.work(model)
        times = []
        for i, c in zip(instances, caps):
            share = c / total
            u = self.unit_s(model, i.gpu, i.gpus)
            t = split_time(math.ceil(share * work - 1e-9), i.replicas, u)
            if model in (HF, FT) and not self.w.disaggregate.get(model, False):
                t += split_time(math.ceil(share * self.w.total_frames(model) - 1e-9), i.replicas,
                                self.vae_inline_s(model, i.gpu))
            times.append(t)
        return max(times), first, times


def split_time(work: int, replicas: int, unit_s: float) -> float:
    """The paper's ``_calculate_total_time``: ``work / replicas * unit``, never below one unit
    (seconds); 0 without replicas."""
    if replicas <= 0:
        return 0.0
    return max(work / replicas * unit_s, unit_s)


@dataclass
class Result:
    """Figures of one request on one cluster (seconds, $, kWh)."""

    makespan_s: float
    first_chunk_s: float
    ttff_s: float
    cost_usd: float
    energy_kwh: float
    spec: str
    gpus_used: dict[str, int]
    video_s: float
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    utilisation: float = 0.0
    engine: str = "analytic"

    @property
    def realtime_factor(self) -> float:
        """Generation time / video length (1.0 = exactly real time)."""
        return self.makespan_s / self.video_s

    def as_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"engine": self.engine, "cluster": self.spec, "ttff_s": round(self.ttff_s, 3),
                "makespan_s": round(self.makespan_s, 2), "makespan_h": round(self.makespan_s / 3600, 3),
                "realtime_factor": round(self.realtime_factor, 3), "first_chunk_s": round(self.first_chunk_s, 3),
                "cost_usd": round(self.cost_usd, 2), "energy_kwh": round(self.energy_kwh, 3),
                "gpu_utilisation": round(self.utilisation, 3), "gpus_used": self.gpus_used,
                "stages": {m: {"time_s": round(a, 2), "first_s": round(b, 3)} for m, (a, b) in self.stages.items()}}


def check(cluster: Cluster, w: Workload, table: LatencyTable | None = None) -> None:
    """Every model the workload needs has an instance, and every instance is profiled.

    Raises:
        ValueError: naming the missing model or unprofiled instance.
    """
    t = table or paper_latency()
    have = cluster.by_model()
    for m in w.models():
        if m not in have:
            raise ValueError(f"cluster {cluster.spec() or cluster.name}: no instance of {m}")
    for i in cluster.instances:
        if not t.has(i.model, i.gpu, i.gpus):
            raise ValueError(f"no profile for {i.model} on {i.gpus}x{i.gpu.upper()}")


def evaluate(cluster: Cluster, w: Workload, *, level: str = "high", table: LatencyTable | None = None,
             slide: bool = True) -> Result:
    """The analytic figures of one request of ``w`` on the instances of ``cluster``.

    Raises:
        ValueError: see :func:`check`.
    """
    check(cluster, w, table)
    model = Model(w, level, table)
    groups = cluster.by_model()
    stages, per_instance = {}, []
    for m in w.models():
        total, first, times = model.stage(m, groups[m])
        stages[m] = (total, first)
        per_instance += list(zip(groups[m], times))
    makespan = sum(s for s, _ in stages.values())
    first_chunk = sum(f for _, f in stages.values())
    ttff = max(first_chunk, makespan - w.video_s)
    if slide:
        ttff = max(0.0, ttff - w.static_slide_s)
    return _finish(cluster, w, makespan, first_chunk, ttff, stages, per_instance)


def _finish(cluster: Cluster, w: Workload, makespan: float, first_chunk: float, ttff: float,
            stages: dict, per_instance: list) -> Result:
    cat = catalog()
    servers = cluster.servers()
    cost = sum(n * SERVER_GPUS * cat[g].price(cluster.pricing) for g, n in servers.items()) * makespan / 3600.0
    joules, busy = 0.0, 0.0
    used = cluster.used()
    for inst, t in per_instance:
        g = cat[inst.gpu]
        t = min(t, makespan)
        joules += inst.total_gpus * (g.power_w(inst.model) * t + g.idle_w * (makespan - t))
        busy += inst.total_gpus * t
    for g, n in servers.items():    # GPUs paid for but given no instance idle all along
        joules += (n * SERVER_GPUS - used.get(g, 0)) * cat[g].idle_w * makespan
    paid = sum(servers.values()) * SERVER_GPUS
    return Result(makespan, first_chunk, ttff, cost, joules / 3.6e6, cluster.spec(), used, w.video_s, stages,
                  busy / (paid * makespan) if paid and makespan else 0.0)


ADAPTIVE_METHODS = ("ours", "paper")


def evaluate_adaptive(cluster: Cluster, w: Workload, *, first_level: str = "low",
                      table: LatencyTable | None = None, method: str = "ours",
                      low_cluster: Cluster | None = None) -> Result:
    """Adaptive quality plus the static slide (``w.static_slide_s``, seconds) on ``cluster``.

    ``method="ours"`` (the stricter model): on the **same instances**, the first clip runs at
    ``first_level`` (the paper's 160x100 "low": 1/16 of the pixels) and the rest at the high
    level. TTFF = ``max(first chunk at the low level, makespan at the high level - video
    length) - slide``; makespan, cost and energy are the high level's.

    ``method="paper"`` (how the analytic engine reproduces the paper's adaptive figure):
    Azure/realtimevideogen ``simulator/provisioning.py`` ``get_provisioning_adaptive_results``
    runs the allocator three times on the same GPU budget, each with the latency data of one
    level (``data_loading.load_adaptive_quality_data``: pixels x 1/4 medium, x 1/16 low) and its
    **own allocation**, then reports the TTFF of the whole low-level run with the cost of the
    high-level run ("4. Highest cost"). Here: TTFF = ``max(0, TTFF of a low-level run on
    low_cluster - slide)``; makespan, cost and energy are the high-level run on ``cluster``
    (the paper weights energy by the share of frames at each level; we keep the high run's, an
    upper bound); ``first_chunk_s`` is the low run's. ``low_cluster`` defaults to
    :func:`paper_low_allocation` on ``cluster``'s servers.

    Raises:
        ValueError: an unknown method, or see :func:`check`.
    """
    if method not in ADAPTIVE_METHODS:
        raise ValueError(f"adaptive method: one of {ADAPTIVE_METHODS}, got {method!r}")
    high = evaluate(cluster, w, table=table, slide=False)
    if method == "paper":
        low_cluster = low_cluster or paper_low_allocation(cluster, w, first_level)
        low = evaluate(low_cluster, w, level=first_level, table=table, slide=False)
        high.ttff_s = max(0.0, low.ttff_s - w.static_slide_s)
    else:
        low = evaluate(cluster, w, level=first_level, table=table, slide=False)
        high.ttff_s = max(0.0, max(low.first_chunk_s, high.makespan_s - w.video_s) - w.static_slide_s)
    high.first_chunk_s = low.first_chunk_s
    return high


def paper_low_allocation(cluster: Cluster, w: Workload, level: str = "low") -> Cluster:
    """The low-level run's own allocation on ``cluster``'s GPU budget (its ``budget``, the
    paper's provision, in whole 8-GPU servers per type; the paid servers when it has none): the instances with the shortest TTFF at ``level``
    (:func:`streamwise.sim.provision.search`, ``objective="ttff"``). The paper allocates each
    level with its greedy (TTFF x cost, ``simulator/greedy.py``); at the low level the makespan
    is far below the video length, so both aim at the first chunk; ours is the shortest."""
    from .provision import search

    budget = {g: math.ceil(n / SERVER_GPUS) * SERVER_GPUS for g, n in (cluster.budget or {}).items() if n > 0}
    if not budget:
        budget = {g: n * SERVER_GPUS for g, n in cluster.servers().items()}
    return search(w, max_gpus=budget, objective="ttff", level=level, mus=(0.0, 3.0, 30.0, 1000.0)).best.cluster


__all__ = ["LatencyTable", "Model", "Result", "evaluate", "evaluate_adaptive", "paper_low_allocation",
           "ADAPTIVE_METHODS", "paper_latency", "split_time",
           "resolution_scale", "LEVEL_RATIO", "VAE_OF", "HF_VAE", "FT_VAE"]
