"""``streamwise simulate``, ``streamwise provision`` and ``streamwise bench-sim``.

Registered by :func:`add_parsers` from :mod:`streamwise.cli`; every handler returns the exit
code (0 on success; ``ValueError`` becomes a one-line reason and code 2 in ``cli.main``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from .workload import FT, HF, load_workload

POLICIES = ("streamwise", "fifo", "naive")


def add_parsers(sub: argparse._SubParsersAction) -> dict:
    """Add the three subcommands to ``sub``; returns ``{command: handler}``."""
    s = sub.add_parser("simulate", help="simulate a workload on a cluster (discrete-event or the paper's analytic model)")
    s.add_argument("--cluster", required=True, help="cluster YAML file, or a GPU budget SPEC such as 16xA100 or 256xA100+64xH200")
    s.add_argument("--workload", help="workload YAML (default: the paper's 10-minute podcast, configs/workloads/podcast10.yaml)")
    s.add_argument("--engine", choices=("des", "analytic"), default="des", help="discrete-event (default) or the paper's analytic model")
    s.add_argument("--policy", choices=POLICIES, default="streamwise",
                   help="streamwise (our search allocator, EDF, adaptive quality), fifo (same allocation, FIFO, top rung), "
                        "naive (the paper's Naive: proportional split, reserved, no disaggregation or upscaler, FIFO)")
    s.add_argument("--allocator", choices=("greedy", "search"),
                   help="for a SPEC: our search (default for streamwise/fifo: fastest within the budget) or the paper's "
                        "greedy (its published allocator, 38 %% above the search on 16xA100)")
    s.add_argument("--pricing", choices=("spot", "reserved"), help="default: spot (reserved for naive)")
    s.add_argument("--adaptive", action="store_true", help="analytic: adaptive quality plus the workload's static slide")
    s.add_argument("--adaptive-method", choices=("ours", "paper"), default="ours",
                   help="analytic --adaptive: ours (first clip low on the same instances; stricter, default) or paper "
                        "(get_provisioning_adaptive_results: TTFF of a whole low-quality run on its own allocation "
                        "within the cluster's budget, cost of the high-quality run)")
    s.add_argument("--cpu-workers", type=int, default=16, help="des: CPU instances serving the static rung (default 16)")
    s.add_argument("--evictions-per-hour", type=float, default=0.0,
                   help="des, spot pricing: mean spot evictions per GPU instance per hour (Poisson; default 0)")
    s.add_argument("--replace-s", type=float, default=None,
                   help="des: seconds from an evicted instance gone to its replacement serving (default 300)")
    s.add_argument("--seed", type=int, default=0, help="des: seed of the eviction times (default 0)")
    s.add_argument("--autoscale", type=float, metavar="START_S",
                   help="des: also replay the deployment's autoscaling rule (instances serve START_S s after the "
                        "decision) and print both runs (streamwise.sim.autoscale)")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("provision", help="choose the cluster minimising TTFF x cost for a workload")
    p.add_argument("--workload", help="workload YAML (default: the paper's 10-minute podcast)")
    p.add_argument("--max-ttff", type=float, help="TTFF SLO in seconds (real time is implied: makespan <= video + TTFF)")
    p.add_argument("--budget", type=float, help="at most this many $ per request")
    p.add_argument("--pricing", choices=("spot", "reserved"), default="spot")
    p.add_argument("--gpus", help="GPU types to consider, e.g. a100,h200 (default: all)")
    p.add_argument("--max-gpus", type=int, default=4096, help="GPUs per type at most (default 4096)")
    p.add_argument("--adaptive", action="store_true", help="adaptive quality: the first clip at the low level")
    p.add_argument("--adaptive-method", choices=("ours", "paper"), default="ours",
                   help="with --adaptive: ours (default) or the paper's method (see simulate --adaptive-method)")
    p.add_argument("--objective", choices=("ttff_cost", "ttff"), default="ttff_cost",
                   help="minimise TTFF x cost (default, the paper's) or TTFF (ties to the cheaper; use with --budget)")
    p.add_argument("--out", help="write the plan (a cluster YAML for `simulate --cluster` and `up --plan`)")
    p.add_argument("--plot", help="write the TTFF-vs-cost plot of the candidates explored (PNG)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    b = sub.add_parser("bench-sim", help="time the provisioner and the discrete-event simulator")
    b.add_argument("--requests", type=int, default=1000, help="requests for the simulator run (default 1000)")
    b.add_argument("--rate", type=float, default=10.0, help="Poisson arrivals per minute (default 10)")
    b.add_argument("--cluster", default="4096xA100", help="cluster SPEC for the simulator run (default 4096xA100)")
    b.add_argument("--repeat", type=int, default=11, help="provisioner searches to time (default 11)")
    b.add_argument("--json", action="store_true")
    return {"simulate": cmd_simulate, "provision": cmd_provision, "bench-sim": cmd_bench_sim}


def _policy_workload(w, policy: str):
    if policy == "naive":   # the paper's NAIVE_POLICY: no disaggregation, no upscaler
        return w.with_(upscaler=False, disaggregate={HF: False, FT: False})
    return w


def build_cluster(spec: str, w, policy: str, pricing: str | None, allocator: str | None):
    """The cluster of ``spec`` (file or SPEC) with instances: a file's own, or the policy's
    allocator on a SPEC's budget."""
    from .allocate import greedy, naive
    from .cluster import Cluster, load_cluster
    from .provision import allocate

    from pathlib import Path

    c = load_cluster(spec)
    is_file = spec.endswith((".yaml", ".yml")) or Path(spec).exists()
    pricing = pricing or (c.pricing if is_file else ("reserved" if policy == "naive" else "spot"))
    if c.instances:
        return Cluster(c.budget, c.instances, pricing, c.name)
    if policy == "naive":
        out = naive(c.budget, w, pricing)
    elif (allocator or "search") == "greedy":
        out = greedy(c.budget, w, pricing)
    else:
        out = allocate(c.budget, w, pricing)
    return Cluster(c.budget, out.instances, pricing, c.name)


