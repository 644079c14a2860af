"""Allocators: which model instances to run on a GPU budget.

- :func:`naive` -- the paper's Naive baseline (Azure/realtimevideogen
  ``simulator/naive_baseline.py``): one server gets a fixed layout (one GPU each for Gemma,
  FLUX, FramePack and Kokoro, four FantasyTalking replicas); a bigger budget is split in
  proportion to each model's maximum parallelism (Gemma 8, FLUX 16, FramePack 40, its VAE 1,
  FantasyTalking 40, its VAE 1; ``policies.MAX_DEVICES``), leftovers go round-robin to the
  parallel models, and each parallel model then takes the GPUs-per-instance that uses most of
  its share (``_calculate_naive_num_devices``).
- :func:`greedy` -- the paper's greedy (``simulator/greedy.py``, ``simulator/actions.py``):
  from a minimal layout, repeatedly apply the action (more GPUs per instance or more replicas
  for one instance group, looking at most 3 replicas ahead, or a new instance group) with the
  lowest TTFF x cost (cost of the GPUs in use, not rounded to servers), until the budget is
  used, no action fits, or 100 iterations (``MAX_ITERATIONS``); it keeps going when the metric
  stops improving (``USE_ALL_GPUS``).

Our own search over the same analytic model is :mod:`streamwise.sim.provision`.
"""

from __future__ import annotations

import math

from .analytic import Model
from .cluster import SERVER_GPUS, Cluster, Instance, catalog
from .workload import FLUX, FT, FT_VAE, GEMMA, HF, HF_VAE, TTS, UPSCALER, Workload

#: ``policies.MAX_DEVICES`` of the paper's naive split.
NAIVE_MAX_DEVICES = {GEMMA: 8, FLUX: 16, HF: 40, HF_VAE: 1, FT: 40, FT_VAE: 1}
MAX_ITERATIONS = 100
LOOK_AHEAD_REPLICAS = 3
SINGLE_INSTANCE = (GEMMA, FLUX, TTS)       # work of one unit: never split (constants.SINGLE_INSTANCE_MODELS)
SINGLE_DEVICE = (TTS, HF_VAE, FT_VAE)      # constants.SINGLE_DEVICE_MODELS


def _cluster(slots: list[list], budget: dict[str, int], pricing: str, name: str = "") -> Cluster:
    merged: dict[tuple[str, str, int], int] = {}
    for m, g, d, r in slots:
        if r > 0:
            merged[(m, g, d)] = merged.get((m, g, d), 0) + r
    return Cluster(dict(budget), tuple(Instance(m, g, d, r) for (m, g, d), r in sorted(merged.items())), pricing, name)


