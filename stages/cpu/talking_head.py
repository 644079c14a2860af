"""Talking-head stage, CPU rung: animate the speaker's portrait from the speech audio.

The mouth follows the speech sounds (the visemes of the phonemes the speech stage reports, see
:mod:`streamwise.stages.art.visemes`), opened by the speech energy frame by frame; without
visemes (a TTS that gives no phonemes) the energy alone. The eyes blink, the head sways and nods
with the speech (when the portrait comes with its layers), and the clip's words are burned in
as subtitles. Each task renders one clip (at most the model's maximum clip length) and stores
it as an intermediate H.264 clip for the mux stage: near-lossless for the mux to decode and
encode again, or, on a rung that draws few frames a second, every frame an IDR in the stream's
own settings, which the mux passes through as it is.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ...bus.messages import Task
from ..runtime.base import ArtifactCache, TaskContext
from ..art.head import HeadAnimator
from .image import load_png, load_rgba
from .media import encode_clip, scale_frames
from .passthrough import encode_stream_clip
from ..art.motion import nod_span
from ..art.portrait import FaceLayout
from ..art.visemes import frame_visemes
from .speech import energy_envelope


# portraits kept animated: one per speaker of eight 3-speaker shows in flight (a layered animator
# holds ~13 MB at 640x400, its sprites at four sub-pixel phases; building one takes ~70 ms of CPU)
MAX_ANIMATORS = 24


def pcm_array(data: bytes) -> np.ndarray:
    """Raw little-endian int16 PCM bytes -> int16 (n,) array."""
    return np.frombuffer(data, dtype="<i2")


class CpuTalkingHead:
    """Stage ``video`` on CPU. Task inputs: ``audio`` (PCM name of the whole piece),
    ``sample_from``/``sample_to`` (the clip's sample range), ``sample_rate`` (Hz), ``portrait``
    (PNG name), ``layout``, optional ``person`` and ``backdrop`` (the portrait's layers, PNG
    names: with both the head moves), ``subtitle``, ``speaker``, ``start_frame``, ``blink_seed``,
    ``fps``, optional ``visemes`` (the piece's ``[[start_s, end_s, viseme], ...]`` from the speech stage). Output: ``clip`` (object-store name of the encoded clip) and ``frames``.
    The clip has the size of the task's quality rung (``task.quality.width`` x ``height``):
    the stream's size on the static rung; smaller when an emulated GPU rung wraps this
    renderer (the mux brings every clip to the stream's size)."""

    stage = "video"
    model = "cpu-head"

    def __init__(self) -> None:
        self._audio = ArtifactCache(16)
        self._images = ArtifactCache(12)
        self._animators: OrderedDict[tuple[str, ...], HeadAnimator] = OrderedDict()
        # one per speaker of the shows in flight: with 4, eight concurrent 3-speaker shows rebuilt
        # an animator for nearly every clip (most of the video stage's CPU under load)
        self._max_animators = MAX_ANIMATORS

    def load(self) -> None:
        """Warm up the encoder, the envelope code and the head's drawing (fonts, sprites) so the
        first clip runs at full speed."""
        from ..art.portrait import render_person_layers
        from ..art.studio import render_studio

        encode_clip(np.zeros((2, 64, 64, 3), np.uint8), 25.0)
        energy_envelope(np.zeros(1764, np.int16), 25.0)
        layers = render_person_layers(render_studio(640, 400, title="StreamWise"), name="Warm", speaker_index=0)
        animator = HeadAnimator(np.asarray(layers.image), layers.layout, person=np.asarray(layers.person),
                                backdrop=np.asarray(layers.backdrop))
        animator.render(np.linspace(0, 1, 4, dtype=np.float32), subtitle="warm up", speaker="Warm", fps=25.0,
                        end_frame=8)

    async def _animator(self, ctx: TaskContext, inputs: dict) -> HeadAnimator:
        """The (cached) animator of this portrait, with its layers when the task names both."""
        layered = bool(inputs.get("person")) and bool(inputs.get("backdrop"))
        key = (inputs["portrait"], inputs["person"], inputs["backdrop"]) if layered else (inputs["portrait"],)
        if key in self._animators:
            self._animators.move_to_end(key)
            return self._animators[key]
        layout = FaceLayout.from_dict(inputs["layout"])
        portrait = await self._images.get(ctx, inputs["portrait"], load_png)
        if layered:
            person = await self._images.get(ctx, inputs["person"], load_rgba)
            backdrop = await self._images.get(ctx, inputs["backdrop"], load_rgba)
            animator = await ctx.in_thread(HeadAnimator, portrait, layout, person=person, backdrop=backdrop)
        else:
            animator = await ctx.in_thread(HeadAnimator, portrait, layout)
        self._animators[key] = animator
        while len(self._animators) > self._max_animators:
            self._animators.popitem(last=False)
        return animator

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        animator = await self._animator(ctx, inputs)
        audio = await self._audio.get(ctx, inputs["audio"], pcm_array)
        fps = float(inputs["fps"])
        hold = max(1, int(inputs.get("hold", 1)))
        frames = await ctx.in_thread(self._render, animator, audio, inputs, fps,
                                     (task.quality.width, task.quality.height), hold)
        name = await ctx.bus.put_blob(ctx.blob_name(task, "clip.mp4"), frames)
        clip_samples = len(audio[int(inputs["sample_from"]):int(inputs["sample_to"])])
        out = {"clip": name, "frames": round(clip_samples * fps / int(inputs["sample_rate"]))}
        if hold > 1:
            out["hold"] = hold
        return out

    @staticmethod
    def _render(animator: HeadAnimator, audio: np.ndarray, inputs: dict, fps: float,
                size: tuple[int, int] | None = None, hold: int = 1) -> bytes:
        """The clip's frames, encoded. With ``hold > 1`` (a cheaper CPU rung) only every
        ``hold``-th frame is drawn (at ``fps / hold``, the mouth at its mean opening over the
        frames it stands for), each encoded as an IDR with the stream's settings
        (:func:`~.passthrough.encode_stream_clip`), and the mux shows each for ``hold`` frames."""
        rate = int(inputs["sample_rate"])
        a, b = int(inputs["sample_from"]), int(inputs["sample_to"])
        draw_fps = fps / hold
        envelope = energy_envelope(audio[a:b], fps, sample_rate=rate)
        if hold > 1:
            pad = (-len(envelope)) % hold
            envelope = np.pad(envelope, (0, pad), mode="edge").reshape(-1, hold).mean(axis=1)
        if inputs.get("visemes"):   # the phonemes' mouth shapes over the clip's frames (from the piece's start)
            extra_v = {"visemes": frame_visemes(inputs["visemes"], a / rate, len(envelope), draw_fps)}
        else:
            extra_v = {}
        extra: dict[str, Any] = {}
        if animator.moving:
            extra["end_frame"] = round(len(audio) * draw_fps / rate)   # the piece's end: the head comes to rest there
            extra["context"] = _context(audio, a, b, fps, rate) if hold == 1 else None
        frames = animator.render(envelope, subtitle=inputs.get("subtitle", ""), speaker=inputs.get("speaker", ""),
                                 blink_seed=int(inputs.get("blink_seed", 0)),
                                 start_frame=int(inputs.get("start_frame", 0)) // hold, fps=draw_fps, **extra,
                                 **extra_v)
        if size and all(size):
            frames = scale_frames(frames, *size)
        if hold > 1 and frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0:
            # few frames a second: each an IDR in the stream's own settings, at its stream time, so the mux
            # passes them into the segments as they are (no decode, no second encode: one generation of loss)
            return encode_stream_clip(frames, fps, hold)
        return encode_clip(frames, fps)   # the frame rate only stamps the drawn frames: the mux re-times them


def _context(audio: np.ndarray, a: int, b: int, fps: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The speech envelope of the frames just before and just after the clip ``audio[a:b]`` (as many as the nod
    looks at), from the piece's audio around the clip, so the nod runs on smoothly across clip boundaries."""
    ahead, behind = nod_span(fps)
    spf = rate / fps
    n_before = min(behind, int(a / spf + 1e-9))
    n_after = min(ahead, int((len(audio) - b) / spf + 1e-9))
    lo, hi = a - round(n_before * spf), b + round(n_after * spf)
    if n_before == 0 and n_after == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    env = energy_envelope(audio[lo:hi], fps, sample_rate=rate)
    return env[:n_before], env[len(env) - n_after:] if n_after else np.zeros(0, np.float32)