def cmd_simulate(args) -> int:
    from .analytic import evaluate, evaluate_adaptive
    from .des import simulate

    w = _policy_workload(load_workload(args.workload), args.policy)
    cluster = build_cluster(args.cluster, w, args.policy, args.pricing, args.allocator)
    if args.engine == "analytic":
        r = evaluate_adaptive(cluster, w, method=args.adaptive_method) if args.adaptive else evaluate(cluster, w)
        out = r.as_dict()
        if args.adaptive:
            out["adaptive_method"] = args.adaptive_method
    else:
        t0 = time.perf_counter()
        spot = dict(evictions_per_hour=args.evictions_per_hour, seed=args.seed,
                    **({} if args.replace_s is None else {"replace_s": args.replace_s}))
        policy = "fifo" if args.policy in ("fifo", "naive") else "edf"
        if args.autoscale is not None:
            from .autoscale import compare

            both = compare(cluster, w, start_s=args.autoscale, policy=policy, cpu_instances=args.cpu_workers, **spot)
            _print_autoscale(both) if not args.json else print(json.dumps(both))
            return 0
        r = simulate(cluster, w, policy=policy, cpu_instances=args.cpu_workers, **spot)
        out = r.as_dict()
        out["wall_s"] = round(time.perf_counter() - t0, 3)
    out["policy"] = args.policy
    out["pricing"] = cluster.pricing
    out["instances"] = [{"model": i.model, "gpu": i.gpu, "gpus": i.gpus, "replicas": i.replicas}
                        for i in cluster.instances]
    if args.json:
        print(json.dumps(out))
    else:
        _print_simulation(out)
    return 0


def _print_autoscale(both: dict) -> None:
    """Without and with the autoscaling rule, one row each."""
    print("| autoscaling | completed | TTFF median (s) | stall median / p95 (s) | missed segments | cost ($) | "
          "instances added / removed | added GPU-h |")
    print("|---|---|---|---|---|---|---|---|")
    for name, d in both.items():
        print(f"| {name} | {d['completed']} | {d['ttff_s']} | {d['stall_s']} / {d['stall_p95_s']} | "
              f"{d['deadline_misses']} of {d['segments']} | {d['cost_usd']} | "
              f"{d.get('instances_added', '-')} / {d.get('instances_removed', '-')} | {d.get('added_gpu_hours', '-')} |")