def _naive_devices(quota: int, options: tuple[int, ...] | None, upper: int) -> tuple[int, int, int]:
    """``_calculate_naive_num_devices``: (GPUs per instance, replicas, GPUs given back)."""
    if not options:
        return 1, quota, 0
    best = (0, 1, 1)
    for d in options:
        if d > quota:
            continue
        r = min(quota // d, upper)
        if d * r > best[0]:
            best = (d * r, d, r)
    return best[1], best[2], quota - best[0]


def naive(budget: dict[str, int], w: Workload, pricing: str = "reserved") -> Cluster:
    """The paper's Naive allocation of ``budget`` (GPUs per type; one type, or two with the
    light models on the first) for ``w`` (its ``upscaler`` / ``disaggregate`` flags apply, the
    paper's Naive policy has neither)."""
    types = [g for g, n in budget.items() if n > 0]
    if len(types) == 1:
        return _cluster(_naive_one(types[0], budget[types[0]], w, skip_single=False), budget, pricing, "naive")
    slots = _naive_one(types[0], budget[types[0]], w, skip_single=False, light_only=True)
    slots += _naive_one(types[1], budget[types[1]], w, skip_single=True)
    return _cluster(slots, budget, pricing, "naive")


def _naive_one(g: str, n: int, w: Workload, *, skip_single: bool, light_only: bool = False) -> list[list]:
    dis_hf, dis_ft = w.disaggregate.get(HF, False), w.disaggregate.get(FT, False)
    if light_only:
        return [[GEMMA, g, 1, 1], [FLUX, g, 1, 1], [TTS, g, 1, 1]]
    a = {GEMMA: [1, 0 if skip_single else 1], FLUX: [1, 0 if skip_single else 1], TTS: [1, 0 if skip_single else 1],
         HF: [1, 1], HF_VAE: [1, 1 if dis_hf else 0], FT: [1, 4], FT_VAE: [1, 1 if dis_ft else 0],
         UPSCALER: [1, 1 if w.upscaler else 0]}
    if n == SERVER_GPUS and not skip_single:
        a[FT][1] = 4 - w.upscaler - dis_hf - dis_ft
        return [[m, g, d, r] for m, (d, r) in a.items() if r > 0]
    init = sum(d * r for d, r in a.values())
    models = [m for m in NAIVE_MAX_DEVICES if not (skip_single and m in SINGLE_INSTANCE)]
    total_max = sum(NAIVE_MAX_DEVICES[m] for m in models)
    opts = w.gpu_counts
    for m in models:
        share = int((n - init) * NAIVE_MAX_DEVICES[m] / total_max)
        if m in (GEMMA, FLUX):
            d = a[m][0] + min(share, NAIVE_MAX_DEVICES[m], max(opts[m]))
            a[m][0] = max(o for o in opts[m] if o <= d)
        elif m in (HF, FT) or (m == HF_VAE and dis_hf) or (m == FT_VAE and dis_ft):
            a[m][1] += min(share, NAIVE_MAX_DEVICES[m], max(opts[m]))
    remaining = n - sum(d * r for d, r in a.values())
    parallel = [m for m in models if m in (HF, FT) or (m == HF_VAE and dis_hf) or (m == FT_VAE and dis_ft)]
    parallel.sort(key=lambda m: a[m][0] * a[m][1], reverse=True)
    progress = True
    while remaining > 0 and progress:
        progress = False
        for m in parallel:
            if a[m][0] <= remaining:
                a[m][1] += 1
                remaining -= a[m][0]
                progress = True
                if remaining <= 0:
                    break
    for m, upper in ((HF, w.scenes), (FT, w.clips)):
        d, r, _ = _naive_devices(a[m][0] * a[m][1], opts[m], upper)
        a[m] = [d, r]
    return [[m, g, d, r] for m, (d, r) in a.items() if r > 0]


# ---------------------------------------------------------------------------- greedy


class _Eval:
    """Incremental analytic evaluation: stage results cached per model, as the paper's
    ``evaluate_model_allocation(include_models=[model])``."""

    def __init__(self, w: Workload, pricing: str) -> None:
        self.w, self.model, self.pricing = w, Model(w), pricing
        self.cat = catalog()

    def stage(self, m: str, slots: list[list]) -> tuple[float, float]:
        inst = [Instance(mm, g, d, r) for mm, g, d, r in slots if mm == m and r > 0]
        t, f, _ = self.model.stage(m, inst)
        return t, f

    def metric(self, stages: dict[str, tuple[float, float]], slots: list[list]) -> tuple[float, float, float]:
        """(TTFF x cost, TTFF, cost) with the cost of the GPUs in use (not rounded)."""
        M = sum(t for t, _ in stages.values())
        F = sum(f for _, f in stages.values())
        ttff = max(F, M - self.w.video_s)
        rate = sum(d * r * self.cat[g].price(self.pricing) for _, g, d, r in slots)
        cost = rate * M / 3600.0
        return (ttff * cost if ttff > 0 and cost > 0 else (cost or ttff)), ttff, cost


def _init_slots(budget: dict[str, int], w: Workload) -> list[list]:
    types = [g for g, n in budget.items() if n > 0]
    dis_hf, dis_ft = w.disaggregate.get(HF, False), w.disaggregate.get(FT, False)
    if len(types) == 1:
        g = types[0]
        if budget[g] == SERVER_GPUS:     # _init_single_server_models
            hf = 2 - w.upscaler + (not dis_hf)
            slots = [[GEMMA, g, 1, 1], [FLUX, g, 1, 1], [HF, g, 1, hf], [HF_VAE, g, 1, int(dis_hf)],
                     [FT, g, 1, 1 + (not dis_ft)], [FT_VAE, g, 1, int(dis_ft)], [UPSCALER, g, 1, int(w.upscaler)],
                     [TTS, g, 1, 1]]
        else:                            # _init_single_device_models
            slots = [[GEMMA, g, 1, 1], [FLUX, g, 1, 1], [HF, g, 1, 1 + (not dis_hf)], [HF_VAE, g, 1, int(dis_hf)],
                     [FT, g, 2, 1 + (not dis_ft)], [FT_VAE, g, 1, int(dis_ft)], [UPSCALER, g, 1, int(w.upscaler)],
                     [TTS, g, 1, 1]]
            slots += [[m, g, 1, 0] for m in (GEMMA, FLUX, HF, HF_VAE, FT, FT_VAE, UPSCALER, TTS)]
    else:                                # _init_both_devices_models
        g1, g2 = types
        slots = [[GEMMA, g1, 1, 1], [FLUX, g1, 1, 1], [TTS, g1, 1, 1], [HF, g2, 1, 1 + (not dis_hf)],
                 [HF_VAE, g2, 1, int(dis_hf)], [FT, g2, 2, 1 + (not dis_ft)], [FT_VAE, g2, 1, int(dis_ft)],
                 [UPSCALER, g2, 1, int(w.upscaler)]]
    return [s for s in slots if w.uses(s[0])]


def greedy(budget: dict[str, int], w: Workload, pricing: str = "spot", *,
           max_iterations: int = MAX_ITERATIONS) -> Cluster:
    """The paper's greedy allocation of ``budget`` (GPUs per type, at most two types)."""
    ev = _Eval(w, pricing)
    slots = _init_slots(budget, w)
    types = [g for g, n in budget.items() if n > 0]
    if len(types) == 1 and budget[types[0]] == SERVER_GPUS:
        return _cluster(slots, budget, pricing, "greedy")
    models = w.models()
    stages = {m: ev.stage(m, slots) for m in models}
    table = ev.model.t
    for _ in range(max_iterations):
        used = {g: 0 for g in types}
        for _, g, d, r in slots:
            used[g] += d * r
        remaining = {g: budget[g] - used[g] for g in types}
        if sum(remaining.values()) <= 0:
            break
        best = None
        for m in models:
            for g in types:
                cands: list[list[list]] = []
                for k, (mm, gg, d0, r0) in enumerate(slots):
                    if mm != m or gg != g or (m in SINGLE_DEVICE and m in SINGLE_INSTANCE):
                        continue
                    cur = d0 * r0
                    avail = cur + remaining[g]
                    seen = {(r0, d0)}
                    for d in w.gpu_counts[m]:
                        if (m in SINGLE_DEVICE and d > 1) or not table.has(m, g, d):
                            continue
                        if m in SINGLE_INSTANCE:
                            reps = [1]
                        else:
                            top = min(w.work(m), avail // d, r0 + LOOK_AHEAD_REPLICAS)
                            reps = range(1, top + 1)
                        for r in reps:
                            if cur < d * r <= avail and (r, d) not in seen:
                                seen.add((r, d))
                                cands.append(slots[:k] + [[m, g, d, r]] + slots[k + 1:])
                if m not in SINGLE_INSTANCE:        # _gen_add_instance
                    for d in w.gpu_counts[m]:
                        if not table.has(m, g, d):
                            continue
                        for r in range(1, LOOK_AHEAD_REPLICAS + 1):
                            if d * r <= remaining[g]:
                                cands.append(slots + [[m, g, d, r]])
                for cand in cands:
                    st = dict(stages)
                    st[m] = ev.stage(m, cand)
                    key = ev.metric(st, cand)[:2]
                    if best is None or key < best[0]:
                        best = (key, cand, m, st[m])
        if best is None:
            break
        _, slots, m, stage = best
        stages[m] = stage
    return _cluster(slots, budget, pricing, "greedy")


def budget_fits(budget: dict[str, int]) -> None:
    """Raises ValueError unless every count is a positive multiple of the server size."""
    for g, n in budget.items():
        if n <= 0 or n % SERVER_GPUS:
            raise ValueError(f"{n}x{g.upper()}: not a whole number of {SERVER_GPUS}-GPU servers")
    if len(budget) > 2:
        raise ValueError("at most two GPU types")


def servers_for(gpus: int) -> int:
    """Whole servers for ``gpus`` GPUs."""
    return math.ceil(gpus / SERVER_GPUS)
