"""Shared plumbing of the GPU adapters: device and dtype, step counting and timing, array conversions.

torch is imported inside the functions, so importing this module costs nothing on the CPU-only
base install.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when a CUDA GPU is visible, else ``"cpu"``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(name: str | None, device: str):
    """The torch dtype for ``name`` (``bfloat16``, ``float16``, ``float32``) on ``device``; on CPU always
    float32 (bf16 kernels on CPU are slow and the tiny test models are float32).

    Raises:
        ValueError: an unknown dtype name.
    """
    import torch

    if device == "cpu" or not name:
        return torch.float32
    table = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
             "float32": torch.float32, "fp32": torch.float32}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; use one of {sorted(table)}")
    return table[name]


def generator(device: str, seed: int):
    """A torch.Generator on ``device`` seeded with ``seed`` (reproducible noise)."""
    import torch

    return torch.Generator(device="cpu" if device == "cpu" else device).manual_seed(int(seed))


@dataclass
class StepClock:
    """A diffusers ``callback_on_step_end`` that counts denoising steps and timestamps them.

    After a pipeline call: ``steps`` = steps run; ``step_times`` = monotonic time at the end of each
    step; with :meth:`start` / :meth:`stop` around the call, :attr:`total_s`, :attr:`avg_step_s`
    (mean of the intervals between step ends, seconds) and :attr:`tail_s` (last step end to the end of
    the call: VAE decode and post-processing, seconds) are filled in.
    """

    steps: int = 0
    step_times: list[float] = field(default_factory=list)
    t0: float = 0.0
    t1: float = 0.0

    def __call__(self, pipe, step: int, timestep, kwargs: dict) -> dict:
        self.steps += 1
        self.step_times.append(time.perf_counter())
        return kwargs

    def start(self) -> StepClock:
        """Reset and mark the start of a pipeline call."""
        self.steps, self.step_times, self.t0 = 0, [], time.perf_counter()
        return self

    def stop(self) -> StepClock:
        """Mark the end of the pipeline call."""
        self.t1 = time.perf_counter()
        return self

    @property
    def total_s(self) -> float:
        """Seconds from :meth:`start` to :meth:`stop`."""
        return self.t1 - self.t0

    @property
    def avg_step_s(self) -> float:
        """Mean seconds per denoising step between step ends; with one step, start to its end (which then
        includes the text / image encoders)."""
        t = self.step_times
        if len(t) >= 2:
            return (t[-1] - t[0]) / (len(t) - 1)
        return (t[0] - self.t0) if t else 0.0

    @property
    def tail_s(self) -> float:
        """Seconds from the last step's end to :meth:`stop` (VAE decode and post-processing)."""
        return self.t1 - self.step_times[-1] if self.step_times else 0.0


def to_uint8(x: Any) -> np.ndarray:
    """Pipeline output in [0, 1] floats (numpy or torch, any leading dims) -> uint8 with the same shape."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def as_pil(image: Any):
    """A PIL RGB image from a PIL image or a uint8 (H, W, 3) array."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {arr.shape}")
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def resize_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, height, width, 3) with Lanczos (PIL); unchanged when the size matches."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.LANCZOS)) for f in frames])


def retime(frames: np.ndarray, fps_in: float, fps_out: float, count: int) -> np.ndarray:
    """Resample a clip in time by nearest earlier frame: ``count`` frames at ``fps_out`` from ``frames`` at
    ``fps_in`` (frames per second); output frame j shows input frame ``floor(j * fps_in / fps_out)``,
    clamped to the last one. Shapes: (N, H, W, 3) -> (count, H, W, 3).

    Raises:
        ValueError: count < 1 or a non-positive fps.
    """
    if count < 1 or fps_in <= 0 or fps_out <= 0:
        raise ValueError(f"need count >= 1 and fps > 0, got count={count}, fps_in={fps_in}, fps_out={fps_out}")
    idx = np.minimum((np.arange(count) * (fps_in / fps_out) + 1e-9).astype(np.int64), len(frames) - 1)
    return np.asarray(frames)[idx]


def resample_audio(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 mono (n,) at ``rate_in`` Hz -> float32 mono at ``rate_out`` Hz (libswresample via PyAV,
    anti-aliased)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if rate_in == rate_out or len(audio) == 0:
        return audio.copy()
    import av

    frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
    frame.sample_rate = rate_in
    rs = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
    out = [f.to_ndarray().reshape(-1) for f in rs.resample(frame)] + [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1)."""
    return np.asarray(pcm, dtype=np.float32) / 32768.0
