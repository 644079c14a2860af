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
from ...core.estimate import book, gpu_runtime_s
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
        if self.ladder is not None and q.rung in {r.name for r in self.ladder.rungs}:
            rung, output = self.ladder.rungs[self.ladder.index(q.rung)], self.ladder.output
        else:
            rung, output = Rung(q.rung, q.width, q.height, q.steps, q.fps if duration else None), None
        return gpu_runtime_s(self.model, self.hardware, self.gpus, rung, duration_s=duration, upscale_to=output)

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        started = time.monotonic()
        outputs = await self.inner.run(task, ctx)
        await asyncio.sleep(max(0.0, self.expected_s(task) - (time.monotonic() - started)))
        return {**outputs, "emulated": True}
