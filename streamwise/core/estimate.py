"""Expected runtime of one task on one instance at one quality rung.

Joins the reference GPU profiles (:mod:`streamwise.core.profiles`), the CPU rung's profile
(``configs/profiles/cpu.yaml``, through the node's own estimate) and the online correction
per instance. Used by the scheduler's placement and by emulated GPU workers, so both
agree on what a task costs.
"""

from __future__ import annotations

import math
from functools import lru_cache

from .profiles import ProfileBook
from .quality import Rung

UPSCALER = "realesrgan"


@lru_cache(maxsize=1)
def book() -> ProfileBook:
    """The packaged profiles, loaded once per process (~0.1 s)."""
    return ProfileBook.load()


def model_frames(duration_s: float, fps: float | None) -> int:
    """Frames a video model renders for ``duration_s`` seconds at its own ``fps``, rounded up
    to the 1+4n counts of Wan-family models (a still image: 1)."""
    if not fps:
        return 1
    n = max(1, math.ceil(duration_s * fps))
    return n + (-(n - 1)) % 4


def gpu_runtime_s(model: str, hardware: str, gpus: int, rung: Rung, *, duration_s: float = 0.0,
                  upscale_to: tuple[int, int] | None = None) -> float:
    """Seconds for ``model`` on ``gpus`` × ``hardware`` to render ``rung`` for ``duration_s`` seconds
    of video (a still image when the rung has no fps), plus the Real-ESRGAN ×2 pass to
    ``upscale_to`` (pixels) when the rung is marked ``upscale``.

    Raises:
        KeyError: no profile for (model, hardware, gpus); the message lists the known ones.
    """
    frames = model_frames(duration_s, rung.fps)
    seconds = book().runtime_s(model, hardware, gpus, width=rung.width, height=rung.height,
                               steps=rung.steps, frames=frames)
    if rung.upscale and upscale_to:
        seconds += book().runtime_s(UPSCALER, hardware, min(gpus, 8) or 1, width=upscale_to[0],
                                    height=upscale_to[1], frames=frames)
    return seconds
