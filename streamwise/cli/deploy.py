"""``streamwise deploy render --plan PLAN.yaml -o DIR`` and ``streamwise deploy validate DIR``
(issue 14; :mod:`streamwise.deploy`)."""

from __future__ import annotations

import sys

from ..deploy.render import PlanError, RenderOptions, load_plan, render, worker_groups, write


def add_parser(sub) -> None:
    d = sub.add_parser("deploy", help="Kubernetes manifests from a provisioner plan, and their offline validation")
    dsub = d.add_subparsers(dest="deploy_command", required=True)
    r = dsub.add_parser("render", help="turn a plan (streamwise provision --out) into a Kustomize base + NATS values")
    r.add_argument("--plan", required=True, help="the provisioner's plan YAML")
    r.add_argument("-o", "--out", required=True, help="output directory")
    defaults = RenderOptions()
    for flag, attr, kind, text in (
            ("--namespace", "namespace", str, "Kubernetes namespace"),
            ("--image", "image", str, "image of the scheduler, gateway and CPU workers"),
            ("--gpu-image", "gpu_image", str, "image of the GPU workers (with torch and the GPU extra)"),
            ("--nats", "nats_url", str, "NATS URL inside the cluster"),
            ("--prometheus", "prometheus_url", str, "Prometheus server KEDA queries"),
            ("--gpu-label", "gpu_label", str, "node label whose value is the GPU type"),
            ("--spot-label", "spot_label", str, "KEY=VALUE label and taint of spot nodes"),
            ("--health-port", "health_port", int, "health endpoint port of every process"),
            ("--schedulers", "schedulers", int, "scheduler replicas"),
            ("--gateways", "gateways", int, "gateway replicas"),
            ("--gpus-per-node", "gpus_per_node", int, "GPUs of one node; a larger instance spans several (multi-node)"),
            ("--max-scale", "max_scale", int, "KEDA maximum = plan replicas x this"),
            ("--horizon", "horizon_s", float, "demand horizon T of the autoscaling signal (s)"),
            ("--tenants", "tenants", str, "tenants whose upload stores the layout Job creates; the gateway serves the "
                                          "first (default: those of --auth, else default)"),
            ("--auth", "auth_dir", str, "auth directory (streamwise auth init): NATS values with its accounts, "
                                        "secrets.yaml with each role's credentials")):
        r.add_argument(flag, dest=attr, type=kind, default=getattr(defaults, attr),
                       help=f"{text} (default {getattr(defaults, attr)})")
    r.add_argument("--emulate", action="store_true",
                   help="GPU workers as emulated instances (no GPUs requested): a rehearsal on a CPU-only cluster")
    r.set_defaults(handler=cmd_render)
    v = dsub.add_parser("validate", help="validate a rendered directory offline (Kubernetes + KEDA schemas, kustomize)")
    v.add_argument("dir")
    v.add_argument("--kubernetes-version", default="1.32")
    v.set_defaults(handler=cmd_validate)


def cmd_render(args) -> int:
    fields = {k: getattr(args, k) for k in RenderOptions.__dataclass_fields__ if hasattr(args, k)}
    opts = RenderOptions(**fields)
    try:
        plan = load_plan(args.plan)
        files = render(plan, opts)
    except PlanError as exc:
        print(f"streamwise deploy render: {exc}", file=sys.stderr)
        return 1
    write(files, args.out, source=args.plan)
    groups = worker_groups(plan, opts)
    print(f"rendered {len(groups)} worker Deployments, the scheduler and the gateway into {args.out}")
    for g in groups:
        launch = "torchrun" if g.gpus > 1 and not opts.emulate else "worker"
        print(f"  {g.name:<44} {g.replicas:>3} x {g.gpus or '-':>2} GPU  {'optional ' if g.optional else ''}({launch})")
    for left in plan.get("not_deployed") or []:
        print(f"  not deployed: {left.get('replicas')} x {left.get('model')} ({left.get('reason')})")
    return 0


def cmd_validate(args) -> int:
    from ..deploy.validate import kustomize, validate_dir

    try:
        count, errors = validate_dir(args.dir, args.kubernetes_version)
        built = kustomize(args.dir)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"streamwise deploy validate: {exc}", file=sys.stderr)
        return 1
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{count} objects, {len(errors)} errors (Kubernetes {args.kubernetes_version} schemas, KEDA CRD models)"
          + ("; kubectl kustomize: ok" if built is not None else "; kubectl not found: kustomize not run"))
    return 1 if errors else 0
