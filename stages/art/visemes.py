"""Visemes: mouth shapes that follow the speech sounds (the phonemes the TTS spoke), not only the loudness.

Phonemes are IPA characters as espeak-ng (piper) writes them; the capitals in brackets are the diphthongs and
affricates of the misaki alphabet hibari's G2P writes (A = eɪ, I = aɪ, W = aʊ, O = oʊ, Y = ɔɪ). A small viseme set
in the spirit of the Preston Blair mouth chart used in cartoon lip sync (and of the
MPEG-4 FBA viseme groups), each with how far the mouth opens and how wide it is drawn:

==========  =====================================  ===========  ===========
viseme      phonemes (IPA, as espeak-ng writes)    opening      width
==========  =====================================  ===========  ===========
``rest``    pauses, punctuation, start/end         0            1.0
``closed``  p b m                                  0 (pressed)  0.96
``teeth``   f v                                    0.18         1.0
``round``   o ɔ u ʊ w ɒ ɹ ɚ ɝ ɜ ʃ ʒ (O Y ʧ ʤ)      0.5          0.66
``open``    a ɑ æ ʌ ɐ (I W)                        1.0          1.0
``wide``    i ɪ e ɛ j (A)                          0.4          1.12
``mid``     every other sound (t d n l s z k g ə)  0.5          0.94
==========  =====================================  ===========  ===========

:func:`phoneme_track` turns piper's per-sentence phonemes (with their sample counts when the model gives
alignments, else an estimate) into a track of ``(start_s, end_s, viseme)``; :func:`frame_visemes` samples a
track at video frames. :func:`mouth_from_track` combines a frame's viseme with the loudness envelope into the
opening the animator draws (closed and rest frames are drawn shut whatever the loudness).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = ["VISEMES", "SHAPES", "viseme_of", "phoneme_track", "frame_visemes", "mouth_from_track"]

VISEMES: tuple[str, ...] = ("rest", "closed", "teeth", "round", "open", "wide", "mid")
SHAPES: dict[str, tuple[float, float]] = {"rest": (0.0, 1.0), "closed": (0.0, 0.96), "teeth": (0.18, 1.0),
                                          "round": (0.5, 0.66), "open": (1.0, 1.0), "wide": (0.4, 1.12),
                                          "mid": (0.5, 0.94)}
"""viseme -> (opening as a fraction of the portrait's largest, width as a fraction of its mouth width)."""
_OF: dict[str, str] = {}
for _vis, _chars in (("closed", "pbm"), ("teeth", "fv"), ("round", "oɔuʊwɒɹɚɝɜʃʒOYʧʤ"), ("open", "aɑæʌɐIW"),
                     ("wide", "iɪeɛjA"), ("rest", ".,;:!?^$_—…\"()")):
    for _ch in _chars:
        _OF[_ch] = _vis
_MODIFIERS = "ˈˌːˑ̩̯̃"      # stress and length marks: they belong to the sound next to them
_VOWELS = set("aɑæʌɐiɪeɛoɔuʊɒəɚɝɜyAIWOYᵊ")


def viseme_of(phoneme: str) -> str:
    """The viseme of one phoneme character (``"m"`` -> ``"closed"``; any sound not listed -> ``"mid"``)."""
    return _OF.get(phoneme, "rest" if not phoneme.strip() else "mid")


def _estimate(phonemes: Sequence[str], n: int) -> list[int]:
    """Sample counts for ``phonemes`` spread over ``n`` samples when the model gives no alignments: vowels 2
    units, consonants 1, spaces 0.5, punctuation 1.5, stress/length marks 0 (a rough duration prior)."""
    w = [0.0 if p in _MODIFIERS else 2.0 if p in _VOWELS else 0.5 if p == " " else
         1.5 if viseme_of(p) == "rest" else 1.0 for p in phonemes]
    total = sum(w) or 1.0
    edges = np.rint(np.cumsum([0.0] + w) / total * n).astype(int)
    return [int(b - a) for a, b in zip(edges[:-1], edges[1:])]


def phoneme_track(phonemes: Sequence[str], samples: Sequence[int] | None, n: int, sample_rate: int,
                  offset_s: float = 0.0) -> list[tuple[float, float, str]]:
    """The viseme track of one sentence: ``phonemes`` (one IPA character each, as piper's ``AudioChunk.phonemes``;
    with the ``^`` / ``$`` start and end marks when ``samples`` are alignments) and ``samples`` (audio samples per
    phoneme, or ``None``: estimated over the ``n`` samples of the sentence's audio). Stress and length marks go to
    the neighbouring sound, a word space half to each neighbour. Returns ``[(start_s, end_s, viseme)]`` from
    ``offset_s``, consecutive equal visemes merged, covering the sentence's ``n`` samples at ``sample_rate``."""
    ph = list(phonemes)
    counts = list(samples) if samples is not None and len(samples) == len(ph) else _estimate(ph, n)
    scale = n / max(1, sum(counts))
    vis = [viseme_of(p) for p in ph]
    for i, p in enumerate(ph):               # marks: stress to the next sound, length to the previous
        if p in "ˈˌ":
            vis[i] = next((vis[j] for j in range(i + 1, len(ph)) if ph[j] not in _MODIFIERS), "rest")
        elif p in _MODIFIERS:
            vis[i] = vis[i - 1] if i else "rest"
    track: list[list] = []
    t = 0.0
    for i, (p, c) in enumerate(zip(ph, counts)):
        dur = c * scale / sample_rate
        if p == " " and 0 < i < len(ph) - 1:  # a word space: half to each neighbour
            parts = [(dur / 2, vis[i - 1]), (dur / 2, vis[i + 1] if vis[i + 1] != "rest" else vis[i - 1])]
        else:
            parts = [(dur, vis[i])]
        for d, v in parts:
            if track and track[-1][2] == v:
                track[-1][1] = t + d
            else:
                track.append([t, t + d, v])
            t += d
    return [(round(offset_s + a, 4), round(offset_s + b, 4), v) for a, b, v in track if b > a]


def frame_visemes(track: Iterable[Sequence], start_s: float, n_frames: int, fps: float) -> np.ndarray:
    """The viseme of each of ``n_frames`` video frames from ``start_s`` (s) at ``fps``: int8 (n,) indices into
    :data:`VISEMES`. A frame takes the viseme covering most of it, except that a closure (``closed``) covering at
    least a third of a frame wins it, so a short p/b/m is never skipped. Frames the track does not cover: rest."""
    out = np.zeros(int(n_frames), np.int8)
    if n_frames <= 0:
        return out
    best = np.zeros(int(n_frames))
    closed = VISEMES.index("closed")
    for a, b, v in track:
        if v not in SHAPES:
            continue
        k = VISEMES.index(v)
        f0 = max(0, int(np.floor((float(a) - start_s) * fps)))
        f1 = min(int(n_frames), int(np.ceil((float(b) - start_s) * fps)))
        for f in range(f0, f1):
            lo, hi = start_s + f / fps, start_s + (f + 1) / fps
            cover = (min(hi, float(b)) - max(lo, float(a))) * fps
            if cover <= 0:
                continue
            score = cover + (1.0 if k == closed and cover >= 1 / 3 else 0.0)
            if score > best[f]:
                best[f], out[f] = score, k
    return out


def mouth_from_track(visemes: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """Mouth opening per frame in [0, 1]: the viseme's opening (:data:`SHAPES`) scaled by the loudness
    (``0.35 + 0.65 * envelope``), so a loud vowel opens wider than a quiet one; rest and closed frames are 0.
    Shapes: int (n,) and float (n,) -> float32 (n,)."""
    v = np.asarray(visemes, np.intp).reshape(-1)
    e = np.clip(np.nan_to_num(np.asarray(envelope, np.float32).reshape(-1)[:len(v)], nan=0.0), 0.0, 1.0)
    if len(e) < len(v):
        e = np.pad(e, (0, len(v) - len(e)))
    opening = np.array([SHAPES[name][0] for name in VISEMES], np.float32)[v]
    return (opening * (0.35 + 0.65 * e)).astype(np.float32)
