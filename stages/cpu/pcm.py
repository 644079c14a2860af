"""Mono int16 PCM helpers of the CPU tier: resampling (:func:`resample_pcm`), a resample-based pitch
shift (:func:`pitch_shift`), trimming silence, cutting audio at speech pauses (:func:`split_at_pauses`)
and the talking head's mouth-opening envelope (:func:`energy_envelope`). The speech engine is
:mod:`.speech` (which re-exports these names)."""

from __future__ import annotations

import math

import av
import numpy as np

from ..runtime.base import SAMPLE_RATE

_EDGE_KEEP_S = 0.05  # silence kept before the first / after the last active 10 ms frame
_ACTIVE_RMS = 100.0  # int16 RMS (~ -50 dBFS) above which a 10 ms frame counts as sound


def resample_pcm(audio: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """int16 mono (n,) at in_rate -> int16 mono at out_rate via libswresample (anti-aliased)."""
    if len(audio) == 0:
        return np.zeros(0, dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, dtype=np.int16)[None, :], format="s16", layout="mono")
    frame.sample_rate = in_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16, copy=False) if out else np.zeros(0, dtype=np.int16)


def pitch_shift(audio: np.ndarray, ratio: float, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample-based pitch shift of int16 mono ``audio`` (shape (n,)).

    Multiplies pitch (and formants) by ``ratio`` AND shortens the duration by 1/ratio (output has ~n/ratio
    samples); callers compensate duration by synthesizing with length_scale*ratio. Implemented with PyAV's
    ``av.AudioResampler``: the samples are treated as recorded at sample_rate*ratio Hz and resampled to
    sample_rate Hz (libswresample filters, so no aliasing). Raises ValueError if ratio <= 0.
    """
    if ratio <= 0:
        raise ValueError(f"ratio must be > 0, got {ratio}")
    audio = np.asarray(audio, dtype=np.int16).reshape(-1)
    in_rate = int(round(sample_rate * ratio))
    if in_rate == sample_rate:
        return audio.copy()
    return resample_pcm(audio, in_rate, sample_rate)


def _trim_silence(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Drop leading/trailing silence, keeping _EDGE_KEEP_S around the first/last active 10 ms frame."""
    start, end = _trim_bounds(audio, sample_rate)
    return audio[start:end].copy()


def _trim_bounds(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
    """The [start, end) samples :func:`_trim_silence` keeps ((0, 0) for silence)."""
    hop = sample_rate // 100
    n = len(audio) // hop
    if n == 0:
        return 0, len(audio)
    frames = audio[: n * hop].astype(np.float64).reshape(n, hop)
    active = np.nonzero(np.sqrt((frames**2).mean(axis=1)) > _ACTIVE_RMS)[0]
    if len(active) == 0:
        return 0, 0
    keep = int(_EDGE_KEEP_S * sample_rate)
    return max(0, active[0] * hop - keep), min(len(audio), (active[-1] + 1) * hop + keep)


def split_at_pauses(
    audio: np.ndarray,
    max_s: float,
    *,
    sample_rate: int = SAMPLE_RATE,
    min_s: float = 0.5,
    quantum: int = 882,
) -> list[tuple[int, int]]:
    """Cut ``audio`` (shape (n,)) into consecutive [start, end) sample ranges that cover it exactly.

    Each range is <= ``max_s`` seconds. Each cut is placed at the quietest point (RMS over a 20 ms window centred
    on the cut) of the allowed window, so cuts land in speech pauses; among near-equally quiet points the latest
    wins (fewer, longer pieces). Pieces shorter than ``min_s`` seconds are avoided when possible. Cut points are
    multiples of ``quantum`` samples (882 = one video frame at 25 fps at 22050 Hz), except the final end (n).
    Returns [] for empty audio. Raises ValueError if max_s*sample_rate < quantum or quantum < 1.
    """
    if quantum < 1:
        raise ValueError(f"quantum must be >= 1, got {quantum}")
    max_q = int(max_s * sample_rate) // quantum  # max piece length in quanta
    if max_q < 1:
        raise ValueError(f"max_s*sample_rate ({max_s * sample_rate:g} samples) is shorter than quantum ({quantum})")
    n = len(audio)
    if n == 0:
        return []
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    csum = np.concatenate(([0.0], np.cumsum(x * x)))
    half = max(1, int(0.010 * sample_rate))
    min_len = int(min_s * sample_rate)

    def rms_at(cuts: np.ndarray) -> np.ndarray:
        lo, hi = np.clip(cuts - half, 0, n), np.clip(cuts + half, 0, n)
        return np.sqrt((csum[hi] - csum[lo]) / np.maximum(hi - lo, 1))

    ranges: list[tuple[int, int]] = []
    start = 0
    while n - start > max_q * quantum:
        cands = start + quantum * np.arange(1, max_q + 1)
        good = cands[(cands - start >= min_len) & (n - cands >= min_len)]
        if len(good) == 0:
            good = cands
        rms = rms_at(good)
        ok = np.nonzero(rms <= rms.min() * 1.1 + 1.0)[0]
        cut = int(good[ok[-1]])
        ranges.append((start, cut))
        start = cut
    ranges.append((start, n))
    return ranges


def energy_envelope(audio: np.ndarray, fps: float, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mouth-opening driver: float32 array of shape (ceil(n / (sample_rate/fps)),), one value per video frame.

    Per-frame RMS of ``audio`` (shape (n,)), normalised robustly: a noise floor (10 % of the clip's 95th percentile
    RMS, at least ~-50 dBFS) maps to 0 and the 95th percentile to 1, clipped to [0, 1]; then lightly smoothed with a
    fast attack and a slower release. Raises ValueError if fps <= 0.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    hop = sample_rate / fps
    n_frames = math.ceil(len(x) / hop - 1e-9)
    if n_frames == 0:
        return np.zeros(0, dtype=np.float32)
    bounds = np.minimum(np.round(np.arange(n_frames + 1) * hop).astype(np.int64), len(x))
    bounds[-1] = len(x)
    csum = np.concatenate(([0.0], np.cumsum(x * x)))
    rms = np.sqrt((csum[bounds[1:]] - csum[bounds[:-1]]) / np.maximum(bounds[1:] - bounds[:-1], 1))
    ref = float(np.percentile(rms, 95))
    floor = max(0.1 * ref, _ACTIVE_RMS)
    if ref <= floor:
        return np.zeros(n_frames, dtype=np.float32)
    target = np.clip((rms - floor) / (ref - floor), 0.0, 1.0)
    env = np.empty(n_frames, dtype=np.float32)
    level = 0.0
    for i, t in enumerate(target):
        level += (0.85 if t > level else 0.45) * (t - level)
        env[i] = level
    return env
