"""The GPU chain of a talking-head clip, when the pool provisions it (issue 10 item 1).

A pool with FramePack instances (stage ``sketch``, model ``hunyuanframepack``) renders every clip
as the paper's chain (arXiv 2603.05800; the DES's per-clip DAG, :mod:`streamwise.sim.des`)::

    portrait + speech ─► sketch:<p>:<c> (FramePack) ─► [vae:<p>:<c> (its VAE, when disaggregated)]
        ─► clip:<p>:<c> (talking head at a quality rung) ─► [up:<p>:<c> (Real-ESRGAN x2)] ─► seg:<k>

The VAE node is there when the pool has FramePack VAE instances (stage ``vae``); the upscale
node when it has upscaler instances (stage ``upscale``); it runs only after a clip at a rung
marked ``upscale`` and is passed through otherwise. Without a FramePack instance there is no
chain: a clip is one node, as before. The chain is chosen once per request, from the instances
known when it is admitted (:func:`chain_for`), by the live scheduler and the plan-driven
simulator alike.

Deadlines: one propagation (:mod:`streamwise.core.deadlines`): the clip's last node is due when
its segment's mux must start; each node upstream at its child's deadline minus the child's
expected seconds; the chain's expected seconds are those of its fastest instance of each stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..core.dag import Dag, Node, NodeState
from ..core.deadlines import StageProfile, upstream_deadline
from ..core.estimate import chain_runtime_s
from ..core.placement import InstanceView

SKETCH, VAE, UPSCALE = "sketch", "vae", "upscale"   # the chain's stages (instances register under them)
UPSCALE_FACTOR = 2


@dataclass(frozen=True)
class GpuChain:
    """The chain a request's clips take: expected seconds of each extra node as a profile in
    seconds of clip audio (``vae`` / ``upscale`` ``None``: no such node)."""

    sketch: StageProfile
    vae: StageProfile | None = None
    upscale: StageProfile | None = None

    def upstream_s(self, duration_s: float) -> float:
        """Expected seconds the chain adds to a clip of ``duration_s`` seconds (every extra node)."""
        return sum(p.runtime_s(duration_s) for p in (self.sketch, self.vae, self.upscale) if p is not None)


def _fastest(views: list[InstanceView], stage: str) -> StageProfile | None:
    """The expected seconds of ``stage`` on its fastest profiled instance, as ``base + per_unit *
    audio seconds`` fitted through clips of 1 s and 3 s; ``None`` when no instance serves it."""
    best = None
    for v in views:
        if v.stage != stage or not v.accepting:
            continue
        try:
            one, three = (chain_runtime_s(v.model, v.hardware, v.gpus, d, decode=False) for d in (1.0, 3.0))
        except KeyError:
            continue
        if best is None or three < best[1]:
            best = (one, three)
    if best is None:
        return None
    per = (best[1] - best[0]) / 2.0
    return StageProfile(max(0.0, best[0] - per), per, "audio_s")


def chain_for(views: list[InstanceView]) -> GpuChain | None:
    """The chain the pool ``views`` (:meth:`InstanceState.views`) provisions: ``None`` without a
    profiled FramePack (``sketch``) instance."""
    sketch = _fastest(views, SKETCH)
    if sketch is None:
        return None
    return GpuChain(sketch, _fastest(views, VAE), _fastest(views, UPSCALE))


def ids(tail: str) -> tuple[str, str, str]:
    """``(sketch, vae, upscale)`` node ids of clip ``clip:<tail>``."""
    return f"sketch:{tail}", f"vae:{tail}", f"up:{tail}"


def add_before(dag: Dag, chain: GpuChain, tail: str, deps: tuple[str, ...], inputs: dict[str, Any],
               duration_s: float, key) -> tuple[str, ...]:
    """Add clip ``tail``'s sketch (and VAE) nodes on ``deps`` (portrait, speech); returns the
    talking-head clip's dependencies. ``inputs``: the clip's; ``key(node, parts)``: content key."""
    sketch_id, vae_id, _ = ids(tail)
    content = sorted((k, v) for k, v in inputs.items() if k != "audio")
    sketch = dag.add(Node(sketch_id, SKETCH, deps=deps, runtime_s=chain.sketch.runtime_s(duration_s),
                          inputs={**inputs, "decode": chain.vae is None}, duration_s=duration_s))
    sketch.cache_key = key(sketch, content)
    if chain.vae is None:
        return deps + (sketch_id,)
    vae = dag.add(Node(vae_id, VAE, deps=(sketch_id,), runtime_s=chain.vae.runtime_s(duration_s),
                       inputs={"fps": inputs["fps"]}, duration_s=duration_s))
    vae.cache_key = key(vae, [])
    return deps + (vae_id,)


def add_after(dag: Dag, chain: GpuChain, tail: str, clip: Node, key) -> None:
    """Add clip ``tail``'s upscale node after the talking head ``clip``, when the chain has one."""
    if chain.upscale is None:
        return
    up = dag.add(Node(ids(tail)[2], UPSCALE, deps=(clip.node_id,), runtime_s=chain.upscale.runtime_s(clip.duration_s),
                      inputs={"factor": UPSCALE_FACTOR, "fps": clip.inputs["fps"]}, duration_s=clip.duration_s))
    up.cache_key = key(up, [])


