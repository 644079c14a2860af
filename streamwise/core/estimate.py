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
    return _gpu_runtime_s(model, hardware, gpus, rung, duration_s, upscale_to)


@lru_cache(maxsize=1 << 16)
def _gpu_runtime_s(model: str, hardware: str, gpus: int, rung: Rung, duration_s: float,
                   upscale_to: tuple[int, int] | None) -> float:
    """:func:`gpu_runtime_s`, remembered: placement asks for the same (clip, instance, rung) on every
    round a clip waits (a pure function of the packaged profiles; a KeyError is not cached)."""
    frames = model_frames(duration_s, rung.fps)
    seconds = book().runtime_s(model, hardware, gpus, width=rung.width, height=rung.height,
                               steps=rung.steps, frames=frames)
    if rung.upscale and upscale_to:
        seconds += book().runtime_s(UPSCALER, hardware, min(gpus, 8) or 1, width=upscale_to[0],
                                    height=upscale_to[1], frames=frames)
    return seconds


# --------------------------------------------------------------------------- the GPU chain
FRAMEPACK, FRAMEPACK_VAE, REALESRGAN = "hunyuanframepack", "hunyuanframepack-vae", "realesrgan-x2"
#: The FramePack sketch's quality: 640x400 at 12 steps and 30 fps (``configs/quality.yaml``,
#: ladder ``hunyuanframepack``, rung ``medium``): the size the paper's models generate at before
#: Real-ESRGAN brings them to 1280x800 (arXiv 2603.05800; the DES's FramePack, ``sim/des.py``).
SKETCH_RUNG = Rung("sketch", 640, 400, 12, 30.0)
#: The stream's size the upscaler writes (pixels): the FantasyTalking ladder's output.
UPSCALE_OUTPUT = (1280, 800)
#: Frame rate of the talking-head clip the upscaler works on (FantasyTalking's, fps).
TALK_FPS = 23.0
CHAIN_MODELS = (FRAMEPACK, FRAMEPACK_VAE, REALESRGAN)


def chain_runtime_s(model: str, hardware: str, gpus: int, duration_s: float, *, decode: bool = True) -> float:
    """Seconds of one GPU-chain task of ``duration_s`` seconds of video on ``gpus`` x ``hardware``
    (reference profiles, :mod:`streamwise.core.profiles`):

    - ``hunyuanframepack``: the sketch at :data:`SKETCH_RUNG`; with ``decode=False`` (its VAE runs
      on instances of its own) without the VAE decode;
    - ``hunyuanframepack-vae``: FramePack's VAE decode of the sketch on one GPU of ``hardware``
      (``2 r(1 step) - r(2 steps)`` of the profile, the VAE part of a FramePack run);
    - ``realesrgan-x2``: Real-ESRGAN x2 of the talking-head clip's frames (at :data:`TALK_FPS`)
      to :data:`UPSCALE_OUTPUT`.

    Raises:
        KeyError: another model, or no profile for (model, hardware, gpus).
    """
    b = book()
    if model == REALESRGAN:
        return b.runtime_s(UPSCALER, hardware, gpus, width=UPSCALE_OUTPUT[0], height=UPSCALE_OUTPUT[1],
                           frames=model_frames(duration_s, TALK_FPS))
    frames = model_frames(duration_s, SKETCH_RUNG.fps)
    shape = dict(width=SKETCH_RUNG.width, height=SKETCH_RUNG.height, frames=frames)
    if model == FRAMEPACK_VAE:
        return _vae_s(hardware, 1, shape)
    if model != FRAMEPACK:
        raise KeyError(f"{model!r} is not a GPU-chain model ({', '.join(CHAIN_MODELS)})")
    seconds = b.runtime_s(FRAMEPACK, hardware, gpus, steps=SKETCH_RUNG.steps, **shape)
    return seconds if decode else max(0.0, seconds - _vae_s(hardware, gpus, shape))


def _vae_s(hardware: str, gpus: int, shape: dict) -> float:
    b = book()
    one, two = (b.runtime_s(FRAMEPACK, hardware, gpus, steps=s, **shape) for s in (1, 2))
    return max(0.0, 2 * one - two)


def chain_profiled(model: str, hardware: str, gpus: int) -> bool:
    """Whether :func:`chain_runtime_s` knows ``model`` on ``gpus`` x ``hardware`` (the VAE: on one GPU)."""
    try:
        chain_runtime_s(model, hardware, gpus if model != FRAMEPACK_VAE else 1, 1.0)
        return True
    except KeyError:
        return False
