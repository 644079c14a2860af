"""Talking-head stage, CPU rung: animate the speaker's portrait from the speech audio.

The mouth follows the speech energy frame by frame, the eyes blink, and the clip's words
are burned in as subtitles. Each task renders one clip (at most the model's maximum clip
length) and stores it as an intermediate H.264 clip for the mux stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bus.messages import Task
from .art import FaceLayout
from .base import ArtifactCache, TaskContext
from .head import HeadAnimator
from .image import load_png
from .media import encode_clip
from .speech import energy_envelope


def pcm_array(data: bytes) -> np.ndarray:
    """Raw little-endian int16 PCM bytes -> int16 (n,) array."""
    return np.frombuffer(data, dtype="<i2")


class CpuTalkingHead:
    """Stage ``video`` on CPU. Task inputs: ``audio`` (PCM name), ``sample_from``/``sample_to``
    (the clip's sample range), ``sample_rate`` (Hz), ``portrait`` (PNG name), ``layout``,
    ``subtitle``, ``speaker``, ``start_frame``, ``blink_seed``, ``fps``. Output: ``clip``
    (object-store name of the encoded clip) and ``frames``."""

    stage = "video"
    model = "cpu-head"

    def __init__(self) -> None:
        self._audio = ArtifactCache(16)
        self._animators = ArtifactCache(4)

    def load(self) -> None:
        """Warm up the encoder and the envelope code so the first clip runs at full speed."""
        encode_clip(np.zeros((2, 64, 64, 3), np.uint8), 25.0)
        energy_envelope(np.zeros(1764, np.int16), 25.0)

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        layout = FaceLayout.from_dict(inputs["layout"])
        animator = await self._animators.get(ctx, inputs["portrait"], lambda d: HeadAnimator(load_png(d), layout))
        audio = await self._audio.get(ctx, inputs["audio"], pcm_array)
        fps = float(inputs["fps"])
        clip_audio = audio[int(inputs["sample_from"]):int(inputs["sample_to"])]
        frames = await ctx.in_thread(self._render, animator, clip_audio, inputs, fps)
        name = await ctx.bus.put_blob(ctx.blob_name(task, "clip.mp4"), frames)
        return {"clip": name, "frames": round(len(clip_audio) * fps / int(inputs["sample_rate"]))}

    @staticmethod
    def _render(animator: HeadAnimator, audio: np.ndarray, inputs: dict, fps: float) -> bytes:
        envelope = energy_envelope(audio, fps, sample_rate=int(inputs["sample_rate"]))
        frames = animator.render(envelope, subtitle=inputs.get("subtitle", ""), speaker=inputs.get("speaker", ""),
                                 blink_seed=int(inputs.get("blink_seed", 0)),
                                 start_frame=int(inputs.get("start_frame", 0)), fps=fps)
        return encode_clip(frames, fps)