def shown(dag: Dag, clip_id: str) -> str:
    """The node whose clip a segment shows: the upscale node after ``clip_id`` when there is one."""
    up = ids(clip_id.split(":", 1)[1])[2]
    return up if up in dag else clip_id


def talking_head(node_id: str) -> str:
    """The talking-head clip behind a segment's dependency (itself, or the clip an ``up:`` node upscales)."""
    return "clip:" + node_id.split(":", 1)[1] if node_id.startswith("up:") else node_id


def on_clip(dag: Dag, clip: Node, upscaled: bool) -> None:
    """The talking head ``clip`` is done: an upscale node after it runs only when the clip's rung is
    marked ``upscale`` (``upscaled``); otherwise it is passed through at once (done, the clip's
    outputs with ``skipped``), so its segment waits for nothing more."""
    up = dag.nodes.get(ids(clip.node_id.split(":", 1)[1])[2])
    if up is None or upscaled or up.state is not NodeState.PENDING:
        return
    up.outputs = {**clip.outputs, "skipped": True}
    up.state = NodeState.DONE


def all_ids(tail: str) -> Iterable[str]:
    """Every node id of clip ``tail``'s chain, the talking head included (for skipping a steered-away line)."""
    return (f"clip:{tail}", *ids(tail))


def set_deadlines(dag: Dag, chain: GpuChain, tail: str, due: float) -> None:
    """Clip ``tail``'s chain, last node due at ``due`` (s): upscale, talking head, VAE, sketch, each
    at its child's deadline minus the child's expected seconds (:func:`upstream_deadline`)."""
    sketch_id, vae_id, up_id = ids(tail)
    clip = dag[f"clip:{tail}"]
    if up_id in dag:
        dag[up_id].deadline = due
        due = upstream_deadline(due, dag[up_id].runtime_s)
    clip.deadline = due
    due = upstream_deadline(due, clip.runtime_s)
    if vae_id in dag:
        dag[vae_id].deadline = due
        due = upstream_deadline(due, dag[vae_id].runtime_s)
    dag[sketch_id].deadline = due


def task_inputs(dag: Dag, node: Node, width: int, height: int) -> dict[str, Any]:
    """A chain node's task inputs (a sketch's are the clip's, with its portrait, set by the plan):
    the VAE gets the sketch's latents; the upscaler the talking head's clip and the stream's size."""
    inputs = dict(node.inputs)
    if node.stage == VAE:
        sketch = dag[node.deps[0]].outputs
        inputs.update(latents=sketch.get("latents"), frames=int(sketch.get("frames") or 0))
    elif node.stage == UPSCALE:
        clip = dag[node.deps[0]].outputs
        inputs.update(clip=clip["clip"], frames=int(clip.get("frames") or 0), width=width, height=height)
    return inputs


def sketch_video(dag: Dag, clip: Node) -> str | None:
    """The motion video the talking head ``clip`` follows: its sketch's (or the VAE's) ``clip``, if any."""
    for dep in clip.deps:
        if dep.startswith(("sketch:", "vae:")):
            return dag[dep].outputs.get("clip")
    return None
