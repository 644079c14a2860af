"""Cluster descriptions: GPU types with prices and power, whole servers, model instances.

A cluster is either a GPU budget, written as a SPEC such as ``16xA100`` or
``256xA100+64xH200`` (whole 8-GPU servers; the allocator of the policy decides the model
instances on it, as in the StreamWise paper), or a YAML file in ``configs/clusters/`` that
may list its instances explicitly::

    name: cheapest-a100
    pricing: spot                 # spot | reserved
    gpus: {a100: 16}              # GPUs per type (multiples of the server size, 8)
    instances:                    # optional; model, GPU type, GPUs per instance, replicas
      - {model: fantasytalking, gpu: a100, gpus: 1, replicas: 9}

Prices ($/GPU-hour, spot / reserved) come from ``configs/hardware.yaml`` (the paper's:
A100 1.07 / 3.40, H100 4.03 / 5.39, H200 4.22 / 5.64, GB200 10.76 / 14.42); power (watts per
GPU, idle and busy by model) from ``configs/clusters/gpus.yaml``. A provisioner plan
(:func:`write_plan`) is a cluster file with its instances listed, plus the ``streamwise
worker`` command of every instance group for the deployment tooling.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .workload import FT, HF, MODELS

SERVER_GPUS = 8


class ClusterError(ValueError):
    """A malformed cluster SPEC or file; the message names what is wrong."""


@dataclass(frozen=True)
class GpuType:
    """One GPU type: ``spot`` / ``reserved`` price in $/GPU-hour, ``idle_w`` and ``busy_w``
    (by model) in watts per GPU."""

    name: str
    spot: float
    reserved: float
    idle_w: float
    busy_w: dict[str, float] = field(default_factory=dict)

    def price(self, pricing: str) -> float:
        """$/GPU-hour under ``pricing`` (``spot`` or ``reserved``)."""
        if pricing not in ("spot", "reserved"):
            raise ClusterError(f"pricing must be 'spot' or 'reserved', got {pricing!r}")
        return self.spot if pricing == "spot" else self.reserved

    def power_w(self, model: str) -> float:
        """Watts per GPU while running ``model`` (idle watts for an unknown model)."""
        return self.busy_w.get(model, self.idle_w)


@lru_cache(maxsize=1)
def catalog() -> dict[str, GpuType]:
    """GPU types by lower-case name, prices from ``configs/hardware.yaml``, power from
    ``configs/clusters/gpus.yaml``."""
    cfg = resources.files("streamwise.configs")
    prices = yaml.safe_load(cfg.joinpath("hardware.yaml").read_text())["kinds"]
    power = yaml.safe_load(cfg.joinpath("clusters", "gpus.yaml").read_text())["gpus"]
    return {name: GpuType(name, float(prices[name]["spot"]), float(prices[name]["reserved"]),
                          float(p["idle_w"]), {str(k): float(v) for k, v in (p.get("busy_w") or {}).items()})
            for name, p in power.items()}


@dataclass(frozen=True, order=True)
class Instance:
    """``replicas`` identical instances of ``model`` on ``gpus`` GPUs of type ``gpu`` each."""

    model: str
    gpu: str
    gpus: int
    replicas: int = 1

    @property
    def total_gpus(self) -> int:
        """GPUs of all replicas."""
        return self.gpus * self.replicas


@dataclass(frozen=True)
class Cluster:
    """GPUs per type (``budget``; whole servers) and, once allocated, the model instances.
    ``pricing``: ``spot`` or ``reserved``."""

    budget: dict[str, int]
    instances: tuple[Instance, ...] = ()
    pricing: str = "spot"
    name: str = ""

    def used(self) -> dict[str, int]:
        """GPUs taken by instances, per GPU type."""
        out: dict[str, int] = {}
        for i in self.instances:
            out[i.gpu] = out.get(i.gpu, 0) + i.total_gpus
        return out

    def servers(self) -> dict[str, int]:
        """8-GPU servers paid for per type: the used GPUs rounded up to whole servers (the
        budget when no instances are listed), as the paper's ``calc_cost(round_up_to_server)``."""
        used = self.used() if self.instances else self.budget
        return {g: math.ceil(n / SERVER_GPUS) for g, n in used.items() if n > 0}

    def price_per_hour(self) -> float:
        """$ per hour of the servers paid for."""
        cat = catalog()
        return sum(n * SERVER_GPUS * cat[g].price(self.pricing) for g, n in self.servers().items())

    def spec(self) -> str:
        """The GPU-budget SPEC, e.g. ``16xA100+64xH200`` (servers paid for when allocated)."""
        gpus = {g: n * SERVER_GPUS for g, n in self.servers().items()} if self.instances else self.budget
        return spec_of(gpus)

    def by_model(self) -> dict[str, list[Instance]]:
        """Instances grouped by model."""
        out: dict[str, list[Instance]] = {}
        for i in self.instances:
            out.setdefault(i.model, []).append(i)
        return out


