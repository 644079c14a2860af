"""The provision under the paper's adaptive method (``streamwise provision --adaptive
--adaptive-method paper``): a low-quality run's allocation per candidate GPU budget of
:func:`streamwise.sim.provision.search`, by branch and bound on a first-chunk lower bound."""

from __future__ import annotations

import math
import time

from .analytic import Model, evaluate, evaluate_adaptive
from .cluster import SERVER_GPUS
from .provision import DEFAULT_MAX_GPUS, Candidate, Plan, search
from .workload import Workload


def search_adaptive_paper(w: Workload, *, pricing: str = "spot", gpu_types: list[str] | None = None,
                          max_ttff_s: float | None = None, budget_usd: float | None = None,
                          max_gpus: int | dict[str, int] = DEFAULT_MAX_GPUS, keep_candidates: bool = False,
                          objective: str = "ttff_cost") -> Plan:
    """The provision minimising TTFF x cost under the paper's adaptive method
    (Azure/realtimevideogen ``simulator/provisioning.py`` ``get_provisioning_adaptive_results``;
    :func:`streamwise.sim.analytic.evaluate_adaptive` with ``method="paper"``): for a GPU
    budget (whole servers per type), cost = the high-level run's, TTFF = a low-level run's on
    its own allocation within the same budget, minus the static slide (seconds).

    Budgets: those of every high-level candidate of :func:`search` (each budget with its
    cheapest high-level allocation). Branch and bound: a budget's low-level TTFF is at least
    the sum over stages of the fastest low-level first unit on its GPU types (seconds, ignoring
    that the stages share the budget), so budgets are visited by cost x that bound and the
    exact low-level allocation (:func:`streamwise.sim.analytic.paper_low_allocation`) is
    computed only while the bound can still beat the best. ``objective``: ``ttff_cost`` (TTFF
    x cost) or ``ttff`` (the shortest TTFF, ties to the cheaper: with ``budget_usd``, the
    paper's question "how fast a start for the cost of the high-quality configuration")."""
    if objective not in ("ttff_cost", "ttff"):
        raise ValueError(f"objective: ttff_cost or ttff, got {objective!r}")
    from .analytic import paper_low_allocation

    t0 = time.perf_counter()
    high = search(w, pricing=pricing, gpu_types=gpu_types, max_gpus=max_gpus, keep_candidates=True)
    low_m = Model(w, "low")
    per_budget: dict[tuple, Candidate] = {}
    for c in high.candidates:
        if budget_usd is not None and c.cost_usd > budget_usd + 1e-9:
            continue
        k = tuple(sorted(c.cluster.servers().items()))
        if k not in per_budget or c.cost_usd < per_budget[k].cost_usd:
            per_budget[k] = c
    bound_cache: dict[tuple, float] = {}

    def bound(k: tuple) -> float:
        if k not in bound_cache:
            tot = 0.0
            for m in w.models():
                tot += min((low_m.first_s(m, g, d) for g, n in k for d in w.gpu_counts[m]
                            if d <= n * SERVER_GPUS and low_m.t.has(m, g, d)), default=math.inf)
            bound_cache[k] = tot
        return bound_cache[k]

    slide = w.static_slide_s
    def obj(ttff: float, cost: float) -> float:
        return ttff * cost if objective == "ttff_cost" else ttff + 1e-9 * cost

    order = sorted(per_budget, key=lambda k: obj(max(bound(k) - slide, 0.0), per_budget[k].cost_usd))
    best = None                      # (key, candidate, low cluster, ttff)
    fallback = None
    cands: list[Candidate] = []
    for k in order:
        c = per_budget[k]
        lb = max(bound(k) - slide, 0.0)
        if best is not None and obj(lb, c.cost_usd) >= best[0][1]:
            break
        if max_ttff_s is not None and lb > max_ttff_s + 1e-9:
            continue
        low_c = paper_low_allocation(c.cluster, w)
        ttff = max(0.0, evaluate(low_c, w, level="low", slide=False).ttff_s - slide)
        ok = max_ttff_s is None or ttff <= max_ttff_s + 1e-9
        cands.append(Candidate(c.cluster, c.makespan_s, c.first_chunk_s, ttff, c.cost_usd, ok))
        key = (not ok, obj(ttff, c.cost_usd))
        if ok and (best is None or key < best[0]):
            best = (key, c, low_c, ttff)
        if fallback is None or key < fallback[0]:
            fallback = (key, c, low_c, ttff)
    pick = best or fallback
    if pick is None:
        raise ValueError("no provision meets the budget")
    _, c, low_c, _ = pick
    ms = (time.perf_counter() - t0) * 1000.0
    result = evaluate_adaptive(c.cluster, w, method="paper", low_cluster=low_c)
    ok = (max_ttff_s is None or result.ttff_s <= max_ttff_s + 1e-9) and \
         (budget_usd is None or result.cost_usd <= budget_usd + 1e-9)
    best_c = Candidate(c.cluster, result.makespan_s, result.first_chunk_s, result.ttff_s, result.cost_usd, ok)
    return Plan(best_c, result, ms, cands if keep_candidates else [], ok, low_c)
