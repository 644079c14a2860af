"""One small interface per GPU stage kind (``typing.Protocol``), so the worker-side stages can take any
implementation: the diffusers ones in this package, or another backend later.

Images are uint8 ``(H, W, 3)`` RGB arrays, clips uint8 ``(N, H, W, 3)``, audio float32 mono in
[-1, 1]; sizes in pixels, ``fps`` in frames per second, ``steps`` = denoising steps. Every call
takes an optional ``on_step`` callable, called once per denoising step (used for timing and tests).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

OnStep = Callable[..., Any] | None


class ImageAdapter(Protocol):
    """Text-to-image (FLUX.1-dev)."""

    def generate(self, prompt: str, *, width: int, height: int, steps: int, seed: int = 0,
                 on_step: OnStep = None) -> np.ndarray:
        """A uint8 (height, width, 3) image."""


class EditAdapter(Protocol):
    """Image editing (FLUX.1-Kontext): the speaker's close-up from the studio image."""

    def edit(self, image: np.ndarray, prompt: str, *, width: int, height: int, steps: int, seed: int = 0,
             on_step: OnStep = None) -> np.ndarray:
        """``image`` (uint8 (H, W, 3)) edited as ``prompt`` says: uint8 (height, width, 3)."""


class TalkingHeadAdapter(Protocol):
    """Audio-driven portrait animation (FantasyTalking on Wan2.1 I2V)."""

    audio_conditioned: bool

    def animate(self, portrait: np.ndarray, audio: np.ndarray, sample_rate: int, *, frames: int, fps: float,
                width: int, height: int, steps: int, seed: int = 0, prompt: str | None = None,
                on_step: OnStep = None) -> np.ndarray:
        """uint8 (frames, height, width, 3) at ``fps``; ``frames`` must be 1+4n; ``audio`` covers the clip
        (padded with silence to frames / fps seconds)."""


class VideoAdapter(Protocol):
    """Image-to-video without audio (Hunyuan FramePack F1: long shots, b-roll)."""

    def animate(self, image: np.ndarray, prompt: str, *, frames: int, fps: float, width: int, height: int,
                steps: int, seed: int = 0, on_step: OnStep = None) -> np.ndarray:
        """uint8 (frames, height, width, 3)."""


class UpscaleAdapter(Protocol):
    """Super-resolution (Real-ESRGAN x2)."""

    scale: int

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> uint8 (N, H * scale, W * scale, 3)."""


class TtsAdapter(Protocol):
    """Neural text-to-speech (Kokoro-82M)."""

    sample_rate: int

    def speak(self, text: str, voice: str, *, speed: float = 1.0) -> tuple[np.ndarray, int]:
        """(float32 mono samples in [-1, 1], sample rate in Hz)."""