def spec_of(gpus: dict[str, int]) -> str:
    """``{"a100": 16, "h200": 64}`` -> ``"16xA100+64xH200"`` (types in catalog order)."""
    order = list(catalog())
    return "+".join(f"{n}x{g.upper()}" for g, n in sorted(gpus.items(), key=lambda kv: order.index(kv[0])) if n > 0)


def parse_spec(spec: str) -> dict[str, int]:
    """``"256xA100+64xH200"`` -> ``{"a100": 256, "h200": 64}``.

    Raises:
        ClusterError: not ``<N>x<GPU>`` terms joined by ``+``, an unknown GPU type, a count that
            is not a positive multiple of the server size (8), or more than two GPU types.
    """
    out: dict[str, int] = {}
    for term in spec.replace(" ", "").split("+"):
        m = re.fullmatch(r"(\d+)[xX]([A-Za-z0-9]+)", term)
        if not m:
            raise ClusterError(f"cluster SPEC {spec!r}: {term!r} is not <GPUs>x<TYPE>, e.g. 16xA100")
        n, g = int(m.group(1)), m.group(2).lower()
        if g not in catalog():
            raise ClusterError(f"cluster SPEC {spec!r}: unknown GPU type {g!r}; known: {', '.join(catalog())}")
        if n <= 0 or n % SERVER_GPUS:
            raise ClusterError(f"cluster SPEC {spec!r}: {n} {g.upper()} is not a whole number of {SERVER_GPUS}-GPU servers")
        out[g] = out.get(g, 0) + n
    if len(out) > 2:
        raise ClusterError(f"cluster SPEC {spec!r}: at most two GPU types")
    return out


def _instances(where: str, items: Any) -> tuple[Instance, ...]:
    if not items:
        return ()
    if not isinstance(items, list):
        raise ClusterError(f"{where}: must be a list of {{model, gpu, gpus, replicas}}")
    out = []
    for k, it in enumerate(items):
        if not isinstance(it, dict):
            raise ClusterError(f"{where}[{k}]: must be a mapping")
        model, gpu = str(it.get("model")), str(it.get("gpu", "")).lower()
        if model not in MODELS:
            raise ClusterError(f"{where}[{k}].model: unknown model {model!r}; known: {', '.join(MODELS)}")
        if gpu not in catalog():
            raise ClusterError(f"{where}[{k}].gpu: unknown GPU type {gpu!r}")
        gpus, reps = it.get("gpus", 1), it.get("replicas", 1)
        if not (isinstance(gpus, int) and gpus > 0 and isinstance(reps, int) and reps > 0):
            raise ClusterError(f"{where}[{k}]: gpus and replicas must be positive integers")
        out.append(Instance(model, gpu, gpus, reps))
    return tuple(out)


