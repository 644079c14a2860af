"""A provisioner plan as Kubernetes manifests: ``streamwise deploy render --plan PLAN.yaml -o DIR``.

The plan is what ``streamwise provision --out PLAN.yaml`` writes (:func:`streamwise.sim.cluster.plan_dict`):
its ``workers:`` list holds, per worker group, ``replicas``, ``optional`` and the ``streamwise worker``
arguments. :func:`render` turns it into a Kustomize base (plain YAML, ``kubectl apply -k DIR``):

- ``scheduler.yaml``: the scheduler Deployment (``streamwise scheduler``), told the plan's pools
  (``$STREAMWISE_POOLS``) so that it exports the demand of pools at zero replicas too;
- ``gateway.yaml``: the HTTP gateway Deployment (``streamwise serve``) and its Service;
- ``workers.yaml``: one Deployment per worker group, i.e. per (stage, model, GPU type, GPUs per
  instance), with ``nvidia.com/gpu: k``, a node selector on the GPU type, tolerations for GPU and
  (spot plans) spot nodes; an instance of ``k > 1`` GPUs starts through the torchrun launcher
  (:func:`streamwise.stages.gpu.parallel.launch_command`);
- ``multinode-workers.yaml`` (only when the plan has one): an instance over one node (``--gpus``
  above ``gpus_per_node``, a whole number of nodes) as a headless Service and a leader and a
  follower StatefulSet, torchrun with static rendezvous at the leader (:func:`_multinode`);
- ``disruption-budgets.yaml``: a PodDisruptionBudget per Deployment and per multi-node instance
  (at most one pod down at once);
- ``autoscaling.yaml``: a KEDA ScaledObject per worker Deployment on the schedulers' demand metric
  (Prometheus trigger; :mod:`streamwise.service.demand`), from 0 replicas for optional pools;
- ``layout-job.yaml``: a Job that creates the bus layout with the admin's credentials;
- ``secrets.yaml`` (with ``auth_dir``): each role's credentials as the Secrets the pods mount;
- ``kustomization.yaml`` and ``namespace.yaml``; and, outside the base, ``nats-values.yaml`` for the
  official NATS Helm chart (3 nodes, JetStream on file storage; stream replicas 3 through
  ``STREAMWISE_REPLICAS=3`` on every process).

Every process gets a health endpoint (``--health-port``: ``/healthz`` for liveness, ``/readyz`` for
readiness, :mod:`streamwise.telemetry.health`), the NATS credentials of its role from a Secret
(``streamwise-<role>-creds``, key ``<role>.creds``, passed as ``--creds FILE``), a preStop pause and
a termination grace period longer than the worker's drain (:data:`STOP_GRACE_S`).

Image names, CPU and memory requests and node labels are options with defaults to adapt
(:class:`RenderOptions`).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..service.demand import HORIZON_ENV, NEEDED_METRIC, POOLS_ENV, Pool, format_pools
from ..stages.gpu.parallel import RDZV_PORT, launch_command, launch_env
from ..stages.registry import ADAPTERS, STAGES

#: The worker's drain on SIGTERM (``stages/runtime/worker.py`` ``STOP_GRACE_S``, default 25 s).
STOP_GRACE_S = 25
#: Seconds the preStop hook waits before the container gets SIGTERM (lets the pod leave the
#: Service endpoints and readiness propagate; the drain itself starts on SIGTERM).
PRESTOP_S = 3
#: After the drain: handing queued tasks back and leaving the instance registry (the worker
#: waits up to 2.5 s for its pull loop and 5 s for the registry).
HAND_BACK_S = 10
CREDS_DIR = "/var/run/secrets/streamwise"
#: fsGroup of every pod: Kubernetes adds it to the processes' groups and owns the Secret's files by it.
CREDS_GROUP = 1000
ROLE_OF = {"scheduler": "scheduler", "gateway": "gateway", "worker": "worker"}


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


# ------------------------------------------------------------------------------------------ pieces


def _labels(component: str, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}


def secret_name(role: str) -> str:
    """The Secret holding ``role``'s credentials (``role``: ``admin``, ``scheduler``, ``gateway``,
    ``worker-<model>``), under the key ``<role>.creds``."""
    return _dns(f"streamwise-{role}-creds")


def _creds_volume(role: str) -> tuple[dict, dict, str]:
    secret = secret_name(role)
    path = f"{CREDS_DIR}/{role}.creds"
    # owner and group read: the pod's fsGroup (CREDS_GROUP) makes it readable to any image user
    volume = {"name": "creds", "secret": {"secretName": secret, "defaultMode": 0o440,
                                          "items": [{"key": f"{role}.creds", "path": f"{role}.creds"}]}}
    mount = {"name": "creds", "mountPath": CREDS_DIR, "readOnly": True}
    return volume, mount, path


def _health_probes(port: int, startup_s: int) -> dict[str, Any]:
    """Liveness on ``/healthz`` (alive and connected to the bus: a minute of outage before a
    restart), readiness on ``/readyz``, a startup probe that allows ``startup_s`` for loading."""
    def get(path: str, period: int, failures: int) -> dict:
        return {"httpGet": {"path": path, "port": "health"}, "periodSeconds": period, "timeoutSeconds": 3,
                "failureThreshold": failures}
    return {"startupProbe": get("/healthz", 10, max(1, startup_s // 10)),
            "livenessProbe": get("/healthz", 10, 6),
            "readinessProbe": get("/readyz", 5, 2),
            "ports": [{"name": "health", "containerPort": port}]}


def _env(extra: dict[str, str] | None = None) -> list[dict[str, str]]:
    env = {"STREAMWISE_REPLICAS": "3", "STREAMWISE_STOP_GRACE_S": str(STOP_GRACE_S), **(extra or {})}
    return [{"name": k, "value": v} for k, v in env.items()]


def _deployment(name: str, component: str, replicas: int, container: dict, pod: dict, grace_s: int,
                annotations: dict | None = None) -> dict:
    labels = _labels(component, name)
    container = {**container, "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}}}
    template_meta: dict[str, Any] = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                     "template": {"metadata": template_meta,
                                  "spec": {"terminationGracePeriodSeconds": grace_s,
                                           "securityContext": {"fsGroup": CREDS_GROUP}, "containers": [container],
                                           **pod}}}}


def _pdb(name: str) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}}


def _instance_pdb(instance: str) -> dict:
    """At most one pod of a multi-node instance down at once (one is enough to stop the instance)."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": instance},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"streamwise/instance": instance}}}}


