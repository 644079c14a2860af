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
(:class:`RenderOptions`). Reading the plan and checking its worker groups is :mod:`.plan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..service.demand import HORIZON_ENV, NEEDED_METRIC, POOLS_ENV, format_pools
from ..stages.gpu.parallel import RDZV_PORT, launch_command, launch_env
from .plan import PlanError, RenderOptions, WorkerGroup, _dns, load_plan, worker_groups

# the plan's names (.plan) were defined here before the split, and are imported from here
__all__ = ["PlanError", "RenderOptions", "WorkerGroup", "load_plan", "worker_groups",
           "STOP_GRACE_S", "PRESTOP_S", "HAND_BACK_S", "CREDS_DIR", "CREDS_GROUP", "ROLE_OF",
           "secret_name", "nats_values", "secrets", "render", "write"]

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
