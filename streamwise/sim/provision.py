"""The provisioner: the cheapest-to-stream cluster for a workload, by TTFF x cost.

Model: the paper's analytic evaluator (:mod:`streamwise.sim.analytic`). There a stage's time
depends only on its own instances, the makespan ``M`` is the sum of stage times, the
first-chunk latency ``F`` the sum of per-stage first-unit times, and the cost rate a sum over
GPUs; TTFF = ``max(F, M - video)`` and cost = ``rate x M`` (rate rounded to whole 8-GPU servers).

Search (ours; the paper's greedy is :func:`streamwise.sim.allocate.greedy`):

1. **Per-stage options.** For every model and GPU type, every instance layout the paper's
   model allows -- a pool of ``r`` identical instances of ``d`` GPUs (``d`` from the valid
   GPU counts, ``r`` up to the model's work), optionally plus one larger "lead" instance that
   serves the first chunk fast -- evaluated in closed form with numpy (the same formulas as
   :class:`streamwise.sim.analytic.Model`, checked against it in the tests;
   :mod:`streamwise.sim.layouts`).
2. **Pareto and convex hull per stage**: only options that no cheaper option beats on
   ``t + mu * f`` (stage time plus ``mu`` times its first-unit time) survive, and of those the
   lower convex hull in ($/h, seconds).
3. **Marginal merge** (the exact solution of the Lagrangian relaxation, i.e. of the
   convexified problem): from every stage's cheapest option, take hull segments across all
   stages in order of seconds saved per $/h. Every prefix is a candidate cluster: the fastest
   (in ``M + mu F``) at its $/h. Run for a few ``mu`` (how much the first chunk matters), for
   every GPU type alone and every pair of types (each model on one of the two).
4. **Score** every candidate exactly (servers rounded up, SLO: TTFF <= ``max_ttff_s``, cost
   <= ``budget_usd``), fill the rounding slack of the best with extra replicas where that
   lowers TTFF x cost, and return it. All candidates are kept for the TTFF-vs-cost plot.

The paper's adaptive method (``adaptive_method="paper"``) is
:mod:`streamwise.sim.paper_adaptive`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .analytic import Model, Result, evaluate, evaluate_adaptive, paper_latency
from .cluster import SERVER_GPUS, Cluster, Instance, catalog, spec_of
from .layouts import Options, _hull, model_options, prune_dominated
from .workload import Workload

MUS = (0.0, 3.0, 30.0)
#: Per-stage layouts (:func:`model_options` less :func:`prune_dominated`) and their hulls per
#: weight mu, computed once per (workload, level, adaptive, GPU types, GPU limits, pricing)
#: and reused by later searches (the 16 most recent keys).
_PRECOMPUTED: dict[tuple, tuple[dict, dict]] = {}
DEFAULT_MAX_GPUS = 4096


@dataclass
class Candidate:
    """One cluster the search scored: its instances, SPEC and analytic figures."""

    cluster: Cluster
    makespan_s: float
    first_chunk_s: float
    ttff_s: float
    cost_usd: float
    feasible: bool

    @property
    def objective(self) -> float:
        """TTFF x cost (s x $)."""
        return self.ttff_s * self.cost_usd


@dataclass
class Plan:
    """The provisioner's answer: the best cluster, its exact analytic result, the search
    time (ms) and every candidate scored (for the Pareto plot)."""

    best: Candidate
    result: Result
    search_ms: float
    candidates: list[Candidate] = field(default_factory=list)
    feasible: bool = True
    low_cluster: Cluster | None = None    # the paper's adaptive method: the low run's allocation


class _Scorer:
    def __init__(self, w: Workload, pricing: str, max_ttff_s: float | None, budget_usd: float | None) -> None:
        self.w, self.pricing = w, pricing
        self.price = {g: t.price(pricing) for g, t in catalog().items()}
        self.max_ttff_s, self.budget_usd = max_ttff_s, budget_usd

    def score(self, M: float, F: float, used: dict[str, int]) -> tuple[float, float, float, bool]:
        ttff = max(0.0, max(F, M - self.w.video_s) - self.w.static_slide_s)
        rate = sum(math.ceil(n / SERVER_GPUS) * SERVER_GPUS * self.price[g] for g, n in used.items())
        cost = rate * M / 3600.0
        ok = (self.max_ttff_s is None or ttff <= self.max_ttff_s + 1e-9) and \
             (self.budget_usd is None or cost <= self.budget_usd + 1e-9)
        return ttff, cost, ttff * cost, ok

    def score_many(self, M: np.ndarray, F: np.ndarray, N: np.ndarray, types: tuple[str, ...]):
        """Vectorised :meth:`score`: ``N[:, c]`` GPUs of ``types[c]``."""
        ttff = np.maximum(0.0, np.maximum(F, M - self.w.video_s) - self.w.static_slide_s)
        rate = sum(np.ceil(N[:, c] / SERVER_GPUS - 1e-9) * SERVER_GPUS * self.price[g] for c, g in enumerate(types))
        cost = rate * M / 3600.0
        ok = np.ones(len(M), dtype=bool)
        if self.max_ttff_s is not None:
            ok &= ttff <= self.max_ttff_s + 1e-9
        if self.budget_usd is not None:
            ok &= cost <= self.budget_usd + 1e-9
        return ttff, cost, ok


def search(w: Workload, *, pricing: str = "spot", gpu_types: list[str] | None = None,
           max_ttff_s: float | None = None, budget_usd: float | None = None,
           max_gpus: int | dict[str, int] = DEFAULT_MAX_GPUS, adaptive: bool = False,
           mus: tuple[float, ...] = MUS, keep_candidates: bool = False, pairs: bool = True,
           refine: bool = True, objective: str = "ttff_cost", level: str = "high",
           adaptive_method: str = "ours") -> Plan:
    """The cluster minimising TTFF x cost for one request of ``w`` (see the module docstring).

    ``gpu_types``: the types to consider (default: all in the catalog); at most two per
    cluster, each within ``max_gpus`` GPUs. ``max_ttff_s`` (seconds) and ``budget_usd`` ($ per
    request) are the SLO; when no candidate meets it the best unconstrained one is returned
    with ``feasible = False``. ``adaptive``: first chunk at the low level (adaptive quality).
    ``max_gpus`` may be a dict (GPUs per type: a fixed budget). ``objective``: ``ttff_cost``
    (TTFF x cost, the paper's) or ``makespan`` (the fastest cluster within the budget: how a
    GPU budget SPEC is allocated for the simulator) or ``ttff`` (the shortest TTFF within the
    budget, ties to the cheaper: the low-quality run of the paper's adaptive method).
    ``level``: the quality level every clip runs at (``high``, ``medium``, ``low``;
    :data:`streamwise.sim.analytic.LEVEL_RATIO`). ``adaptive_method``: with ``adaptive``,
    ``ours`` (first clip low on the same instances; this search) or ``paper``
    (:func:`streamwise.sim.paper_adaptive.search_adaptive_paper`).
    """
    if adaptive and adaptive_method == "paper":
        from .paper_adaptive import search_adaptive_paper

        return search_adaptive_paper(w, pricing=pricing, gpu_types=gpu_types, max_ttff_s=max_ttff_s,
                                     budget_usd=budget_usd, max_gpus=max_gpus, keep_candidates=keep_candidates,
                                     objective=objective)
    if adaptive_method not in ("ours", "paper"):
        raise ValueError(f"adaptive method: ours or paper, got {adaptive_method!r}")
    cap = dict(max_gpus) if isinstance(max_gpus, dict) else None
    if cap is not None:
        gpu_types = [g for g in cap if cap[g] > 0]
    paper_latency()                  # the profiles are loaded (and fitted) once, outside the timing
    t0 = time.perf_counter()
    types = list(gpu_types or catalog())
    an = Model(w, level)
    first = Model(w, "low") if adaptive else an
    pre_key = (repr(w), level, adaptive, tuple(types), tuple(sorted(cap.items())) if cap else max_gpus, pricing)
    if pre_key not in _PRECOMPUTED:
        opts: dict[tuple[str, str], Options] = {}
        for m in w.models():
            for g in types:
                o = model_options(an, first, m, g, cap[g] if cap else max_gpus, thin=True)
                if o is not None:
                    opts[(m, g)] = prune_dominated(o)
        if len(_PRECOMPUTED) >= 16:
            _PRECOMPUTED.pop(next(iter(_PRECOMPUTED)))
        _PRECOMPUTED[pre_key] = (opts, {})
    opts, front = _PRECOMPUTED[pre_key]
    sc = _Scorer(w, pricing, max_ttff_s, budget_usd)
    sets = [(g,) for g in types] + (list(combinations(types, 2)) if pairs else [])
    if cap is not None:
        sets = [tuple(types)]
    best: tuple | None = None        # (key, M, F, choice, types, mu)
    cands: list[tuple] = []
    models = w.models()

    def merge(ts: tuple[str, ...], mu: float) -> None:
        """Marginal merge of the stage hulls for GPU types ``ts`` and weight ``mu``."""
        nonlocal best
        col = {g: c for c, g in enumerate(ts)}
        hulls = []            # per model: arrays x, v, t, f, n, type column, option ref
        for m in models:
            parts = []
            for g in ts:
                if (m, g) not in opts:
                    continue
                if (m, g, mu) not in front:
                    o = opts[(m, g)]
                    x, v = o.n * sc.price[g], o.t + mu * o.f
                    k = _hull(x, v)
                    front[(m, g, mu)] = (x[k], v[k], o.t[k], o.f[k], o.n[k], k)
                parts.append((g, front[(m, g, mu)]))
            if len(parts) == 1:
                g, (x, v, t, f, n, k) = parts[0]
                gc = np.full(len(k), col[g])
            else:
                x, v, t, f, n, k = (np.concatenate([p[1][c] for p in parts]) for c in range(6))
                gc = np.concatenate([np.full(len(p[1][5]), col[p[0]]) for p in parts])
                h = _hull(x, v)
                x, v, t, f, n, k, gc = x[h], v[h], t[h], f[h], n[h], k[h], gc[h]
            hulls.append((x, v, t, f, n, k, gc))
        # segments of every model's hull, in order of seconds saved per $/h
        slope, dM, dF, dn, mi, hj = [], [], [], [], [], []
        M0 = sum(h[2][0] for h in hulls)
        F0 = sum(h[3][0] for h in hulls)
        n0 = np.zeros(len(ts))
        for i, (x, v, t, f, n, k, gc) in enumerate(hulls):
            n0[gc[0]] += n[0]
            if len(x) < 2:
                continue
            slope.append(np.diff(v) / np.diff(x))
            dM.append(np.diff(t))
            dF.append(np.diff(f))
            nn = np.zeros((len(x) - 1, len(ts)))
            np.add.at(nn, (np.arange(len(x) - 1), gc[1:]), n[1:])
            np.add.at(nn, (np.arange(len(x) - 1), gc[:-1]), -n[:-1])
            dn.append(nn)
            mi.append(np.full(len(x) - 1, i))
            hj.append(np.arange(1, len(x)))
        if slope:
            order = np.argsort(np.concatenate(slope), kind="stable")
            Ms = M0 + np.concatenate(([0.0], np.cumsum(np.concatenate(dM)[order])))
            Fs = F0 + np.concatenate(([0.0], np.cumsum(np.concatenate(dF)[order])))
            Ns = n0 + np.vstack((np.zeros((1, len(ts))), np.cumsum(np.concatenate(dn)[order], axis=0)))
            mis, hjs = np.concatenate(mi)[order], np.concatenate(hj)[order]
        else:
            Ms, Fs, Ns = np.array([M0]), np.array([F0]), n0[None, :]
            mis = hjs = np.zeros(0, dtype=int)
        ttff, cost, ok = sc.score_many(Ms, Fs, Ns, ts)
        lim = np.array([cap[g] if cap else max_gpus for g in ts], dtype=float)
        within = (Ns <= lim + 1e-9).all(axis=1)
        ok &= within
        obj = np.where(within, _objective(objective, ttff, cost, Ms, Fs), np.inf)
        key = np.where(ok, obj, np.inf)
        kbest = int(np.argmin(key)) if np.isfinite(key).any() else int(np.argmin(obj))
        feasible = bool(ok[kbest])

        def choice_at(kk: int) -> tuple:
            pos = [0] * len(hulls)
            for i, j in zip(mis[:kk].tolist(), hjs[:kk].tolist()):
                pos[i] = j
            return tuple((models[i], ts[int(hulls[i][6][pos[i]])], int(hulls[i][5][pos[i]]))
                         for i in range(len(hulls)))

        if keep_candidates:
            for kk in np.nonzero(within)[0].tolist():
                cands.append((Ms[kk], Fs[kk], ttff[kk], cost[kk], bool(ok[kk]), choice_at(kk)))
        cand_key = (not feasible, float(obj[kbest]))
        if best is None or cand_key < best[0]:
            best = (cand_key, Ms[kbest], Fs[kbest], choice_at(kbest), ts, mu)

    sets = [ts for ts in sets if all(any((m, g) in opts for g in ts) for m in models)]
    for ts in sets:
        for mu in mus:
            merge(ts, mu)
    if best is not None and refine:      # a finer mu grid around the best, on its GPU types
        ts, mu = best[4], best[5]
        for f in ((1.0,) if mu == 0 else (0.5, 2.0)):
            merge(ts, f if mu == 0 else mu * f)
    if best is None:
        raise ValueError("no GPU type can run every model of the workload")
    choice = _fill(best[3], opts, sc, w, cap, objective)
    cluster = _choice_cluster(choice, opts, pricing)
    ms = (time.perf_counter() - t0) * 1000.0
    result = evaluate_adaptive(cluster, w) if adaptive else evaluate(cluster, w, level=level)
    ok = (max_ttff_s is None or result.ttff_s <= max_ttff_s + 1e-9) and (budget_usd is None or result.cost_usd <= budget_usd + 1e-9)
    best_c = Candidate(cluster, result.makespan_s, result.first_chunk_s, result.ttff_s, result.cost_usd, ok)
    out = [Candidate(_choice_cluster(c[5], opts, pricing), c[0], c[1], c[2], c[3], c[4]) for c in cands] \
        if keep_candidates else []
    return Plan(best_c, result, ms, out, ok)


def _objective(objective: str, ttff, cost, M, F):
    """The quantity :func:`search` minimises (arrays or floats): ``ttff_cost`` TTFF x cost
    (s x $; within one set of paid servers cost is proportional to the makespan, so ``_fill``
    passes ``M`` as ``cost``), ``makespan`` M (s, first chunk as tie-break), ``ttff`` TTFF (s,
    makespan as tie-break)."""
    if objective == "ttff_cost":
        return ttff * cost
    if objective == "makespan":
        return M + 1e-6 * F
    if objective == "ttff":
        return ttff + 1e-9 * M
    raise ValueError(f"objective: ttff_cost, makespan or ttff, got {objective!r}")


def allocate(budget: dict[str, int], w: Workload, pricing: str = "spot") -> Cluster:
    """Our allocator for a fixed GPU budget (GPUs per type): the instances with the shortest
    analytic makespan for one request (:func:`search` with ``objective="makespan"``) on a
    1/k share of the budget, times k, where k is the expected :func:`concurrency`."""
    k = concurrency(w)
    k = max(1, min(k, min(n // SERVER_GPUS for n in budget.values()) if budget else 1))
    share = {g: n // k for g, n in budget.items()}
    c = search(w, pricing=pricing, max_gpus=share, objective="makespan", refine=False).best.cluster
    inst = tuple(Instance(i.model, i.gpu, i.gpus, i.replicas * k) for i in c.instances)
    return Cluster(dict(budget), inst, pricing, spec_of(budget))


def concurrency(w: Workload) -> int:
    """Requests expected in flight: Poisson rate x video length (each request streams for about
    its video's length), at least 1; 1 for a single request."""
    a = w.arrivals
    if a.kind != "poisson":
        return 1
    return max(1, min(a.requests, round(a.rate_per_min / 60.0 * w.video_s)))


def _choice_cluster(choice, opts, pricing: str) -> Cluster:
    inst: list[Instance] = []
    for m, g, k in choice:
        inst += opts[(m, g)].instances(k)
    used: dict[str, int] = {}
    for i in inst:
        used[i.gpu] = used.get(i.gpu, 0) + i.total_gpus
    budget = {g: math.ceil(n / SERVER_GPUS) * SERVER_GPUS for g, n in used.items()}
    return Cluster(budget, tuple(sorted(inst)), pricing, spec_of(budget))


def _fill(choice, opts, sc: _Scorer, w: Workload, cap: dict[str, int] | None = None, objective: str = "ttff_cost"):
    """Local improvement inside the paid servers (or the budget ``cap``): move one model at a
    time to any option of the same GPU type that still fits, while the objective drops."""
    choice = list(choice)

    def totals(ch):
        M = sum(opts[(m, g)].t[k] for m, g, k in ch)
        F = sum(opts[(m, g)].f[k] for m, g, k in ch)
        used: dict[str, int] = {}
        for m, g, k in ch:
            used[g] = used.get(g, 0) + int(opts[(m, g)].n[k])
        return M, F, used

    M, F, used = totals(choice)
    ttff, cost, obj, ok = sc.score(M, F, used)
    cap = dict(cap) if cap else {g: math.ceil(n / SERVER_GPUS) * SERVER_GPUS for g, n in used.items()}
    for _ in range(64):
        improved = False
        for i, (m, g, k) in enumerate(choice):
            o = opts[(m, g)]
            room = cap[g] - used[g] + o.n[k]
            mask = o.n <= room
            if not mask.any():
                continue
            Mi = M - o.t[k] + o.t
            Fi = F - o.f[k] + o.f
            ttff_i = np.maximum(0.0, np.maximum(Fi, Mi - w.video_s) - w.static_slide_s)
            obj_i = np.where(mask, _objective(objective, ttff_i, Mi, Mi, Fi), np.inf)
            if sc.max_ttff_s is not None and ok:
                obj_i = np.where(ttff_i <= sc.max_ttff_s + 1e-9, obj_i, np.inf)
            kk = int(np.argmin(obj_i))
            cur = _objective(objective, ttff, M, M, F)
            if obj_i[kk] < cur * (1 - 1e-9):
                used[g] += int(o.n[kk] - o.n[k])
                choice[i] = (m, g, kk)
                M, F = Mi[kk], Fi[kk]
                ttff, cost, obj, ok2 = sc.score(M, F, used)
                ok = ok or ok2
                improved = True
        if not improved:
            break
    return tuple(choice)


def pareto(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on both TTFF and cost, by increasing cost."""
    out, best = [], math.inf
    for c in sorted(cands, key=lambda c: (c.cost_usd, c.ttff_s)):
        if c.ttff_s < best - 1e-9:
            out.append(c)
            best = c.ttff_s
    return out


def exhaustive(w: Workload, budget: dict[str, int], pricing: str = "spot") -> tuple[float, Cluster]:
    """Best TTFF x cost over every homogeneous layout per model (pool of ``d``-GPU replicas,
    one GPU type) within ``budget``, by brute force with per-stage dominance pruning (for
    validating :func:`search` on small budgets only: exponential in the number of models)."""
    an = Model(w)
    sc = _Scorer(w, pricing, None, None)
    (g, B), = budget.items()
    per = []
    for m in w.models():
        o = model_options(an, an, m, g, B)
        keep = {}
        for k in range(len(o.n)):
            if o.lead[k]:
                continue
            n = int(o.n[k])
            if n not in keep or (o.t[k], o.f[k]) < (o.t[keep[n]], o.f[keep[n]]):
                keep[n] = k
        per.append([(n, o.t[k], o.f[k], (m, g, k)) for n, k in sorted(keep.items())])
    best = (math.inf, None)

    def rec(i, n, M, F, ch):
        nonlocal best
        if i == len(per):
            _, _, obj, _ = sc.score(M, F, {g: n})
            if obj < best[0]:
                best = (obj, tuple(ch))
            return
        for nn, t, f, c in per[i]:
            if n + nn + sum(p[0][0] for p in per[i + 1:]) > B:
                break
            rec(i + 1, n + nn, M + t, F + f, ch + [c])

    rec(0, 0, 0.0, 0.0, [])
    opts = {(m, g): model_options(an, an, m, g, B) for m in w.models()}
    return best[0], _choice_cluster(best[1], opts, pricing)
