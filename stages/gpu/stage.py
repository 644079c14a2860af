"""GPU models as worker stages: drop-ins for the CPU rung's image, video and tts adapters.

Each class takes the same task inputs as its CPU counterpart (:class:`~streamwise.stages.cpu.image.CpuArt`,
:class:`~streamwise.stages.cpu.talking_head.CpuTalkingHead`, :class:`~streamwise.stages.cpu.tts.CpuSpeech`)
and returns outputs the rest of the pipeline already consumes: PNG images, H.264 clips made by
:func:`~streamwise.stages.cpu.media.encode_clip` with exactly ``round(clip samples * fps / rate)`` frames
at the stream's fps, int16 PCM at the show's audio rate (22 050 Hz; 48 000 Hz for 24/60 fps). The
task's quality rung (``task.quality``: width, height, steps) reaches the model: the size is snapped
to the model's constraints (:func:`~streamwise.core.constraints.snap_size`), a video clip is
``frames_for`` (1+4n) frames at the model's fps, then retimed to the stream's fps. Clips keep the rung's size (the mux brings every clip to the
stream's size), except that a rung marked ``upscale`` in ``configs/quality.yaml`` goes through the
model's configured upscaler (Real-ESRGAN x2) here when its weights are available.

torch and the adapters are imported in :meth:`load`, so the registry can list these classes on the
CPU-only base install.

Multi-GPU instances (FLUX, FLUX-Kontext, FantasyTalking; ``--gpus N > 1``) are ``N`` torchrun processes
(:mod:`.parallel`): :meth:`_GpuStage.load` joins the group, the adapter turns on xfuser's sequence
parallelism, and on rank 0 the adapter is wrapped in :class:`~.parallel.LeaderAdapter` so each pipeline
call is broadcast to the other ranks, which run it too; only rank 0 serves the bus. Never run on a GPU.
"""

from __future__ import annotations

import logging
import os
import zlib
from typing import Any

import numpy as np

from ...bus.messages import Task
from ...core.constraints import ModelConstraints, frames_for, load_constraints, snap_size
from ...core.looks import look_phrase
from ..runtime.base import ArtifactCache, TaskContext, TaskError
from ..cpu.image import load_png, png_bytes
from ..cpu.media import encode_clip
from ..cpu.talking_head import pcm_array
from . import parallel as P
from .config import spec_for
from .runtime import pcm_to_float, resample_audio, retime

log = logging.getLogger(__name__)


def task_seed(task: Task) -> int:
    """A seed from the request and node (a retried or redelivered task draws the same noise)."""
    return zlib.crc32(f"{task.request_id}/{task.node_id}".encode())