def _scheduler(groups: list[WorkerGroup], opts: RenderOptions) -> dict:
    volume, mount, creds = _creds_volume("scheduler")
    probes = _health_probes(opts.health_port, 60)
    container = {"name": "scheduler", "image": opts.image,
                 "command": ["streamwise", "scheduler", "--nats", opts.nats_url, "--creds", creds,
                             "--health-port", str(opts.health_port)],
                 "env": _env({POOLS_ENV: format_pools([g.pool for g in groups]), HORIZON_ENV: f"{opts.horizon_s:g}"}),
                 "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                 "volumeMounts": [mount], **probes}
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(opts.health_port),
              "prometheus.io/path": "/metrics"}
    return _deployment("sw-scheduler", "scheduler", opts.schedulers, container, {"volumes": [volume]}, 30, scrape)


def _layout_job(opts: RenderOptions) -> dict:
    """The Job that creates the bus layout (streams, KV buckets, object stores with 3 replicas, an
    upload store per tenant) with the admin's credentials: on an authenticated bus no other role
    may (``streamwise layout``). It retries until NATS is up; it is idempotent."""
    volume, mount, creds = _creds_volume("admin")
    container = {"name": "layout", "image": opts.image,
                 "command": ["streamwise", "layout", "--nats", opts.nats_url, "--creds", creds,
                             "--tenants", ",".join(opts.tenant_list())],
                 "env": _env(), "volumeMounts": [mount],
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sw-layout", "labels": _labels("layout", "sw-layout")},
            "spec": {"backoffLimit": 20, "ttlSecondsAfterFinished": 3600,
                     "template": {"metadata": {"labels": _labels("layout", "sw-layout")},
                                  "spec": {"restartPolicy": "OnFailure", "securityContext": {"fsGroup": CREDS_GROUP},
                                           "containers": [container], "volumes": [volume]}}}}


