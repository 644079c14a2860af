"""The TTFF-vs-cost plot of the provisioner's candidates, and the figures of docs/simulation.md.

``python -m streamwise.sim.report [--out docs]`` recomputes every figure of the table in
``docs/simulation.md`` (analytic engine, the paper's model) and the DES counterparts, and
writes ``simulation_pareto.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .provision import Candidate, pareto


def pareto_plot(cands: list[Candidate], path: str | Path, *, chosen: Candidate | None = None,
                extra: dict[str, list[tuple[float, float]]] | None = None, title: str = "") -> None:
    """Scatter of TTFF (s, log) against cost ($ per request) of ``cands``, the Pareto frontier
    as a line, ``chosen`` as a star, ``extra`` labelled point sets (e.g. the paper's greedy)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    ok = [c for c in cands if c.ttff_s > 0]
    ax.scatter([c.cost_usd for c in ok], [c.ttff_s for c in ok], s=4, alpha=0.25, color="tab:blue",
               label=f"configurations explored ({len(ok)})")
    front = pareto(ok)
    ax.plot([c.cost_usd for c in front], [c.ttff_s for c in front], "-o", ms=3, color="tab:red", label="Pareto frontier")
    for name, pts in (extra or {}).items():
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=28, marker="x", label=name)
    if chosen is not None:
        ax.scatter([chosen.cost_usd], [chosen.ttff_s], s=160, marker="*", color="gold", edgecolor="k", zorder=5,
                   label=f"chosen: {chosen.cluster.spec()}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost per 10-minute podcast ($, spot)")
    ax.set_ylabel("TTFF (s)")
    ax.set_title(title or "Provisioner: TTFF vs cost (analytic model of the StreamWise paper)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figures() -> dict:
    """Every number of the docs' table: (ours, paper) pairs and the DES counterparts."""
    from .allocate import greedy, naive
    from .analytic import evaluate, evaluate_adaptive
    from .des import simulate
    from .paperplan import simulate_plans
    from .provision import exhaustive, search
    from .workload import FT, HF, load_workload

    w = load_workload()
    out: dict = {}
    obj, c16 = exhaustive(w, {"a100": 16})
    r = evaluate(c16, w)
    out["cheapest_a100"] = {"cluster": c16.spec(), **r.as_dict(), "des": simulate(c16, w, policy="fifo").as_dict(),
                            "plans": simulate_plans(c16, w, policy="fifo"),
                            "plans_edf": simulate_plans(c16, w, policy="edf")}
    g16 = greedy({"a100": 16}, w)
    out["greedy_16xA100"] = evaluate(g16, w).as_dict()
    nw = w.with_(upscaler=False, disaggregate={HF: False, FT: False})
    n8 = naive({"a100": 8}, nw, "reserved")
    out["naive_8xA100"] = {**evaluate(n8, nw).as_dict(), "des": simulate(n8, nw, policy="fifo").as_dict(),
                           "plans": simulate_plans(n8, nw, policy="fifo")}
    plan = search(w, keep_candidates=True)
    front = pareto(plan.candidates)
    rt = [c for c in front if c.ttff_s <= 20.0 + 1e-9]
    hq = min(rt, key=lambda c: c.cost_usd) if rt else None
    if hq is not None:
        out["hq_realtime_ttff20"] = {**evaluate(hq.cluster, w).as_dict(),
                                    "des": simulate(hq.cluster, w).as_dict(), "plans": simulate_plans(hq.cluster, w)}
    out["provision_best"] = {**plan.result.as_dict(), "search_ms": plan.search_ms}
    wa = load_workload("podcast10_adaptive")
    ad = search(wa, adaptive=True, max_ttff_s=2.0)
    out["adaptive_slide"] = {**evaluate_adaptive(ad.best.cluster, wa).as_dict(),
                             "des": simulate(ad.best.cluster, wa).as_dict(), "plans": simulate_plans(ad.best.cluster, wa)}
    if hq is not None:
        out["adaptive_on_hq"] = evaluate_adaptive(hq.cluster, wa).as_dict()
        out["adaptive_paper_on_hq"] = evaluate_adaptive(hq.cluster, wa, method="paper").as_dict()
    # the paper's adaptive method (get_provisioning_adaptive_results): fastest start for <= $45,
    # and the TTFF x cost optimum under a 2 s SLO
    for name, kw in (("adaptive_paper_45usd", dict(budget_usd=45.0, objective="ttff")),
                     ("adaptive_paper_best", dict(max_ttff_s=2.0))):
        pp = search(wa, adaptive=True, adaptive_method="paper", **kw)
        out[name] = {**pp.result.as_dict(), "low_quality_cluster": pp.low_cluster.spec()}
    return out, plan


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m streamwise.sim.report")
    ap.add_argument("--out", default="docs", help="folder for simulation_pareto.png (default docs)")
    args = ap.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    from .allocate import greedy
    from .analytic import evaluate
    from .workload import load_workload

    figs, plan = figures()
    w = load_workload()
    pts = []
    for n in (16, 32, 64, 128, 256, 320):
        r = evaluate(greedy({"a100": n}, w), w)
        pts.append((r.cost_usd, r.ttff_s))
    pareto_plot(plan.candidates, Path(args.out) / "simulation_pareto.png", chosen=plan.best,
                extra={"paper's greedy, 16-320 A100": pts})
    print(json.dumps(figs, indent=1, default=str))


if __name__ == "__main__":
    main()