def _print_simulation(out: dict) -> None:
    print(f"{out['engine']} | cluster {out['cluster']} | policy {out['policy']} | {out['pricing']} pricing")
    for i in out["instances"]:
        print(f"  {i['replicas']:>5} x {i['model']:<22} on {i['gpus']:>2} x {i['gpu'].upper()}")
    keys = ("requests", "ttff_s", "ttff_p95_s", "makespan_s", "realtime_factor", "first_chunk_s", "stall_s",
            "deadline_misses", "rungs", "cost_usd", "cost_per_request_usd", "energy_kwh", "gpu_utilisation", "wall_s")
    if out.get("evictions"):
        keys += ("evictions", "tasks_rerun", "tasks_handed_back", "lost_gpu_s")
    for k in keys:
        if k in out and out[k] is not None:
            print(f"  {k:<22} {out[k]}")


def cmd_provision(args) -> int:
    from .cluster import write_plan
    from .provision import search

    w = load_workload(args.workload)
    plan = search(w, pricing=args.pricing, gpu_types=args.gpus.lower().split(",") if args.gpus else None,
                  max_ttff_s=args.max_ttff, budget_usd=args.budget, max_gpus=args.max_gpus, adaptive=args.adaptive,
                  keep_candidates=bool(args.plot), adaptive_method=args.adaptive_method, objective=args.objective)
    r = plan.result
    out = {"cluster": plan.best.cluster.spec(), "search_ms": round(plan.search_ms, 2), "feasible": plan.feasible,
           "ttff_s": round(r.ttff_s, 3), "makespan_s": round(r.makespan_s, 2), "cost_usd": round(r.cost_usd, 2),
           "energy_kwh": round(r.energy_kwh, 3), "first_chunk_s": round(r.first_chunk_s, 3),
           "realtime_factor": round(r.realtime_factor, 3), "pricing": args.pricing,
           "instances": [{"model": i.model, "gpu": i.gpu, "gpus": i.gpus, "replicas": i.replicas}
                         for i in plan.best.cluster.instances]}
    if plan.low_cluster is not None:   # the paper's adaptive method: the low-quality run's own allocation
        out["low_quality_cluster"] = plan.low_cluster.spec()
        out["low_quality_instances"] = [{"model": i.model, "gpu": i.gpu, "gpus": i.gpus, "replicas": i.replicas}
                                        for i in plan.low_cluster.instances]
    if args.out:
        write_plan(plan.best.cluster, args.out, {k: out[k] for k in ("ttff_s", "makespan_s", "cost_usd", "energy_kwh",
                                                                   "search_ms", "feasible")})
        out["plan"] = args.out
    if args.plot:
        from .report import pareto_plot
        pareto_plot(plan.candidates, args.plot, chosen=plan.best)
        out["plot"] = args.plot
    if args.json:
        print(json.dumps(out))
    else:
        print(f"cluster {out['cluster']} ({'meets' if plan.feasible else 'MISSES'} the SLO) found in {out['search_ms']} ms")
        for i in out["instances"]:
            print(f"  {i['replicas']:>5} x {i['model']:<22} on {i['gpus']:>2} x {i['gpu'].upper()}")
        for k in ("ttff_s", "first_chunk_s", "makespan_s", "realtime_factor", "cost_usd", "energy_kwh"):
            print(f"  {k:<16} {out[k]}")
        if plan.low_cluster is not None:
            print(f"  low-quality run (paper's adaptive method) on {out['low_quality_cluster']}:")
            for i in out["low_quality_instances"]:
                print(f"  {i['replicas']:>5} x {i['model']:<22} on {i['gpus']:>2} x {i['gpu'].upper()}")
        if args.out:
            print(f"plan written to {args.out}")
    return 0