def _gateway(opts: RenderOptions) -> list[dict]:
    volume, mount, creds = _creds_volume("gateway")
    tcp = {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    container = {"name": "gateway", "image": opts.image,
                 "command": ["streamwise", "serve", "--nats", opts.nats_url, "--creds", creds,
                             "--tenant", opts.tenant_list()[0],
                             "--host", "0.0.0.0", "--port", str(opts.gateway_port)],
                 "env": _env(), "ports": [{"name": "http", "containerPort": opts.gateway_port}],
                 "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                 "volumeMounts": [mount],
                 # liveness: the port answers; readiness: the HTTP app serves (its OpenAPI document)
                 "livenessProbe": {**tcp, "failureThreshold": 6},
                 "readinessProbe": {"httpGet": {"path": "/openapi.json", "port": "http"}, "periodSeconds": 5,
                                    "timeoutSeconds": 3, "failureThreshold": 2}}
    dep = _deployment("sw-gateway", "gateway", opts.gateways, container, {"volumes": [volume]}, 30)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sw-gateway", "labels": _labels("gateway", "sw-gateway")},
           "spec": {"selector": {"app.kubernetes.io/name": "sw-gateway"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [dep, svc]


def _worker_pod(g: WorkerGroup, plan: dict[str, Any], opts: RenderOptions, command: list[str], *,
                gpus_per_pod: int, probes: bool = True) -> tuple[dict, dict]:
    """The worker container and pod spec fields of ``g`` (``gpus_per_pod`` GPUs per pod): image,
    resources, node selector and tolerations (GPU type, spot), its model's credentials."""
    volume, mount, _ = _creds_volume(f"worker-{g.model}")   # its model's user (docs/security.md)
    gpu = g.hardware != "cpu"
    env: dict[str, str] = {}
    if gpu and not opts.emulate and g.gpus > 1:
        env.update(launch_env())   # the device plugin sets the visible GPUs
    resources: dict[str, Any] = {"requests": {"cpu": "1", "memory": "1Gi"}}
    pod: dict[str, Any] = {"volumes": [volume]}
    if gpu and not opts.emulate:
        resources = {"requests": {"cpu": str(4 * gpus_per_pod), "memory": f"{32 * gpus_per_pod}Gi"},
                     "limits": {"nvidia.com/gpu": gpus_per_pod}}
        pod["nodeSelector"] = {opts.gpu_label: g.hardware}
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        if plan.get("pricing", "spot") == "spot":
            key, _, value = opts.spot_label.partition("=")
            pod["nodeSelector"][key] = value
            pod["tolerations"].append({"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"})
    container = {"name": "worker", "image": opts.gpu_image if gpu and not opts.emulate else opts.image,
                 "command": command, "env": _env(env), "resources": resources, "volumeMounts": [mount]}
    if probes:   # a GPU model loads its checkpoints before it registers: allow 10 minutes
        container.update(_health_probes(opts.health_port, 600 if gpu else 120))
    return container, pod


def _worker(g: WorkerGroup, plan: dict[str, Any], opts: RenderOptions) -> dict:
    _, _, creds = _creds_volume(f"worker-{g.model}")
    own = ["--creds", creds, "--health-port", str(opts.health_port)]
    if g.hardware != "cpu" and opts.emulate:
        command = ["streamwise", "worker", "--stage", g.stage, "--model", g.model, "--hardware", g.hardware,
                   "--gpus", str(g.gpus), "--emulate", "--nats", opts.nats_url, *own]
    else:
        command = launch_command(g.stage, g.model, g.gpus, opts.nats_url, hardware=g.hardware, extra=[*g.extra, *own])
    container, pod = _worker_pod(g, plan, opts, command, gpus_per_pod=g.gpus)
    grace = PRESTOP_S + STOP_GRACE_S + HAND_BACK_S
    dep = _deployment(g.name, "worker", g.replicas, container, pod, grace)
    dep["metadata"]["annotations"] = {"streamwise/pool": format_pools([g.pool])}
    return dep


def _multinode(g: WorkerGroup, plan: dict[str, Any], opts: RenderOptions) -> list[dict]:
    """The objects of ``g.replicas`` instances of ``g.nodes`` pods each (an instance over one node).

    Per instance ``<name>-<i>``: a headless Service (``publishNotReadyAddresses``: the rendezvous
    happens before any pod is ready), a leader StatefulSet of one pod (node rank 0: torchrun's
    static rendezvous at ``<leader>-0.<service>:29500``; global rank 0 is the bus-facing
    ``streamwise worker`` with the health endpoint and probes) and a follower StatefulSet of
    ``nodes - 1`` pods whose ordinals start at 1, so each pod's index label
    (``apps.kubernetes.io/pod-index``, Kubernetes >= 1.28) is its ``--node_rank``. Followers run
    no health endpoint (ranks > 0 never touch the bus): they have no HTTP probes; when the leader
    goes, torchrun ends their ranks and the StatefulSet restarts them into the next rendezvous.
    Both StatefulSets start their pods in parallel."""
    _, _, creds = _creds_volume(f"worker-{g.model}")
    own = ["--creds", creds, "--health-port", str(opts.health_port)]
    per_pod = g.gpus // g.nodes
    grace = PRESTOP_S + STOP_GRACE_S + HAND_BACK_S
    out = []
    for i in range(g.replicas):
        base = _dns(f"{g.name}-{i}")[:40].rstrip("-")
        leader, followers, service = f"{base}-leader", f"{base}-node", base
        instance_labels = {"streamwise/instance": base}
        addr = f"{leader}-0.{service}.{opts.namespace}.svc.cluster.local"
        out.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": service, "labels": {**_labels("worker", base), **instance_labels}},
                    "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                             "selector": {"app.kubernetes.io/name": leader},
                             "ports": [{"name": "rdzv", "port": RDZV_PORT, "targetPort": RDZV_PORT}]}})
        for name, replicas, rank, probes in ((leader, 1, "0", True), (followers, g.nodes - 1, "$(POD_INDEX)", False)):
            command = launch_command(g.stage, g.model, g.gpus, opts.nats_url, hardware=g.hardware,
                                     extra=[*g.extra, *own], nnodes=g.nodes, node_rank=rank, master_addr=addr)
            container, pod = _worker_pod(g, plan, opts, command, gpus_per_pod=per_pod, probes=probes)
            container["env"].append({"name": "POD_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}})
            container["ports"] = [*container.get("ports", []), {"name": "rdzv", "containerPort": RDZV_PORT}]
            container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}}
            labels = {**_labels("worker", name), **instance_labels}
            spec: dict[str, Any] = {
                "serviceName": service, "replicas": replicas, "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {"metadata": {"labels": labels},
                             "spec": {"terminationGracePeriodSeconds": grace,
                                      "securityContext": {"fsGroup": CREDS_GROUP}, "containers": [container], **pod}}}
            if name == followers:
                spec["ordinals"] = {"start": 1}   # pod index = node rank 1 .. nodes-1
            out.append({"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "metadata": {"name": name, "labels": labels,
                                     "annotations": {"streamwise/pool": format_pools([g.pool])}},
                        "spec": spec})
    return out


