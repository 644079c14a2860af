"""Image stage, CPU rung: the rendered studio and one portrait per speaker.

Studio and portraits are deterministic in their inputs (title, speaker name and index),
so a speaker looks the same across the whole show and different from the others.
Images travel as PNG through the object store.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from ..bus.messages import Task
from .art import render_portrait, render_studio
from .base import TaskContext, TaskError


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def load_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3) RGB array."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class CpuArt:
    """Stage ``image`` on CPU. Task inputs: ``kind`` = ``studio`` (``title``, ``description``,
    ``width``, ``height`` in pixels) or ``portrait`` (``studio`` object-store name, ``name``,
    ``speaker_index``). Outputs: ``image`` (object-store name of a PNG) and, for portraits,
    ``layout`` (:class:`~streamwise.stages.art.FaceLayout` as a map)."""

    stage = "image"
    model = "cpu-art"

    def load(self) -> None:
        pass

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        kind = inputs.get("kind")
        if kind == "studio":
            image = await ctx.in_thread(render_studio, int(inputs["width"]), int(inputs["height"]),
                                        title=inputs.get("title") or "StreamWise",
                                        description=inputs.get("description"))
            return {"image": await ctx.bus.put_blob(ctx.blob_name(task, "studio.png"), png_bytes(image))}
        if kind == "portrait":
            studio = Image.open(io.BytesIO(await ctx.bus.get_blob(inputs["studio"]))).convert("RGB")
            image, layout = await ctx.in_thread(render_portrait, studio, name=inputs["name"],
                                                speaker_index=int(inputs["speaker_index"]))
            name = await ctx.bus.put_blob(ctx.blob_name(task, "portrait.png"), png_bytes(image))
            return {"image": name, "layout": layout.to_dict()}
        raise TaskError(f"unknown image kind {kind!r}", retryable=False)