def run_bench(requests: int = 1000, rate: float = 10.0, cluster: str = "4096xA100", repeat: int = 11) -> dict:
    """The issue-4 speed targets: provisioner search time for the podcast (ms; paper: ~90 ms),
    the paper's greedy on the same model (ms), the DES wall time for ``requests`` Poisson
    requests at ``rate``/min on ``cluster`` (s; target < 60 s), and the plan-driven simulator's
    wall and CPU time (s) for one request of the paper's workload on the high-quality real-time plan."""
    from .allocate import greedy
    from .analytic import evaluate, paper_latency
    from .cluster import parse_spec
    from .des import simulate
    from .provision import allocate, exhaustive, search
    from .workload import Arrivals

    w = load_workload()
    paper_latency()                                   # profiles loaded once, outside the timing
    first = search(w)
    times = [search(w).search_ms for _ in range(repeat)]
    out = {"provision_first_ms": round(first.search_ms, 1), "provision_median_ms": round(statistics.median(times), 1),
           "provision_min_ms": round(min(times), 1), "provision_cluster": first.best.cluster.spec(),
           "provision_ttff_s": round(first.result.ttff_s, 2), "provision_cost_usd": round(first.result.cost_usd, 2)}
    for n in (16, 320):
        t0 = time.perf_counter()
        c = greedy({"a100": n}, w)
        r = evaluate(c, w)
        out[f"greedy_{n}xA100_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        out[f"greedy_{n}xA100_ttff_x_cost"] = round(r.ttff_s * r.cost_usd, 1)
        p = search(w, gpu_types=["a100"], max_gpus=n)
        out[f"search_{n}xA100_ms"] = round(p.search_ms, 1)
        out[f"search_{n}xA100_ttff_x_cost"] = round(p.best.objective, 1)
    t0 = time.perf_counter()
    obj, _ = exhaustive(w, {"a100": 16})
    out["exhaustive_16xA100_ttff_x_cost"] = round(obj, 1)
    out["exhaustive_16xA100_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    wp = w.with_(arrivals=Arrivals("poisson", rate, requests, 1))
    c = allocate(parse_spec(cluster), wp)
    t0 = time.perf_counter()
    res = simulate(c, wp)
    out["des_requests"] = requests
    out["des_rate_per_min"] = rate
    out["des_cluster"] = cluster
    out["des_wall_s"] = round(time.perf_counter() - t0, 2)
    d = res.as_dict()
    out["des_ttff_median_s"], out["des_deadline_misses"], out["des_rungs"] = d["ttff_s"], d["deadline_misses"], d["rungs"]
    # the live request model (PlanSimulator) on one request of the paper's workload, high-quality real-time plan
    from .cluster import load_cluster
    from .paperplan import simulate_plans

    t0, c0 = time.perf_counter(), time.process_time()
    pr = simulate_plans(load_cluster("hq-realtime-ttff20.yaml"), w)
    out["plans_wall_s"], out["plans_cpu_s"] = round(time.perf_counter() - t0, 2), round(time.process_time() - c0, 2)
    out["plans_tasks"], out["plans_ttff_s"] = pr["tasks"], pr["ttff_s"]
    return out


def cmd_bench_sim(args) -> int:
    out = run_bench(args.requests, args.rate, args.cluster, args.repeat)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"provisioner (podcast, all GPU types, <= 4096 per type): first {out['provision_first_ms']} ms, "
              f"median {out['provision_median_ms']} ms, min {out['provision_min_ms']} ms over {args.repeat} "
              f"(paper: ~90 ms) -> {out['provision_cluster']}, TTFF {out['provision_ttff_s']} s, ${out['provision_cost_usd']}")
        for n in (16, 320):
            print(f"{n}xA100: paper's greedy {out[f'greedy_{n}xA100_ms']} ms, TTFFxcost {out[f'greedy_{n}xA100_ttff_x_cost']}; "
                  f"our search {out[f'search_{n}xA100_ms']} ms, TTFFxcost {out[f'search_{n}xA100_ttff_x_cost']}")
        print(f"16xA100 exhaustive: TTFFxcost {out['exhaustive_16xA100_ttff_x_cost']} ({out['exhaustive_16xA100_ms']} ms)")
        print(f"discrete-event: {out['des_requests']} requests at {out['des_rate_per_min']}/min on {out['des_cluster']}: "
              f"{out['des_wall_s']} s wall (target < 60 s); median TTFF {out['des_ttff_median_s']} s, "
              f"rungs {out['des_rungs']}")
        print(f"live request model (PlanSimulator): 1 request on hq-realtime-ttff20.yaml: {out['plans_tasks']} tasks in "
              f"{out['plans_wall_s']} s wall, {out['plans_cpu_s']} s CPU; TTFF {out['plans_ttff_s']} s")
    return 0
