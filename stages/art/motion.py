"""Head motion and blinks of the talking head (:class:`stages.art.head.HeadAnimator`).

Both are pure functions of a seed and the absolute frame number, so a clip split into parts renders the same as the
whole: eyelid states per frame (:func:`blink_states`), and the head offset per frame (:func:`head_motion`): a slow
sway with a bob, a slower drift and a nod following the speech envelope (:func:`nod_drive`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["blink_states", "head_motion", "nod_drive", "nod_span"]

BLINK_PERIOD_S = 3.75   # one blink per slot of this length ...
BLINK_JITTER_S = 0.6    # ... placed at the slot middle +- this, so blinks are 2.55-4.95 s apart
_M64 = (1 << 64) - 1

# head motion, in px of a 640x400 frame (scaled with the frame): a slow sway on a figure-of-eight path (the bob at
# twice the sway frequency, so the head is never at rest: at each end of the sway it is mid-bob), a slower drift,
# and a nod with the speech
SWAY = (3.3, 0.30, 0.36)              # horizontal sway: amplitude px, lowest / highest frequency Hz (from the seed)
BOB_PX, BOB_PHASE = 1.5, 0.6          # vertical bob at twice the sway frequency; phase offset within +-0.6 rad
DRIFT = (0.8, 0.10, 0.15)             # a slower horizontal drift, so the path never quite repeats
NOD_PX, LEAN_PX = 3.0, 0.8            # down / sideways on full emphasis
NOD_AHEAD_S, NOD_BEHIND_S = 0.08, 0.25  # the nod follows the speech envelope from 0.08 s ahead to 0.25 s behind
MOTION_FADE_S = 0.5                   # at rest at frame 0 and at ``end_frame``, eased over this long
MAX_DX = SWAY[0] + DRIFT[0] + LEAN_PX
MAX_DY = BOB_PX + NOD_PX


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def blink_states(n: int, *, start_frame: int = 0, fps: float = 25.0, seed: int = 0) -> np.ndarray:
    """Eyelid state per frame for absolute frames ``start_frame .. start_frame+n-1`` at ``fps``: int8 (n,),
    0 open, 1 half closed, 2 closed. One blink (3-4 frames: half, closed, [closed,] half) per 3.75 s slot at a
    position hashed from (seed, slot), so the result for a frame never depends on how a clip was split."""
    f = np.arange(int(n), dtype=np.int64) + int(start_frame)
    period = BLINK_PERIOD_S * float(fps)
    slot = np.floor(f / period).astype(np.int64)
    salt = np.uint64((int(seed) * 0x632BE59BD9B4E019 + 12345) & _M64)
    key = slot.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + salt
    u = (_mix64(key) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    start = np.floor(slot * period + period / 2 + (u - 0.5) * 2 * BLINK_JITTER_S * fps).astype(np.int64)
    pattern = np.array([1, 2, 2, 1] if fps >= 18 else [1, 2, 1], np.int8)
    k = f - start
    inside = (k >= 0) & (k < len(pattern))
    out = np.zeros(int(n), np.int8)
    out[inside] = pattern[k[inside]]
    return out


def _seed_uniforms(seed: int, k: int) -> np.ndarray:
    """``k`` uniforms in [0, 1) hashed from ``seed`` (independent of the blink hash)."""
    salt = np.uint64((int(seed) * 0x2545F4914F6CDD1D + 0x5851F42D4C957F2D) & _M64)
    key = np.arange(1, k + 1, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03) + salt
    return (_mix64(key) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def nod_span(fps: float) -> tuple[int, int]:
    """(frames ahead, frames behind) the nod looks at the envelope."""
    return max(1, round(NOD_AHEAD_S * fps)), max(1, round(NOD_BEHIND_S * fps))


def nod_drive(envelope: np.ndarray, *, fps: float = 25.0, before: np.ndarray | None = None,
              after: np.ndarray | None = None) -> np.ndarray:
    """Nod strength per frame in [0, 1]: the speech envelope (N,) smoothed by an asymmetric triangular kernel (from
    ``NOD_AHEAD_S`` ahead to ``NOD_BEHIND_S`` behind, peak one frame behind). ``before`` / ``after`` are the envelope
    values of the frames just before / after the clip (missing frames count as silence), so a clip split into parts
    gives the same values as the whole when each part gets its neighbours as context. float64 (N,)."""
    e = np.clip(np.nan_to_num(np.asarray(envelope, np.float64).reshape(-1), nan=0.0), 0.0, 1.0)
    n = e.shape[0]
    ahead, behind = nod_span(fps)
    lags = np.arange(-ahead, behind + 1)
    w = np.where(lags <= 1, (lags + ahead + 1) / (ahead + 2), (behind + 1 - lags) / behind)
    w = w / w.sum()
    ext = np.zeros(behind + n + ahead)
    ext[behind:behind + n] = e
    if before is not None and len(before) and behind:
        b = np.clip(np.nan_to_num(np.asarray(before, np.float64).reshape(-1)[-behind:], nan=0.0), 0.0, 1.0)
        ext[behind - b.size:behind] = b
    if after is not None and len(after):
        a = np.clip(np.nan_to_num(np.asarray(after, np.float64).reshape(-1)[:ahead], nan=0.0), 0.0, 1.0)
        ext[behind + n:behind + n + a.size] = a
    out = np.zeros(n)
    for lag, wk in zip(lags, w):                    # fixed summation order: split clips give identical values
        out += wk * ext[behind - lag:behind - lag + n]
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def head_motion(n: int, *, start_frame: int = 0, fps: float = 25.0, seed: int = 0, drive: np.ndarray | None = None,
                end_frame: int | None = None, unit: float = 1.0) -> np.ndarray:
    """Head offset (dx right, dy down) in px per frame for absolute frames ``start_frame .. start_frame+n-1``:
    float64 (n, 2). A sway (``SWAY``) with a bob at twice its frequency (``BOB_PX``) and a slow drift (``DRIFT``),
    frequencies and phases hashed from ``seed``, plus a nod down (``NOD_PX``) and a slight lean (``LEAN_PX``)
    following ``drive`` (see :func:`nod_drive`, (n,) in [0, 1]). Eased to rest at frame 0 and at ``end_frame`` (the
    piece's end, when known) over ``MOTION_FADE_S``, so consecutive pieces join without a jump. ``unit`` scales
    everything (px per 640x400 px)."""
    f = np.arange(int(n), dtype=np.float64) + int(start_frame)
    t = f / float(fps)
    u = _seed_uniforms(seed, 6)
    two_pi = 2.0 * np.pi
    amp, lo, hi = SWAY
    theta = two_pi * (lo + (hi - lo) * u[0]) * t + two_pi * u[1]
    x = amp * np.sin(theta)
    y = BOB_PX * np.sin(2.0 * theta + BOB_PHASE * (2.0 * u[2] - 1.0))
    amp, lo, hi = DRIFT
    x += amp * np.sin(two_pi * (lo + (hi - lo) * u[3]) * t + two_pi * u[4])
    if drive is not None:
        d = np.clip(np.asarray(drive, np.float64).reshape(-1), 0.0, 1.0) ** 1.3
        x += LEAN_PX * (1.0 if u[5] < 0.5 else -1.0) * d
        y += NOD_PX * d
    fade = max(1.0, MOTION_FADE_S * float(fps))
    g = _smoothstep(f / fade)
    if end_frame is not None:
        g = g * _smoothstep((int(end_frame) - f) / fade)
    return np.stack([x * g, y * g], axis=1) * float(unit)