def _scaled_object(g: WorkerGroup, opts: RenderOptions) -> dict:
    """A KEDA ScaledObject for ``g``'s Deployment: replicas = the schedulers' instances needed for
    the pool (:data:`streamwise.service.demand.NEEDED_METRIC`, summed over schedulers), between the
    plan's replicas (0 for an optional pool) and ``max_scale`` times them."""
    p = g.pool
    selector = ",".join(f'{k}="{v}"' for k, v in p.labels().items())   # the labels the schedulers export
    low = 0 if g.optional else g.replicas
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": g.name},
            "spec": {"scaleTargetRef": {"name": g.name}, "minReplicaCount": low,
                     "maxReplicaCount": max(low, max(g.replicas, 1) * opts.max_scale),
                     "pollingInterval": 15, "cooldownPeriod": 300,
                     "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                         "scaleDown": {"stabilizationWindowSeconds": 300}}}},
                     "triggers": [{"type": "prometheus", "metricType": "AverageValue", "metadata": {
                         "serverAddress": opts.prometheus_url,
                         "query": f"sum({NEEDED_METRIC}{{{selector}}}) or vector(0)",
                         "threshold": "1", "activationThreshold": "0"}}]}}


def nats_values(opts: RenderOptions | None = None) -> dict[str, Any]:
    """Values for the official NATS Helm chart (``nats/nats`` 1.x): a 3-node cluster with JetStream
    on file storage (a PVC per node) and an 8 MB max payload (``deploy/nats.conf``); with
    ``opts.auth_dir``, ``config.merge`` also carries the auth directory's operator, system
    account, MEMORY resolver and preloaded account JWTs, the settings its ``nats.conf`` was
    written from (:func:`streamwise.bus.auth.helm_merge`), so the chart's servers enforce the
    same roles.

    Raises:
        PlanError: an auth directory without ``server.json`` (one line).
    """
    merge: dict[str, Any] = {"max_payload": "<< 8MB >>"}
    if opts is not None and opts.auth_dir:
        from ..bus.auth import AuthError, helm_merge, server_settings

        try:
            merge.update(helm_merge(server_settings(opts.auth_dir)))
        except AuthError as exc:
            raise PlanError(str(exc)) from None
    return {"config": {"cluster": {"enabled": True, "replicas": 3},
                       "jetstream": {"enabled": True,
                                     "fileStore": {"enabled": True, "dir": "/data",
                                                   "pvc": {"enabled": True, "size": "20Gi"}}},
                       "merge": merge}}