def nominal_layout(width: int, height: int) -> dict[str, Any]:
    """A face layout (``FaceLayout.to_dict()`` shape, pixels) for a centred close-up. Generated portraits
    come without face detection; only the CPU talking head reads it, to draw its mouth and eyes."""
    return {"mouth_center": [width // 2, int(height * 0.64)], "mouth_width": max(4, int(width * 0.08)),
            "mouth_max_open": max(2, int(height * 0.04)),
            "eye_centers": [[int(width * 0.45), int(height * 0.45)], [int(width * 0.55), int(height * 0.45)]],
            "eye_radius": max(2, int(width * 0.02)), "skin_rgb": [224, 172, 140], "lip_rgb": [170, 80, 80]}


class _GpuStage:
    """Shared set-up: the model's constraints, adapter spec and quality ladder; the adapter is built in
    :meth:`load` (``models_dir`` overrides ``$STREAMWISE_MODELS``, ``device`` the CUDA/CPU choice).
    ``gpus``: the instance's GPU count; None = torchrun's ``$WORLD_SIZE`` (1 outside torchrun)."""

    stage = ""
    model = ""
    multi_gpu = False      # whether xfuser can split this model over several GPUs

    def __init__(self, model: str | None = None, *, models_dir: str | os.PathLike | None = None,
                 device: str | None = None, gpus: int | None = None, **overrides: Any) -> None:
        self.model = model or self.model
        self.models_dir, self.device, self.overrides = models_dir, device, overrides
        self.gpus = gpus
        self.spec = spec_for(self.model)
        self.constraints: ModelConstraints = load_constraints()[self.model]
        self.adapter: Any = None

    @property
    def world(self) -> int:
        """GPUs (= processes) of this instance."""
        return self.gpus if self.gpus is not None else P.launched_world_size()

    def load(self) -> None:
        """Build the adapter (loads the weights; raises MissingCheckpointError naming what is missing).
        With more than one GPU, first join the torchrun group (:func:`~.parallel.start_distributed`);
        on rank 0 the adapter is then a :class:`~.parallel.LeaderAdapter`.

        Raises:
            RuntimeError: more than one GPU for a model without multi-GPU support, or without CUDA /
                xfuser / a matching torchrun launch (the message says which and how to launch).
        """
        from .build import build

        world = self.world
        if world > 1:
            if not self.multi_gpu:
                raise RuntimeError(f"{self.model}: no multi-GPU support (xfuser 0.7.0 has no sequence-parallel "
                                   f"version of it); run it with --gpus 1")
            P.start_distributed(world)
        adapter = build(self.model, spec=self.spec, models_dir=self.models_dir, device=self.device,
                        **self.overrides)
        if world > 1:
            ctx = P.current_context()
            if ctx is None:
                raise RuntimeError(f"{self.model}: the adapter did not set up xfuser sequence parallelism")
            if ctx.launch.rank == 0:
                adapter = P.LeaderAdapter(adapter, ctx.channel)
        self.adapter = adapter

    def size_and_steps(self, task: Task, width: int, height: int) -> tuple[int, int, int]:
        """(width, height, steps) for this task: the rung's size (the stream's on the static rung),
        snapped to the model's constraints; the rung's steps, or the model's default."""
        q = task.quality
        if q.rung != "static":
            width, height = q.width, q.height
        w, h = snap_size(int(width), int(height), self.constraints)
        return w, h, int(q.steps or self.spec.get("default_steps", 20))


class GpuImageStage(_GpuStage):
    """Stage ``image`` on FLUX.1-dev (studio and portraits from text) or FLUX.1-Kontext (portraits
    edited from the studio image). Inputs as :class:`~streamwise.stages.cpu.image.CpuArt`; outputs ``image``
    (PNG name), for portraits ``layout`` (:func:`nominal_layout`), plus ``model``, ``steps``, ``size``."""

    stage = "image"
    multi_gpu = True

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        """Draw the studio or a portrait (see the class docstring).

        Raises:
            TaskError: an unknown ``kind`` (not retryable).
        """
        inputs = task.inputs
        kind = inputs.get("kind")
        if kind == "studio":
            w, h, steps = self.size_and_steps(task, inputs["width"], inputs["height"])
            prompt = self.spec.get("studio_prompt", "A video podcast studio, {description}, photographic").format(
                description=inputs.get("description") or "two chairs, microphones, warm light",
                title=inputs.get("title") or "")
            image = await ctx.in_thread(self._draw, None, prompt, w, h, steps, task_seed(task))
            name = await ctx.bus.put_blob(ctx.blob_name(task, "studio.png"), png_bytes(_pil(image)))
            return {"image": name, "model": self.model, "steps": steps, "size": [w, h]}
        if kind == "portrait":
            studio = load_png(await ctx.bus.get_blob(inputs["studio"]))
            w, h, steps = self.size_and_steps(task, studio.shape[1], studio.shape[0])
            prompt = self.spec.get("portrait_prompt", "Close-up of {name}, a podcast host, talking into a microphone "
                                   "in this studio, facing the camera").format(name=inputs["name"])
            if phrase := look_phrase(inputs.get("look")):   # what the screenplay says of the speaker
                prompt += f"; {inputs['name']} is {phrase}" if not phrase.startswith("wearing") else f"; {phrase}"
            image = await ctx.in_thread(self._draw, studio, prompt, w, h, steps, task_seed(task))
            name = await ctx.bus.put_blob(ctx.blob_name(task, "portrait.png"), png_bytes(_pil(image)))
            return {"image": name, "layout": nominal_layout(w, h), "model": self.model, "steps": steps,
                    "size": [w, h]}
        raise TaskError(f"unknown image kind {kind!r}", retryable=False)

    def _draw(self, source: np.ndarray | None, prompt: str, w: int, h: int, steps: int, seed: int) -> np.ndarray:
        if hasattr(self.adapter, "edit"):
            return self.adapter.edit(source, prompt, width=w, height=h, steps=steps, seed=seed)
        return self.adapter.generate(prompt, width=w, height=h, steps=steps, seed=seed)


class FluxImageStage(GpuImageStage):
    """:class:`GpuImageStage` on FLUX.1-dev."""

    model = "flux"


class KontextImageStage(GpuImageStage):
    """:class:`GpuImageStage` on FLUX.1-Kontext-dev."""

    model = "flux-kontext"


class GpuVideoStage(_GpuStage):
    """Stage ``video`` on a GPU video model. Inputs as :class:`~streamwise.stages.cpu.talking_head.CpuTalkingHead`
    (``audio``, ``sample_from``/``sample_to``, ``sample_rate``, ``portrait``, ``fps``, ...). Output ``clip``
    (H.264 clip name) with ``frames`` frames at the stream's ``fps``, plus ``model_frames`` (1+4n, at the
    model's fps), ``steps``, ``size`` (the generated size), ``upscaled`` and ``audio_conditioned``."""

    stage = "video"

    def __init__(self, model: str | None = None, **kw: Any) -> None:
        super().__init__(model, **kw)
        self._audio = ArtifactCache(16)
        self._images = ArtifactCache(8)
        self.upscaler = None
        self._upscale_rungs: set[str] = set()

    def load(self) -> None:
        """Build the video adapter and, when configured and its weights are present, the upscaler (on
        rank 0 only in a multi-GPU instance: the upscaler runs after the parallel call, where it publishes)."""
        super().load()
        name = self.spec.get("upscaler")
        if not name or (self.world > 1 and P.launched_rank() > 0):
            return
        from ...core.quality import load_ladders
        from .build import build
        from .weights import MissingCheckpointError

        ladder = load_ladders().get(self.model)
        self._upscale_rungs = {r.name for r in ladder.rungs if r.upscale} if ladder else set()
        try:
            self.upscaler = build(name, models_dir=self.models_dir, device=self.device)
        except MissingCheckpointError as exc:
            log.warning("%s: upscaler unavailable, the mux will scale clips instead:\n%s", self.model, exc)

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        """Render one clip (see the class docstring).

        Raises:
            TaskError: a clip longer than the model's ``max_clip_s`` or with no frame (not retryable).
        """
        inputs = task.inputs
        portrait = await self._images.get(ctx, inputs["portrait"], load_png)
        pcm = await self._audio.get(ctx, inputs["audio"], pcm_array)
        a, b, rate = int(inputs["sample_from"]), int(inputs["sample_to"]), int(inputs["sample_rate"])
        out_fps = float(inputs["fps"])
        count = round((b - a) * out_fps / rate)
        if count < 1:
            raise TaskError(f"clip {a}..{b} at {rate} Hz has no frame at {out_fps:g} fps", retryable=False)
        model_fps = self.constraints.fps or out_fps
        try:
            n = frames_for((b - a) / rate, self.constraints)
        except ValueError as exc:
            raise TaskError(str(exc), retryable=False) from None
        w, h, steps = self.size_and_steps(task, portrait.shape[1], portrait.shape[0])
        frames = await ctx.in_thread(self._render, portrait, pcm_to_float(pcm[a:b]), rate, n, model_fps, w, h,
                                     steps, task_seed(task), inputs)
        upscaled = self.upscaler is not None and task.quality.rung in self._upscale_rungs
        if upscaled:
            frames = await ctx.in_thread(self.upscaler.upscale, frames)
        clip = await ctx.in_thread(_encode, retime(frames, model_fps, out_fps, count), out_fps)
        name = await ctx.bus.put_blob(ctx.blob_name(task, "clip.mp4"), clip)
        return {"clip": name, "frames": count, "model_frames": n, "steps": steps, "size": [w, h],
                "upscaled": upscaled, "audio_conditioned": bool(getattr(self.adapter, "audio_conditioned", False)),
                "model": self.model}

    def _render(self, portrait, audio, rate, n, fps, w, h, steps, seed, inputs) -> np.ndarray:
        raise NotImplementedError


class FantasyTalkingStage(GpuVideoStage):
    """:class:`GpuVideoStage` on Wan2.1-I2V-14B + FantasyTalking audio (lip-sync)."""

    model = "fantasytalking"
    multi_gpu = True

    def _render(self, portrait, audio, rate, n, fps, w, h, steps, seed, inputs) -> np.ndarray:
        return self.adapter.animate(portrait, audio, rate, frames=n, fps=fps, width=w, height=h, steps=steps,
                                    seed=seed)


class FramePackStage(GpuVideoStage):
    """:class:`GpuVideoStage` on Hunyuan FramePack F1: the portrait animated without lip-sync (long
    shots); the subtitle, when given, is the prompt."""

    model = "hunyuanframepack"

    def _render(self, portrait, audio, rate, n, fps, w, h, steps, seed, inputs) -> np.ndarray:
        prompt = inputs.get("subtitle") or self.spec.get("prompt", "")
        return self.adapter.animate(portrait, prompt, frames=n, fps=fps, width=w, height=h, steps=steps, seed=seed)


class KokoroTtsStage(_GpuStage):
    """Stage ``tts`` on Kokoro-82M. Inputs and outputs as :class:`~streamwise.stages.cpu.tts.CpuSpeech`; the
    24 kHz speech is resampled to the show's rate (22 050 Hz, or 48 000 Hz for fps such as 24 or 60:
    :func:`~streamwise.stages.runtime.base.show_audio_rate`) so pieces from either engine mix in one show.
    Voices follow the CPU tier's voice map (:func:`kokoro_voice`), from the config's ``voices`` list."""

    stage = "tts"
    model = "kokoro"

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        """Speak one piece (see the class docstring).

        Raises:
            TaskError: an fps for which a frame is not a whole number of samples at 22 050 or
                48 000 Hz (not retryable).
        """
        from ..cpu.tts import clip_ranges, frame_grid, pad_to_frames

        inputs = task.inputs
        show_rate, spf = frame_grid(float(inputs["fps"]))
        voice = kokoro_voice(int(inputs["speaker_index"]), inputs.get("voice"), self.spec.get("voices"))
        audio, rate = await ctx.in_thread(self.adapter.speak, inputs["text"], voice)
        pcm = (np.clip(resample_audio(audio, rate, show_rate), -1.0, 1.0) * 32767.0).astype(np.int16)
        pcm = pad_to_frames(pcm, float(inputs.get("pause_after_s", 0.0)), spf, show_rate)
        clips = clip_ranges(pcm, float(inputs["max_clip_s"]), spf, inputs.get("first_clip_s"), show_rate)
        name = await ctx.bus.put_blob(ctx.blob_name(task, "audio.pcm"), pcm.astype("<i2").tobytes())
        return {"audio": name, "samples": len(pcm), "sample_rate": show_rate,
                "clips": [[int(x), int(y)] for x, y in clips], "engine": f"kokoro:{voice}",
                "voice": voice, "voice_model": f"kokoro:{voice}"}


KOKORO_TIMBRES = {"joe": ("am_michael", "bm_george"), "heart": ("af_heart", "bf_emma")}
"""Kokoro voices of the CPU tier's two timbres (US/UK male like joe, US/UK female like heart)."""


def kokoro_voice(speaker_index: int, named: str | None = None, configured: list[str] | None = None) -> str:
    """The Kokoro voice of a speaker, following the CPU tier's voice map (:func:`~..cpu.speech.voice_for`):
    the same timbre (joe -> a male voice, heart -> a female one) for the default of ``speaker_index`` or
    the voice the screenplay ``named``; the n-th speaker of a timbre takes its n-th voice (of
    ``configured``, the config's ``voices``, when it lists any of that timbre).

    Raises:
        TaskError: ``named`` is not an offline voice name (not retryable).
    """
    from ..cpu.speech import voice_for

    try:
        model = voice_for(speaker_index, voice=named).model
    except ValueError as exc:
        raise TaskError(str(exc), retryable=False) from None
    names = [v for v in configured or () if v in KOKORO_TIMBRES[model]] or list(KOKORO_TIMBRES[model])
    return names[(speaker_index // 2) % len(names)]


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.asarray(image, np.uint8), "RGB")


def _encode(frames: np.ndarray, fps: float) -> bytes:
    return encode_clip(np.ascontiguousarray(frames), fps)