def parse_cluster(data: dict[str, Any], name: str = "<cluster>") -> Cluster:
    """A :class:`Cluster` from parsed YAML (see the module docstring).

    Raises:
        ClusterError: a wrong shape, unknown names, or instances that do not fit the budget.
    """
    if not isinstance(data, dict):
        raise ClusterError(f"{name}: must be a mapping")
    pricing = data.get("pricing", "spot")
    if pricing not in ("spot", "reserved"):
        raise ClusterError(f"{name}: pricing: 'spot' or 'reserved', got {pricing!r}")
    instances = _instances(f"{name}: instances", data.get("instances"))
    budget_raw = data.get("gpus")
    if budget_raw is None:
        if not instances:
            raise ClusterError(f"{name}: needs gpus (a budget) or instances")
        used: dict[str, int] = {}
        for i in instances:
            used[i.gpu] = used.get(i.gpu, 0) + i.total_gpus
        budget = {g: math.ceil(n / SERVER_GPUS) * SERVER_GPUS for g, n in used.items()}
    else:
        if isinstance(budget_raw, str):
            budget = parse_spec(budget_raw)
        elif isinstance(budget_raw, dict):
            budget = parse_spec("+".join(f"{n}x{g}" for g, n in budget_raw.items()))
        else:
            raise ClusterError(f"{name}: gpus: a mapping type -> GPUs or a SPEC string")
    c = Cluster(budget, instances, pricing, str(data.get("name", name)))
    for g, n in c.used().items():
        if n > budget.get(g, 0):
            raise ClusterError(f"{name}: instances take {n} {g.upper()} GPUs, the cluster has {budget.get(g, 0)}")
    return c


def load_cluster(file_or_spec: str, pricing: str | None = None) -> Cluster:
    """A cluster from a YAML file path, a file name in ``configs/clusters/``, or a SPEC.
    ``pricing`` overrides the file's.

    Raises:
        ClusterError: malformed SPEC or file.
    """
    p = Path(file_or_spec)
    data = None
    if p.suffix in (".yaml", ".yml") or p.exists():
        if p.exists():
            text = p.read_text()
        else:
            try:
                text = resources.files("streamwise.configs").joinpath("clusters", p.name).read_text()
            except (FileNotFoundError, OSError):
                raise ClusterError(f"no cluster file {file_or_spec!r}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ClusterError(f"{p.name}: not valid YAML: {exc}") from None
        c = parse_cluster(data, p.name)
    else:
        c = Cluster(parse_spec(file_or_spec), (), "spot", file_or_spec)
    if pricing:
        c = Cluster(c.budget, c.instances, pricing, c.name)
    return c


#: The live worker (``streamwise worker`` stage, registry model, extra arguments) that serves each
#: simulator model. The LLM is the screenplay worker with vLLM and Gemma 3 27B (configs/models.yaml).
LIVE_WORKER: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "gemma": ("screenplay", "llm", ("--llm", "vllm", "--llm-model", "gemma-3-27b-it")),
    "flux": ("image", "flux", ()), "kokoro": ("tts", "kokoro", ()),
    HF: ("video", HF, ()), FT: ("video", FT, ()),
}
#: Simulator models with no worker of their own in the live system, and where their work runs.
INLINE_IN_LIVE: dict[str, str] = {
    "realesrgan": "the video worker runs Real-ESRGAN itself on the rungs marked upscale (configs/quality.yaml)",
    "hunyuanframepack-vae": "the FramePack video worker decodes its VAE itself (no disaggregated VAE instances)",
    "fantasytalking-vae": "the FantasyTalking video worker decodes its VAE itself (no disaggregated VAE instances)",
}
#: CPU pools a deployment adds to the plan's GPU instances: (stage, model, replicas, optional).
#: The script parser and the mux are on every request's path; the CPU rung of TTS, image and
#: video is a fallback the scheduler uses when the GPU pools fall behind, so it may scale to zero.
CPU_POOLS: tuple[tuple[str, str, int, bool], ...] = (
    ("screenplay", "script-parser", 2, False), ("mux", "pyav-fmp4", 2, False),
    ("tts", "piper", 1, True), ("image", "cpu-art", 1, True), ("video", "cpu-head", 1, True),
)


