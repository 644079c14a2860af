"""A provisioner plan read for deployment: the file (:func:`load_plan`), its ``workers:`` entries as
worker groups checked against the stage registry (:func:`worker_groups`, :class:`WorkerGroup`), and
what the manifests do not take from the plan (:class:`RenderOptions`). The manifests are
:mod:`.render`'s."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..service.demand import Pool
from ..stages.registry import ADAPTERS, STAGES


class PlanError(ValueError):
    """A plan that cannot be deployed; the message names the worker group and what is wrong."""


@dataclass(frozen=True)
class RenderOptions:
    """What the manifests do not take from the plan (defaults are placeholders to adapt).

    ``nats_url``: the NATS client URL inside the cluster (the Helm release ``nats`` in the same
    namespace); ``prometheus_url``: the server KEDA queries; ``gpu_label``: the node label whose
    value is the GPU type (``h100``, ...); ``spot_label``: ``KEY=VALUE`` of spot nodes, tolerated as
    a ``NoSchedule`` taint of the same key and value (default: AKS's spot pools);
    ``gpus_per_node``: the GPUs of one node, the most one pod takes (a larger instance spans nodes);
    ``max_scale``: a pool's KEDA maximum is its plan replicas times this; ``horizon_s``: the demand
    horizon T (seconds) the schedulers use; ``emulate``: render GPU workers as emulated instances
    (``--emulate``: the model's profiled time, CPU-rung output, no GPU requests) for a rehearsal on
    a cluster without GPUs; ``tenants``: comma-separated tenants whose upload stores the layout
    Job creates (the gateway serves the first; default: the auth directory's tenants);
    ``auth_dir``: an auth directory (``streamwise auth init``): the NATS values then carry its
    operator, accounts and resolver (:func:`streamwise.bus.auth.helm_merge`, the settings its
    ``nats.conf`` was written from) and ``secrets.yaml`` holds each role's credentials as the
    Secrets the Deployments mount."""

    namespace: str = "streamwise"
    image: str = "streamwise:latest"
    gpu_image: str = "streamwise-gpu:latest"
    nats_url: str = "nats://nats:4222"
    prometheus_url: str = "http://prometheus-server.monitoring.svc:80"
    gpu_label: str = "streamwise/gpu"
    spot_label: str = "kubernetes.azure.com/scalesetpriority=spot"
    health_port: int = 8081
    gateway_port: int = 8080
    schedulers: int = 2
    gateways: int = 2
    gpus_per_node: int = 8
    max_scale: int = 4
    horizon_s: float = 30.0
    emulate: bool = False
    tenants: str = ""
    auth_dir: str | None = None

    def tenant_list(self) -> list[str]:
        """``tenants`` as a list; default the auth directory's tenants, else ``["default"]``."""
        given = [t.strip() for t in self.tenants.split(",") if t.strip()]
        if given or not self.auth_dir:
            return given or ["default"]
        from ..bus.auth import load_auth_dir

        return list(load_auth_dir(self.auth_dir).tenants)


@dataclass(frozen=True)
class WorkerGroup:
    """One worker Deployment: ``replicas`` instances of ``model`` (stage ``stage``) on ``gpus`` GPUs
    of type ``hardware`` each (``cpu``/0 for a CPU pool); ``extra``: the plan's other worker
    arguments (e.g. ``--llm vllm``); ``optional``: may scale to zero."""

    stage: str
    model: str
    hardware: str
    gpus: int
    replicas: int
    optional: bool = False
    extra: tuple[str, ...] = field(default_factory=tuple)
    nodes: int = 1    # pods (GPU nodes) one instance spans: gpus / gpus_per_node when over one node

    @property
    def name(self) -> str:
        """The Deployment name, e.g. ``sw-video-fantasytalking-h100-8g`` (a DNS-1123 label)."""
        hw = "cpu" if self.hardware == "cpu" else f"{self.hardware}-{self.gpus}g"
        return _dns(f"sw-{self.stage}-{self.model}-{hw}")

    @property
    def pool(self) -> Pool:
        return Pool(self.stage, self.model, self.hardware, self.gpus)


_RESERVED = ("--nats", "--creds", "--health-port", "--instance")


def _dns(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:63].rstrip("-")


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read a plan file (YAML mapping with a ``workers`` list).

    Raises:
        PlanError: unreadable file, not YAML, or no ``workers:`` list.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"plan {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("workers"), list) or not data["workers"]:
        raise PlanError(f"plan {path} has no `workers:` list: write it with `streamwise provision --out PLAN.yaml`")
    return data


def worker_groups(plan: dict[str, Any], opts: RenderOptions | None = None) -> list[WorkerGroup]:
    """The plan's ``workers:`` entries as :class:`WorkerGroup`, each checked against the registry.

    Raises:
        PlanError: an entry whose stage / model no worker serves (``stages/registry.py``), a bad
            replica or GPU count, an instance larger than ``opts.gpus_per_node``, arguments the
            renderer sets itself (``--nats``, ``--creds``, ``--health-port``, ``--instance``), two
            entries for one Deployment, or a stage of the podcast with no worker at all.
    """
    opts = opts or RenderOptions()
    p = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    p.add_argument("command")
    p.add_argument("--stage")
    p.add_argument("--model")
    p.add_argument("--hardware", default="cpu")
    p.add_argument("--gpus", default="0")
    groups: list[WorkerGroup] = []
    for n, entry in enumerate(plan.get("workers") or [], start=1):
        where = f"plan worker {n}"
        if not isinstance(entry, dict) or not isinstance(entry.get("args"), list):
            raise PlanError(f"{where}: expected a mapping with `args:` (the streamwise worker arguments)")
        args = [str(a) for a in entry["args"]]
        where = f"plan worker {n} ({' '.join(args)})"
        try:
            ns, extra = p.parse_known_args(args)
        except argparse.ArgumentError as exc:
            raise PlanError(f"{where}: {exc}") from None
        if ns.command != "worker":
            raise PlanError(f"{where}: args must start with `worker`")
        for flag in _RESERVED:
            if any(a == flag or a.startswith(flag + "=") for a in extra):
                raise PlanError(f"{where}: {flag} is set by the renderer; remove it from the plan")
        if ns.stage not in STAGES:
            raise PlanError(f"{where}: no worker serves stage {ns.stage!r}; stages are {', '.join(STAGES)}")
        if (ns.stage, ns.model) not in ADAPTERS:
            known = ", ".join(m for s, m in ADAPTERS if s == ns.stage)
            raise PlanError(f"{where}: no worker serves model {ns.model!r} for stage {ns.stage!r} "
                            f"(stages/registry.py knows: {known}); re-write the plan with `streamwise provision --out`")
        try:
            gpus, replicas = int(ns.gpus), int(entry.get("replicas", 1))
        except (TypeError, ValueError):
            raise PlanError(f"{where}: --gpus and replicas must be whole numbers") from None
        if replicas < 0 or gpus < 0:
            raise PlanError(f"{where}: negative replicas or GPUs")
        if (ns.hardware == "cpu") != (gpus == 0):
            raise PlanError(f"{where}: a GPU --hardware needs --gpus >= 1, and --hardware cpu takes no GPUs")
        nodes = 1
        if gpus > opts.gpus_per_node:
            if gpus % opts.gpus_per_node:
                raise PlanError(f"{where}: an instance of {gpus} GPUs spans several {opts.gpus_per_node}-GPU nodes but not "
                                f"a whole number of them (a multi-node instance takes every GPU of each node); "
                                f"provision a multiple of {opts.gpus_per_node}, or pass --gpus-per-node")
            nodes = gpus // opts.gpus_per_node
        groups.append(WorkerGroup(ns.stage, ns.model, ns.hardware, gpus, replicas, bool(entry.get("optional", False)),
                                  tuple(extra), nodes if not opts.emulate else 1))
    names = [g.name for g in groups]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise PlanError(f"plan has two worker groups for Deployment {dup[0]}: merge their replicas")
    missing = [s for s in STAGES if not any(g.stage == s for g in groups)]
    if missing:
        raise PlanError(f"plan has no worker for stage(s) {', '.join(missing)}: no podcast could complete "
                        f"(`streamwise provision --out` adds the CPU pools)")
    return groups
