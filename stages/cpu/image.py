"""Image stage, CPU rung: the rendered studio and one portrait per speaker.

Studio and portraits are deterministic in their inputs (title, speaker name and index),
so a speaker looks the same across the whole show and different from the others.
Images travel as PNG through the object store. A portrait also comes as two layers (the
speaker alone, and the scene without the speaker) so the talking-head stage can move the head.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
from PIL import Image

from ...bus.messages import Task
from ..runtime.base import TaskContext, TaskError
from ..art.portrait import render_person_layers
from ..art.studio import render_studio


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def load_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3) RGB array."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def load_rgba(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 4) RGBA array."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


class CpuArt:
    """Stage ``image`` on CPU. Task inputs: ``kind`` = ``studio`` (``title``, ``description``,
    ``width``, ``height`` in pixels) or ``portrait`` (``studio`` object-store name, ``name``,
    ``speaker_index``, optional ``look``: the traits the screenplay states, see
    :mod:`streamwise.workflow.cast`). Outputs: ``image`` (object-store name of a PNG) and, for portraits,
    ``layout`` (:class:`~streamwise.stages.art.portrait.FaceLayout` as a map), ``person`` (RGBA PNG at
    2x the frame size: the speaker alone) and ``backdrop`` (RGBA PNG: the scene without the
    speaker, alpha = where the speaker shows), see :class:`~streamwise.stages.art.portrait.PortraitLayers`."""

    stage = "image"
    model = "cpu-art"

    def load(self) -> None:
        """Warm up: draw and encode one studio and one portrait, so the first request does not
        pay for loading the fonts and the first use of the drawing and PNG code (~0.1 s; with
        eight requests at once the studio of each waits behind the others')."""
        studio = render_studio(640, 400, title="StreamWise", description="warm-up")
        layers = render_person_layers(studio, name="Warm", speaker_index=0)
        for image in (studio, layers.image, layers.person, layers.backdrop):
            load_rgba(png_bytes(image))

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
            layers = await ctx.in_thread(render_person_layers, studio, name=inputs["name"],
                                         speaker_index=int(inputs["speaker_index"]), look=inputs.get("look"))
            pngs = await asyncio.gather(*(ctx.in_thread(png_bytes, im)        # zlib runs without the GIL
                                          for im in (layers.image, layers.person, layers.backdrop)))
            out: dict[str, Any] = {"layout": layers.layout.to_dict()}
            for key, suffix, data in zip(("image", "person", "backdrop"), ("portrait", "person", "backdrop"), pngs):
                out[key] = await ctx.bus.put_blob(ctx.blob_name(task, f"{suffix}.png"), data)
            return out
        raise TaskError(f"unknown image kind {kind!r}", retryable=False)
