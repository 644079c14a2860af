"""Kubernetes packaging of a provisioner plan (issue 14): ``streamwise deploy render`` and
``streamwise deploy validate``.

- :mod:`.plan`: the plan file read and its worker groups checked against the stage registry;
- :mod:`.render`: the plan (``streamwise provision --out PLAN.yaml``) as plain-YAML manifests (a
  Kustomize base) plus values for the official NATS Helm chart;
- :mod:`.validate`: offline validation of rendered manifests against the Kubernetes JSON schemas
  (``kubernetes-validate``) and KEDA's ScaledObject schema (``cloudcoil-models-keda``).
"""

from .render import PlanError, RenderOptions, WorkerGroup, load_plan, render, worker_groups, write

__all__ = ["PlanError", "RenderOptions", "WorkerGroup", "load_plan", "render", "worker_groups", "write"]
