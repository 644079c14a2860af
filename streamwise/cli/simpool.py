"""``streamwise simulate-pool --script FILE``: script requests on a pool of instances, simulated with
the live scheduler's request model (:mod:`streamwise.sim.plans`; every instance emulated)."""

from __future__ import annotations

import json
import sys


def _instances(args):
    from ..bus.messages import Heartbeat
    from ..service.pool import emulated_workers, parse_workers
    from ..stages.registry import default_model

    out = []
    for stage, count in parse_workers(args.workers).items():
        for i in range(count):
            out.append(Heartbeat(instance=f"{stage}-{i}", stage=stage, model=default_model(stage)))
    for name, cmd in emulated_workers(args.emulate or []):
        model, hardware, gpus = cmd[cmd.index("--model") + 1], cmd[cmd.index("--hardware") + 1], int(cmd[cmd.index("--gpus") + 1])
        out.append(Heartbeat(instance=name, stage=cmd[cmd.index("--stage") + 1], model=model, hardware=hardware,
                             gpus=gpus))
    return out


def cmd_simulate_pool(args) -> int:
    from ..bus.messages import Request
    from ..script import ScriptError, decode_script, read_script_file
    from ..sim.plans import PlanSimulator

    name = args.script
    try:
        text = decode_script(read_script_file(name), name)
    except ScriptError as exc:
        print(f"streamwise simulate-pool: {exc}", file=sys.stderr)
        return 2
    requests = [(i * args.every, Request(request_id=f"r{i}", submitted_at=0.0, script=text, script_name=name,
                                         ttff_s=args.ttff)) for i in range(args.requests)]
    run = PlanSimulator(requests, _instances(args), policy=args.policy, cap=args.cap).run()
    summary = run.summary()
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"simulated (every instance emulated), policy {args.policy}: {len(requests)} request(s) of {name}, "
          f"{summary['tasks']} tasks")
    for key, r in summary["requests"].items():
        print(f"  {key}: TTFF {r['ttff_s']:.2f} s, stall {r['stall_s']:.2f} s, {r['segments']} segments"
              f"{'' if r['finished'] else ' (not finished)'}")
    print(f"  video rungs: {summary['rungs']}")
    return 0 if all(r["finished"] for r in summary["requests"].values()) else 1


def add_parser(sub) -> None:
    s = sub.add_parser("simulate-pool", help="simulate script requests on a pool with the live scheduler's request "
                                             "model (PodcastPlan, snapshot, placement; emulated instances)")
    s.add_argument("--script", required=True, help="the script every request speaks")
    s.add_argument("--requests", type=int, default=1, help="requests (default 1)")
    s.add_argument("--every", type=float, default=0.0, help="seconds between arrivals (default 0: all at once)")
    s.add_argument("--workers", help="CPU workers per stage as for `up`, e.g. tts=2,video=3 (default 1 each)")
    s.add_argument("--emulate", action="append", metavar="MODEL:HARDWARE:GPUS",
                   help="an emulated GPU video instance, as for `up` (repeatable)")
    s.add_argument("--policy", choices=("edf", "fifo"), default="edf")
    s.add_argument("--cap", type=int, default=3, help="outstanding tasks per instance (the scheduler's, default 3)")
    s.add_argument("--ttff", type=float, default=1.5, help="TTFF SLO in seconds (default 1.5)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(handler=cmd_simulate_pool)