def secrets(groups: list[WorkerGroup], opts: RenderOptions) -> list[dict[str, Any]]:
    """The Secrets every rendered pod mounts, from ``opts.auth_dir``: ``admin`` (the layout Job),
    ``scheduler``, ``gateway`` (the credentials of the gateway's tenant, ``tenant-<t>.creds``) and
    ``worker-<model>`` for every model of the plan (key ``<role>.creds``; :func:`secret_name`).

    Raises:
        PlanError: the directory lacks a user the plan needs (a model's worker, the gateway's tenant).
    """
    from ..bus.auth import AuthError, load_auth_dir

    try:
        auth = load_auth_dir(opts.auth_dir)
    except AuthError as exc:
        raise PlanError(str(exc)) from None
    tenant = opts.tenant_list()[0]
    wanted = {"admin": auth.creds("admin"), "scheduler": auth.creds("scheduler")}
    if tenant not in auth.tenants:
        raise PlanError(f"auth directory {auth.path} has no tenant {tenant!r} for the gateway (tenants: "
                        f"{', '.join(auth.tenants)}); add it with streamwise auth init {auth.path} --tenants {tenant}")
    wanted["gateway"] = auth.creds("tenant", tenant)
    for g in groups:
        if g.model not in auth.models:
            raise PlanError(f"auth directory {auth.path} has no worker-{g.model} user for {g.name}: run streamwise "
                            f"auth init {auth.path} --tenants {tenant} --models {g.model}")
        wanted[f"worker-{g.model}"] = auth.creds("worker", model=g.model)
    out = []
    for role, path in wanted.items():
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise PlanError(f"cannot read {path}: {exc.strerror}") from None
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": secret_name(role), "labels": _labels("credentials", secret_name(role))},
                    "stringData": {f"{role}.creds": text}})
    return out


def render(plan: dict[str, Any], opts: RenderOptions | None = None) -> dict[str, list[dict[str, Any]]]:
    """The manifests of ``plan``, by file name (see the module docstring); ``nats-values.yaml`` is
    the Helm chart's values, not a manifest.

    Raises:
        PlanError: from :func:`worker_groups`.
    """
    opts = opts or RenderOptions()
    groups = worker_groups(plan, opts)
    single = [g for g in groups if g.nodes == 1]
    multi = [g for g in groups if g.nodes > 1]
    workers = [_worker(g, plan, opts) for g in single]
    multinode = [obj for g in multi for obj in _multinode(g, plan, opts)]
    scheduler = _scheduler(groups, opts)
    gateway = _gateway(opts)
    files = {
        "namespace.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": opts.namespace}}],
        "layout-job.yaml": [_layout_job(opts)],
        "scheduler.yaml": [scheduler],
        "gateway.yaml": gateway,
        "workers.yaml": workers,
        "disruption-budgets.yaml": [_pdb(d["metadata"]["name"]) for d in (scheduler, gateway[0], *workers)]
                                   + [_instance_pdb(d["metadata"]["name"]) for d in multinode if d["kind"] == "Service"],
        # a multi-node pool is not autoscaled: scaling a StatefulSet would change an instance's node count
        "autoscaling.yaml": [_scaled_object(g, opts) for g in single],
    }
    if multinode:
        files["multinode-workers.yaml"] = multinode
    if opts.auth_dir:   # the credentials, mode 0600 (write()); keep this file out of version control
        files["secrets.yaml"] = secrets(groups, opts)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "namespace": opts.namespace, "resources": list(files),
                     "labels": [{"pairs": {"app.kubernetes.io/part-of": "streamwise"}}]}
    return {**files, "kustomization.yaml": [kustomization], "nats-values.yaml": [nats_values(opts)]}


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors or aliases for objects shared between manifests."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write(files: dict[str, list[dict[str, Any]]], out_dir: str | Path, *, source: str = "") -> list[Path]:
    """Write :func:`render`'s files into ``out_dir`` (created); returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head = f"# Rendered by `streamwise deploy render`{' from ' + source if source else ''}; do not edit by hand.\n"
    paths = []
    for name, docs in files.items():
        path = out / name
        text = head + yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False)
        if name == "secrets.yaml":   # credentials: readable by the owner only, from the start
            import os

            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path, 0o600)
        else:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
