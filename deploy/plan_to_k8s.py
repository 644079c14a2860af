"""Render a provisioner plan (``streamwise provision --out PLAN.yaml``) as Kubernetes
Deployments, one per instance group of the plan's ``workers:`` list.

Usage::

    python deploy/plan_to_k8s.py PLAN.yaml [--image streamwise-gpu:latest] [--nats nats://nats:4222] > plan-k8s.yaml

Each Deployment runs ``streamwise <args> --nats URL`` with the group's replica count,
requests ``nvidia.com/gpu: <gpus>`` per pod, and selects nodes by GPU type with the label
``streamwise/gpu: <a100|h100|h200|gb200>`` (label your node pools so, or edit the output).
Instances of more than 8 GPUs span servers (multi-node Ulysses x Ring): they are emitted
with a comment and need a multi-node launcher (e.g. a LeaderWorkerSet); the rest of the
output is an example to adapt (image names and memory requests are placeholders).

Raises ``SystemExit`` with a message when the file has no ``workers:`` list.
"""

from __future__ import annotations

import argparse
import re
import sys

import yaml

GPUS_PER_SERVER = 8   # the paper's 8-GPU servers (StreamWise, arXiv 2603.05800)


def _arg(args: list[str], flag: str, default: str = "") -> str:
    return args[args.index(flag) + 1] if flag in args else default


def deployments(plan: dict, image: str, nats: str) -> list[dict]:
    """One Deployment manifest (a dict) per entry of ``plan["workers"]``."""
    if not plan.get("workers"):
        raise SystemExit("plan has no `workers:` list: write it with `streamwise provision --out PLAN.yaml`")
    out = []
    for i, w in enumerate(plan["workers"]):
        args = [str(a) for a in w["args"]]
        model, hardware, gpus = _arg(args, "--model", "cpu"), _arg(args, "--hardware", "cpu"), int(_arg(args, "--gpus", "0"))
        name = re.sub(r"[^a-z0-9-]", "-", f"sw-{model}-{hardware}-{gpus}g-{i}".lower())
        container = {"name": "worker", "image": image, "args": args + ["--nats", nats],
                     "resources": {"limits": {"nvidia.com/gpu": min(gpus, GPUS_PER_SERVER)}} if gpus else {}}
        spec = {"containers": [container]}
        if hardware != "cpu":
            spec["nodeSelector"] = {"streamwise/gpu": hardware}
        manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                    "spec": {"replicas": int(w["replicas"]), "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
        if gpus > GPUS_PER_SERVER:
            manifest["metadata"]["annotations"] = {
                "streamwise/note": f"{gpus} GPUs span {-(-gpus // GPUS_PER_SERVER)} servers: needs a multi-node launcher"}
        out.append(manifest)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan")
    ap.add_argument("--image", default="streamwise-gpu:latest")
    ap.add_argument("--nats", default="nats://nats:4222")
    a = ap.parse_args(argv)
    with open(a.plan, encoding="utf-8") as f:
        plan = yaml.safe_load(f)
    yaml.safe_dump_all(deployments(plan, a.image, a.nats), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