def plan_workers(cluster: Cluster) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The deployable worker groups of ``cluster`` and the instance groups left out.

    Returns ``(workers, not_deployed)``: ``workers`` has one entry per GPU instance group whose
    model has a live worker (:data:`LIVE_WORKER`) and one per CPU pool (:data:`CPU_POOLS`), each
    ``{"replicas": int, "optional": bool, "args": [...]}`` with the ``streamwise worker`` arguments
    (GPU pools are not optional: the gateway refuses a topic while no LLM instance is ready, so an
    LLM pool at zero would never see the demand that starts it); ``not_deployed`` has the
    groups whose work the live workers do themselves (:data:`INLINE_IN_LIVE`), with the reason.
    """
    workers, left = [], []
    for i in cluster.instances:
        if i.model in INLINE_IN_LIVE:
            left.append({"model": i.model, "gpu": i.gpu, "gpus": i.gpus, "replicas": i.replicas,
                         "reason": INLINE_IN_LIVE[i.model]})
            continue
        stage, model, extra = LIVE_WORKER[i.model]
        workers.append({"replicas": i.replicas, "optional": False,
                        "args": ["worker", "--stage", stage, "--model", model, "--hardware", i.gpu,
                                 "--gpus", str(i.gpus), *extra]})
    for stage, model, replicas, optional in CPU_POOLS:
        workers.append({"replicas": replicas, "optional": optional,
                        "args": ["worker", "--stage", stage, "--model", model]})
    return workers, left


def plan_dict(cluster: Cluster, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan (a cluster file with its instances, plus a ``workers`` list: one entry per
    deployable worker group with the ``streamwise worker`` arguments the deployment tooling runs
    ``replicas`` times, and ``not_deployed``: the simulated groups the live workers fold in;
    :func:`plan_workers`) as plain data."""
    workers, left = plan_workers(cluster)
    return {
        "name": cluster.name or cluster.spec(),
        "spec": cluster.spec(),
        "pricing": cluster.pricing,
        "gpus": {g: n for g, n in cluster.budget.items()},
        "instances": [{"model": i.model, "gpu": i.gpu, "gpus": i.gpus, "replicas": i.replicas}
                      for i in cluster.instances],
        "workers": workers,
        "not_deployed": left,
        "summary": summary or {},
    }


def write_plan(cluster: Cluster, path: str | Path, summary: dict[str, Any] | None = None) -> None:
    """Write :func:`plan_dict` as YAML to ``path`` (readable back by :func:`load_cluster`)."""
    Path(path).write_text("# StreamWise provisioner plan (streamwise provision); load with "
                          "`streamwise simulate --cluster FILE`\n"
                          + yaml.safe_dump(plan_dict(cluster, summary), sort_keys=False))


#: The emulated worker model (``streamwise worker --emulate --model``) of each plan model the live
#: pool emulates: the talking head, and the GPU chain (FramePack's sketch, its VAE, Real-ESRGAN x2).
EMULATED_MODEL = {FT: FT, HF: HF, "hunyuanframepack-vae": "hunyuanframepack-vae", "realesrgan": "realesrgan-x2"}


def plan_emulate_specs(path: str | Path) -> list[str]:
    """``MODEL:HARDWARE:GPUS`` specs (``streamwise up --emulate``) for every talking-head instance
    of a plan and its GPU chain (FramePack, its VAE, Real-ESRGAN; streamwise/workflow/chain.py):
    the live pool's emulated GPU workers, one per replica."""
    c = load_cluster(str(path))
    return [f"{EMULATED_MODEL[i.model]}:{i.gpu}:{i.gpus}" for i in c.instances if i.model in EMULATED_MODEL
            for _ in range(i.replicas)]
