"""Emulated GPU instances: stand-ins that take a GPU model's profiled time, on machines without GPUs.

An emulated instance of, say, FantasyTalking on 4 × H100 registers on the bus as model
``fantasytalking``, hardware ``h100``, 4 GPUs, with ``emulated: true`` in its heartbeat. For
each task it produces the CPU rung's output (so the stream stays watchable) and then waits
until the profiled runtime of the real model at the task's quality rung has passed
(reference profiles measured by the StreamWise authors, arXiv 2603.05800). It exists for
scheduler tests and benchmarks; it is never reported as the real model: its outputs carry
``"emulated": true``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ...bus.messages import Task
from ...core.estimate import (CHAIN_MODELS, FRAMEPACK_VAE, SKETCH_RUNG, book, chain_profiled, chain_runtime_s,
                              gpu_runtime_s)
from ...core.quality import Rung, load_ladders
from ..runtime.base import StageAdapter, TaskContext


class EmulatedGpuStage:
    """Wraps the CPU rung adapter of ``stage``; each task takes the profiled time of ``model``
    on ``gpus`` × ``hardware`` at the task's rung.

    Raises:
        KeyError: (from :meth:`load`) no profile for (model, hardware, gpus); lists the known ones.
    """

    def __init__(self, stage: str, model: str, hardware: str, gpus: int, inner: StageAdapter) -> None:
        self.stage = stage
        self.model = model
        self.hardware = hardware
        self.gpus = gpus
        self.inner = inner

    def load(self) -> None:
        if self.model in CHAIN_MODELS:
            if not chain_profiled(self.model, self.hardware, self.gpus):
                raise KeyError(f"no profile for {self.model} on {self.gpus} x {self.hardware}")
            self.ladder = None
            self.inner.load()
            return
        known = book().known(self.model)
        if (self.hardware, self.gpus) not in known:
            raise KeyError(f"no profile for {self.model} on {self.gpus} x {self.hardware}; profiled: {known}")
        self.ladder = load_ladders().get(self.model)
        self.inner.load()

    def expected_s(self, task: Task) -> float:
        """Profiled seconds of the real model for this task at its quality rung (the rung is
        looked up by name in the model's ladder, for its fps and upscaling)."""
        q = task.quality
        inputs = task.inputs
        duration = 0.0
        if "sample_to" in inputs:
            duration = (int(inputs["sample_to"]) - int(inputs["sample_from"])) / int(inputs["sample_rate"])
        if self.model in CHAIN_MODELS:   # the sketch: its sample range; the VAE: the sketch's frames at
            if "sample_to" not in inputs:   # FramePack's fps; the upscaler: the clip's frames at the show's fps
                fps = SKETCH_RUNG.fps if self.model == FRAMEPACK_VAE else float(inputs.get("fps") or 25.0)
                duration = int(inputs.get("frames") or 0) / fps
            return chain_runtime_s(self.model, self.hardware, self.gpus, duration,
                                   decode=bool(inputs.get("decode", True)))
        if self.ladder is not None and q.rung in {r.name for r in self.ladder.rungs}:
            rung, output = self.ladder.rungs[self.ladder.index(q.rung)], self.ladder.output
        else:
            rung, output = Rung(q.rung, q.width, q.height, q.steps, q.fps if duration else None), None
        if inputs.get("upscale_after"):   # Real-ESRGAN runs in a node of its own (the GPU chain)
            output = None
        return gpu_runtime_s(self.model, self.hardware, self.gpus, rung, duration_s=duration, upscale_to=output)

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        started = time.monotonic()
        outputs = await self.inner.run(task, ctx)
        await asyncio.sleep(max(0.0, self.expected_s(task) - (time.monotonic() - started)))
        return {**outputs, "emulated": True}


class ChainPassThrough:
    """The CPU side of an emulated GPU-chain instance (stage ``sketch``, ``vae`` or ``upscale``):
    the CPU rung has no motion model, VAE or upscaler, so it renders nothing. A sketch reports
    its frames (FramePack's 30 fps) and names no video; the VAE passes the frame count on; the
    upscaler passes the talking head's clip through (the mux scales every clip to the stream's
    size). :class:`EmulatedGpuStage` around it takes the real model's profiled time."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.model = f"emulated-{stage}"

    def load(self) -> None:
        pass

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        if self.stage == "sketch":
            seconds = (int(inputs["sample_to"]) - int(inputs["sample_from"])) / int(inputs["sample_rate"])
            return {"frames": max(1, round(seconds * SKETCH_RUNG.fps))}
        if self.stage == "vae":
            return {"frames": int(inputs["frames"])}
        return {"clip": inputs["clip"], "frames": int(inputs.get("frames") or 0)}
