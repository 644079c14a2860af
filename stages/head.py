"""Talking-head renderer of the CPU quality rung: animate one portrait from per-frame mouth openness.

Everything expensive is pre-rendered: ``levels`` mouth patches (closed -> wide open) and two eyelid patches (half
and fully closed) at construction, one composited base frame per subtitle page per :meth:`HeadAnimator.render`
call. Per frame the work is one base-frame copy plus at most two small patch pastes (numpy slicing), so a
640x400 clip renders at hundreds of frames/s on one core. Patches are drawn at 2x on a nearest-upscaled crop
and box-downscaled, so pixels they do not touch stay bit-identical to the portrait.

Head motion: given the portrait as layers (``person`` RGBA at 1x or 2x the frame size, ``backdrop`` RGBA, see
``stages.art``), the speaker sways slowly and nods with the speech (:func:`head_motion`), in steps of 1/scale px.
The person is pre-reduced at every sub-pixel phase over a fixed region (its bounding box plus the motion range,
down to the desk), and the mouth / eyelid patches are drawn on the person layer; per distinct (offset, phase) a
frame region is composited once (a masked copy of the opaque interior plus an exact float blend of the
antialiased edge and of the pixels partly covered by the mic / name plate) and pasted into every frame using it.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .art import (FaceLayout, backdrop_arrays, blend_person, draw_mouth, font, person_premultiplied, reduce_phase,
                  shade)

__all__ = ["HeadAnimator", "blink_states", "head_motion", "nod_drive", "nod_span", "wrap_text", "bench"]

BLINK_PERIOD_S = 3.75   # one blink per slot of this length ...
BLINK_JITTER_S = 0.6    # ... placed at the slot middle +- this, so blinks are 2.55-4.95 s apart
_M64 = (1 << 64) - 1
_LASH = (40, 30, 30)
_Box = tuple[int, int, int, int]
_Band = tuple[np.ndarray, int, int]   # RGBA band (h, w, 4) uint8 and its top-left frame px (x, y)

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


def _sag(cx: float, y: float, half_w: float, sag: float, n: int) -> list[tuple[float, float]]:
    """n points of a parabola from (cx - half_w, y) to (cx + half_w, y) dipping ``sag`` px in the middle."""
    return [(cx + u * half_w, y + sag * (1 - u * u)) for u in np.linspace(-1.0, 1.0, n)]


def wrap_text(text: str, fnt, max_w: float) -> list[str]:
    """Greedy word wrap of ``text`` to lines at most ``max_w`` px wide in ``fnt`` (over-long words are split)."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        while fnt.getlength(word) > max_w and len(word) > 1:   # hard-split a word wider than a line
            cut = len(word) - 1
            while cut > 1 and fnt.getlength(word[:cut]) > max_w:
                cut -= 1
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(word[:cut])
            word = word[cut:]
        cand = f"{cur} {word}" if cur else word
        if fnt.getlength(cand) <= max_w or not cur:
            cur = cand
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    return lines


def _blend(dst: np.ndarray, ox: int, oy: int, band: np.ndarray, bx: int, by: int) -> np.ndarray:
    """Alpha-composite RGBA ``band`` (placed at frame px bx, by) over ``dst`` (an RGB window whose top-left is frame
    px ox, oy). Returns ``dst`` itself when they do not overlap, else a blended copy."""
    h, w = dst.shape[:2]
    bh, bw = band.shape[:2]
    x0, y0, x1, y1 = max(ox, bx), max(oy, by), min(ox + w, bx + bw), min(oy + h, by + bh)
    if x0 >= x1 or y0 >= y1:
        return dst
    out = dst.copy()
    src = band[y0 - by:y1 - by, x0 - bx:x1 - bx].astype(np.float32)
    a = src[..., 3:4] / 255.0
    win = out[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(np.float32)
    out[y0 - oy:y1 - oy, x0 - ox:x1 - ox] = np.rint(win * (1 - a) + src[..., :3] * a).astype(np.uint8)
    return out


class HeadAnimator:
    """Animate one portrait: mouth opening per frame, blinks, subtitles, and head motion when given the portrait's
    layers. Construct once per speaker and cache (a few ms; ~40 ms with layers at 640x400).

    ``portrait`` is HxWx3 uint8 (H, W any size; the layout is in its pixels); ``levels`` mouth patches are
    pre-rendered from closed (level 0, the portrait itself) to wide open (``layout.mouth_max_open`` px).
    ``person`` (RGBA uint8 at 1x or an integer multiple of the portrait size) and ``backdrop`` (RGBA uint8, portrait
    size) are the layers of :func:`stages.art.render_person_layers`; with both, the head moves (``motion`` scales
    the movement, 0 keeps it still); without them the portrait stays put, as before."""

    def __init__(self, portrait: np.ndarray, layout: FaceLayout, *, levels: int = 8, person: np.ndarray | None = None,
                 backdrop: np.ndarray | None = None, motion: float = 1.0) -> None:
        p = np.asarray(portrait)
        if p.ndim != 3 or p.shape[2] < 3:
            raise ValueError(f"portrait must be HxWx3, got {p.shape}")
        self.portrait = np.ascontiguousarray(p[..., :3], dtype=np.uint8)
        self.layout = layout
        self.levels = max(2, int(levels))
        H, W = self.portrait.shape[:2]
        L = layout
        (mx, my), mw, mo = L.mouth_center, L.mouth_width, L.mouth_max_open
        self.mouth_box = self._clip((mx - 0.62 * mw, my - 0.3 * mo - 0.26 * mw - 2,
                                     mx + 0.62 * mw, my + 0.7 * mo + 0.27 * mw + 2))
        (e0x, e0y), (e1x, e1y) = L.eye_centers
        r = L.eye_radius
        self.eye_box = self._clip((min(e0x, e1x) - 1.3 * r - 1, min(e0y, e1y) - 1.12 * r - 1,
                                   max(e0x, e1x) + 1.3 * r + 1, max(e0y, e1y) + 1.12 * r + 1))
        self._skin_mouth = self._skin(self.mouth_box)
        self._skin_eye = self._skin(self.eye_box)
        self._rig = _Rig(self, person, backdrop, motion) if person is not None and backdrop is not None else None
        if self._rig is None:   # the still portrait's patches (the rig draws its own on the person layer)
            self.mouth_patches = [self._crop(self.mouth_box)] + [
                self._paint(self.mouth_box, lambda d, im, tx, o=lv / (self.levels - 1): self._draw_mouth(d, tx, o))
                for lv in range(1, self.levels)]
            self.eye_patches = [self._crop(self.eye_box)] + [
                self._paint(self.eye_box, lambda d, im, tx, s=state: self._draw_lids(d, im, tx, s)) for state in (1, 2)]

    @property
    def moving(self) -> bool:
        """Whether this animator moves the head (constructed with the portrait's layers)."""
        return self._rig is not None

    # ---------------------------------------------------------------------------------------- pre-rendering
    def _clip(self, box: tuple[float, float, float, float]) -> _Box:
        H, W = self.portrait.shape[:2]
        x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x1, y1 = min(W, int(np.ceil(box[2]))), min(H, int(np.ceil(box[3])))
        return (x0, y0, max(x0, x1), max(y0, y1))

    def _crop(self, box: _Box) -> np.ndarray:
        x0, y0, x1, y1 = box
        return self.portrait[y0:y1, x0:x1].copy()

    def _skin(self, box: _Box) -> tuple[int, int, int]:
        """Median of the crop's pixels near layout.skin_rgb (robust to lossy transport); layout value as fallback."""
        c = self._crop(box).reshape(-1, 3).astype(np.int32)
        near = c[np.abs(c - np.asarray(self.layout.skin_rgb)).sum(axis=1) < 60]
        if len(near) < 8:
            return tuple(self.layout.skin_rgb)  # type: ignore[return-value]
        return tuple(int(v) for v in np.median(near, axis=0))  # type: ignore[return-value]

    def _paint(self, box: _Box, fn: Callable) -> np.ndarray:
        """Draw ``fn(draw, image, tx)`` at 2x over the crop ``box`` (tx maps frame px -> 2x patch px), box-downscale."""
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            return self._crop(box)
        im = Image.fromarray(self.portrait[y0:y1, x0:x1]).resize(((x1 - x0) * 2, (y1 - y0) * 2), Image.NEAREST)
        d = ImageDraw.Draw(im, "RGBA")
        fn(d, im, lambda x, y: ((x - x0) * 2.0, (y - y0) * 2.0))
        return np.asarray(im.reduce(2)).copy()

    def _draw_mouth(self, d: ImageDraw.ImageDraw, tx: Callable, o: float) -> None:
        L = self.layout
        mx, my = tx(*L.mouth_center)
        w = 2.0 * L.mouth_width
        d.ellipse((mx - 0.58 * w, my - 0.24 * w, mx + 0.58 * w, my + 0.26 * w), fill=self._skin_mouth)
        draw_mouth(d, mx, my, w, 2.0 * o * L.mouth_max_open, L.lip_rgb)

    def _draw_lids(self, d: ImageDraw.ImageDraw, im: Image.Image, tx: Callable, state: int) -> None:
        r = 2.0 * self.layout.eye_radius
        skin = self._skin_eye
        lw = max(1, round(0.18 * r))
        for cx, cy in self.layout.eye_centers:
            ex, ey = tx(cx, cy)
            lid = (ex - 1.2 * r, ey - 1.04 * r, ex + 1.2 * r, ey + 1.02 * r)
            if state == 2:   # closed: skin over the whole eye, a downward-curved lash line and a crease
                d.ellipse(lid, fill=skin)
                pts = _sag(ex, ey + 0.05 * r, 1.05 * r, 0.32 * r, 13)
                d.line(pts, fill=_LASH, width=lw, joint="curve")
                for t, (px, py) in zip((-0.6, 0.0, 0.6), pts[2::4]):
                    d.line((px, py, px + t * 0.25 * r, py + 0.28 * r), fill=_LASH, width=max(1, lw // 2))
                d.line(_sag(ex, ey - 0.38 * r, 0.8 * r, 0.12 * r, 9), fill=shade(skin, 0.8), width=max(1, lw // 2),
                       joint="curve")
            else:            # half closed: the upper lid comes down to the eye's middle
                mask = Image.new("L", im.size, 0)
                md = ImageDraw.Draw(mask)
                md.ellipse(lid, fill=255)
                md.rectangle((0, ey + 0.02 * r, im.size[0], im.size[1]), fill=0)
                im.paste(skin, (0, 0, *im.size), mask)
                d.line(_sag(ex, ey + 0.02 * r, 1.025 * r, 0.1 * r, 11), fill=_LASH, width=lw, joint="curve")

    # ---------------------------------------------------------------------------------------- subtitles
    def _subtitle_pages(self, subtitle: str, speaker: str, n: int) -> tuple[list[_Band | None], np.ndarray]:
        """Split the subtitle into <=2-line pages; returns (one RGBA band + frame position per page, page per frame).
        Pages get frames in proportion to their character count."""
        text = " ".join(str(subtitle).split())
        if not text:
            return [None], np.zeros(n, np.intp)
        H, W = self.portrait.shape[:2]
        size = max(8, round(min(H, 1.25 * W) / 20))   # ~H/20 on landscape frames
        fnt = font(size)
        pad_x, pad_y, lh = round(0.7 * size), round(0.35 * size), round(1.3 * size)
        prefix = f"{' '.join(str(speaker).split())}: " if str(speaker).strip() else ""
        pw = fnt.getlength(prefix)
        avail = 0.9 * W - 2 * pad_x
        if pw > 0.45 * avail:
            prefix, pw = "", 0.0
        lines = wrap_text(text, fnt, max(size, avail - pw))
        pages = [lines[i:i + 2] for i in range(0, len(lines), 2)]
        cum = np.cumsum([sum(len(x) + 1 for x in pg) for pg in pages], dtype=np.float64)
        page_of = np.searchsorted(cum / cum[-1], (np.arange(n) + 0.5) / max(1, n), side="right")
        page_of = np.minimum(page_of, len(pages) - 1).astype(np.intp)
        bands: list[_Band | None] = []
        stroke = max(1, size // 14)
        for pg in pages:
            widths = [fnt.getlength(x) + (pw if j == 0 else 0) for j, x in enumerate(pg)]
            bw = min(W, int(max(widths) + 2 * pad_x))
            bh = min(H, len(pg) * lh + 2 * pad_y)
            band = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
            d = ImageDraw.Draw(band)
            d.rounded_rectangle((0, 0, bw - 1, bh - 1), radius=max(2, size // 2), fill=(10, 10, 16, 165))
            for j, line in enumerate(pg):
                x = (bw - widths[j]) / 2
                y = pad_y + j * lh + lh / 2
                if j == 0 and prefix:
                    d.text((x, y), prefix, font=fnt, fill=(255, 208, 96, 255), anchor="lm",
                           stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
                    x += pw
                d.text((x, y), line, font=fnt, fill=(255, 255, 255, 255), anchor="lm", stroke_width=stroke,
                       stroke_fill=(0, 0, 0, 255))
            bands.append((np.asarray(band), (W - bw) // 2, max(0, H - bh - round(0.035 * H))))
        return bands, page_of

    # ---------------------------------------------------------------------------------------- render
    def render(self, mouth_open: np.ndarray, *, subtitle: str = "", speaker: str = "", blink_seed: int = 0,
               start_frame: int = 0, fps: float = 25.0, end_frame: int | None = None,
               context: tuple[np.ndarray | None, np.ndarray | None] | None = None) -> np.ndarray:
        """Render ``len(mouth_open)`` frames. ``mouth_open``: float (N,) in [0, 1] per frame (0 closed, 1 wide
        open; quantised to ``levels``). Blinks are a function of ``blink_seed`` and the absolute frame number
        ``start_frame + i`` at ``fps`` frames/s (see :func:`blink_states`). ``subtitle`` is burned in at the bottom
        on a translucent band, wrapped to <= 2 lines per page, pages shown for their share of the N frames;
        ``speaker`` prefixes it. Returns uint8 (N, H, W, 3).

        With layers, the head moves (:func:`head_motion`): a function of ``blink_seed``, the absolute frame number
        and the envelope ``mouth_open`` (the nod), at rest at frame 0 and at ``end_frame`` (the end of the piece, when
        known). ``context`` = (envelope of the frames just before the clip, of the frames just after) keeps the nod
        continuous across a split clip (missing context counts as silence)."""
        m = np.nan_to_num(np.asarray(mouth_open, dtype=np.float32).reshape(-1), nan=0.0)
        n = int(m.shape[0])
        H, W = self.portrait.shape[:2]
        out = np.empty((n, H, W, 3), np.uint8)
        if n == 0:
            return out
        lv = np.clip(np.rint(m * (self.levels - 1)), 0, self.levels - 1).astype(np.intp)
        eyes = blink_states(n, start_frame=start_frame, fps=fps, seed=blink_seed)
        bands, page_of = self._subtitle_pages(subtitle, speaker, n)
        if self._rig is not None:
            before, after = context if context is not None else (None, None)
            drive = nod_drive(m, fps=fps, before=before, after=after)
            motion = head_motion(n, start_frame=start_frame, fps=fps, seed=blink_seed, drive=drive,
                                 end_frame=end_frame, unit=self._rig.unit)
            self._rig.render(out, motion, lv, eyes, bands, page_of)
            return out
        mx0, my0, mx1, my1 = self.mouth_box
        ex0, ey0, ex1, ey1 = self.eye_box
        for p, band in enumerate(bands):
            sel = page_of == p if len(bands) > 1 else np.ones(n, bool)
            if not sel.any():
                continue
            if band is None:
                base, mouths, lids = self.portrait, self.mouth_patches, self.eye_patches
            else:   # composite the page band once into the base frame and into any patch it overlaps
                base = _blend(self.portrait, 0, 0, *band)
                mouths = [_blend(q, mx0, my0, *band) for q in self.mouth_patches]
                lids = [_blend(q, ex0, ey0, *band) for q in self.eye_patches]
            idx = np.flatnonzero(sel)
            for i in idx:
                out[i] = base
            for level in range(1, self.levels):
                k = idx[lv[idx] == level]
                if k.size and mx1 > mx0 and my1 > my0:
                    out[k, my0:my1, mx0:mx1] = mouths[level]
            for state in (1, 2):
                k = idx[eyes[idx] == state]
                if k.size and ex1 > ex0 and ey1 > ey0:
                    out[k, ey0:ey1, ex0:ex1] = lids[state]
        return out


class _Sprite:
    """The person (or a patched crop of it) reduced to the frame grid at one sub-pixel phase."""

    __slots__ = ("pm", "a", "u8", "opaque", "ey", "ex", "pm_edge", "a_edge")

    def __init__(self, reduced: np.ndarray, *, edges: bool = True) -> None:
        self.pm = np.ascontiguousarray(reduced[..., :3])
        self.a = np.ascontiguousarray(reduced[..., 3])
        if edges:
            self.u8 = (self.pm + np.float32(0.5)).astype(np.uint8)      # == blend_person where a == 1 and V == 1
            self.opaque = self.a == 1.0
            self.ey, self.ex = np.nonzero((self.a > 0) & (self.a < 1))
            self.pm_edge, self.a_edge = self.pm[self.ey, self.ex], self.a[self.ey, self.ex]


class _Rig:
    """The layered (moving-head) renderer of a :class:`HeadAnimator`. Works on a fixed frame region ``box`` =
    (y0, y1, x0, x1): the person's bounding box grown by the motion range, clipped to the frame and to the rows where
    the person can show (not the desk). Offsets are in 1/scale px: integer part (ix, iy) and phase (px, py)."""

    def __init__(self, anim: HeadAnimator, person: np.ndarray, backdrop: np.ndarray, amount: float) -> None:
        pl, bd = np.asarray(person), np.asarray(backdrop)
        H, W = anim.portrait.shape[:2]
        s = pl.shape[0] // H if pl.ndim == 3 else 0
        if bd.shape != (H, W, 4) or s < 1 or pl.shape != (s * H, s * W, 4):
            raise ValueError(f"backdrop {bd.shape} must be RGBA {H}x{W}, person {pl.shape} RGBA at a multiple of it")
        self.s, self.H, self.W = s, H, W
        self.unit = min(H, 1.25 * W) / 400.0 * max(0.0, float(amount))
        self.mx, self.my = int(np.ceil(MAX_DX * self.unit)) + 1, int(np.ceil(MAX_DY * self.unit)) + 1
        self.scene = np.ascontiguousarray(bd[..., :3])
        self.box: tuple[int, int, int, int] | None = None
        found = Image.fromarray(np.ascontiguousarray(pl[..., 3])).getbbox()   # the person, in layer px
        if found is None:
            return
        y0, y1 = max(0, found[1] // s - self.my), min(H, -(-found[3] // s) + 1 + self.my)
        x0, x1 = max(0, found[0] // s - self.mx), min(W, -(-found[2] // s) + 1 + self.mx)
        open_ = bd[y0:y1, x0:x1, 3] > 0
        rows, cols = np.flatnonzero(open_.any(axis=1)), np.flatnonzero(open_.any(axis=0))
        if rows.size == 0:
            return
        y0, y1, x0, x1 = y0 + rows[0], y0 + rows[-1] + 1, x0 + cols[0], x0 + cols[-1] + 1
        self.box = (int(y0), int(y1), int(x0), int(x1))
        c, b, v = (np.ascontiguousarray(q[y0:y1, x0:x1]) for q in backdrop_arrays(bd))
        self.c, self.b, self.v = c, b, v
        self.c8 = np.ascontiguousarray(self.scene[y0:y1, x0:x1])
        alpha = bd[y0:y1, x0:x1, 3]
        self.vfull = alpha == 255
        self.sy, self.sx = np.nonzero((alpha > 0) & (alpha < 255))
        self.s_c, self.s_b, self.s_v = c[self.sy, self.sx], b[self.sy, self.sx], v[self.sy, self.sx]
        # the person at every phase over the region grown by the motion range
        win = (y0 - self.my, y1 + self.my, x0 - self.mx, x1 + self.mx)
        Y0, Y1 = max(0, s * win[0] - s), min(s * H, s * win[1])
        X0, X1 = max(0, s * win[2] - s), min(s * W, s * win[3])
        layer = person_premultiplied(pl[Y0:Y1, X0:X1])
        self.phases = [(px, py) for py in range(s) for px in range(s)]
        self.sprites = {ph: _Sprite(reduce_phase(layer, s, ph, win, origin=(Y0, X0))) for ph in self.phases}
        # mouth and eyelid patches drawn on the person layer, per phase: (window (y0, y1, x0, x1), {phase: sprite})
        self.mouths = [None] + [self._patch(pl, anim.mouth_box, lambda d, im, tx, o=lv / (anim.levels - 1):
                                            anim._draw_mouth(d, tx, o)) for lv in range(1, anim.levels)]
        self.lids = [None] + [self._patch(pl, anim.eye_box, lambda d, im, tx, st=state: anim._draw_lids(d, im, tx, st))
                              for state in (1, 2)]

    def _patch(self, pl: np.ndarray, box: _Box, fn: Callable) -> tuple[_Box, dict] | None:
        """Draw ``fn(draw, image, tx)`` on the person layer's colour over the frame box ``box`` (at 2x when the layer
        is 1x, like :meth:`HeadAnimator._paint`), then reduce the patched crop at every phase."""
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            return None
        s, q = self.s, max(2, self.s)
        crop = Image.fromarray(np.ascontiguousarray(pl[s * y0:s * y1, s * x0:s * x1, :3]))
        im = crop.resize(((x1 - x0) * q, (y1 - y0) * q), Image.NEAREST) if q != s else crop
        d = ImageDraw.Draw(im, "RGBA")
        fn(d, im, lambda x, y: ((x - x0) * float(q), (y - y0) * float(q)))
        if q != s:
            im = im.reduce(q // s)
        Y0, X0 = max(0, s * (y0 - 1)), max(0, s * (x0 - 1))
        patched = pl[Y0:min(s * self.H, s * (y1 + 1)), X0:min(s * self.W, s * (x1 + 1))].copy()
        patched[s * y0 - Y0:s * y1 - Y0, s * x0 - X0:s * x1 - X0, :3] = np.asarray(im)
        layer = person_premultiplied(patched)
        win = (y0, min(self.H, y1 + 1), x0, min(self.W, x1 + 1))
        return win, {ph: _Sprite(reduce_phase(layer, s, ph, win, origin=(Y0, X0)), edges=False)
                     for ph in self.phases}

    def region(self, ix: int, iy: int, ph: tuple[int, int]) -> np.ndarray:
        """The region ``box`` with the person shifted by (ix, iy) px + ``ph`` / scale: uint8 (h, w, 3)."""
        sp = self.sprites[ph]
        y0, y1, x0, x1 = self.box  # type: ignore[misc]
        h, w = y1 - y0, x1 - x0
        oy, ox = self.my - iy, self.mx - ix
        res = self.c8.copy()
        m = sp.opaque[oy:oy + h, ox:ox + w] & self.vfull
        np.copyto(res, sp.u8[oy:oy + h, ox:ox + w], where=m[..., None])
        ey, ex = sp.ey - oy, sp.ex - ox
        ok = (ey >= 0) & (ey < h) & (ex >= 0) & (ex < w)
        pe, ae = sp.pm_edge, sp.a_edge
        if not ok.all():
            ey, ex, pe, ae = ey[ok], ex[ok], pe[ok], ae[ok]
        res[ey, ex] = blend_person(self.c[ey, ex], self.b[ey, ex], self.v[ey, ex], pe, ae)
        if self.sy.size:
            ty, tx = self.sy + oy, self.sx + ox
            res[self.sy, self.sx] = blend_person(self.s_c, self.s_b, self.s_v, sp.pm[ty, tx], sp.a[ty, tx])
        return res

    def patch(self, patch: tuple[_Box, dict], ix: int, iy: int, ph: tuple[int, int]) -> tuple[_Box, np.ndarray] | None:
        """A patch composited at offset (ix, iy) + ``ph`` / scale: ((y0, y1, x0, x1) frame window, uint8 pixels)."""
        (wy0, wy1, wx0, wx1), sprites = patch
        sp = sprites[ph]
        y0, y1, x0, x1 = self.box  # type: ignore[misc]
        a0, a1, b0, b1 = max(wy0 + iy, y0), min(wy1 + iy, y1), max(wx0 + ix, x0), min(wx1 + ix, x1)
        if a0 >= a1 or b0 >= b1:
            return None
        py0, px0 = a0 - iy - wy0, b0 - ix - wx0
        r = (slice(a0 - y0, a1 - y0), slice(b0 - x0, b1 - x0))
        p = (slice(py0, py0 + a1 - a0), slice(px0, px0 + b1 - b0))
        return (a0, a1, b0, b1), blend_person(self.c[r], self.b[r], self.v[r], sp.pm[p], sp.a[p])

    def render(self, out: np.ndarray, motion: np.ndarray, lv: np.ndarray, eyes: np.ndarray,
               bands: list[_Band | None], page_of: np.ndarray) -> None:
        """Fill ``out`` (n, H, W, 3): the scene (+ subtitle band) per frame, then per distinct (page, offset, phase)
        the composited person region, then per distinct (page, offset, phase, level) the mouth / eyelid patches."""
        n, s = out.shape[0], self.s
        q = np.rint(motion * s).astype(np.int64)
        q[:, 0] = np.clip(q[:, 0], -s * (self.mx - 1), s * (self.mx - 1))
        q[:, 1] = np.clip(q[:, 1], -s * (self.my - 1), s * (self.my - 1))
        off = np.floor_divide(q, s)
        ph = q - off * s
        bases = [self.scene if band is None else _blend(self.scene, 0, 0, *band) for band in bands]
        for i in range(n):
            out[i] = bases[page_of[i]]
        if self.box is None:
            return
        y0, y1, x0, x1 = self.box
        keys, inverse = np.unique(np.column_stack([page_of, off, ph]), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for u, (page, ix, iy, px, py) in enumerate(keys.tolist()):
            frames = np.flatnonzero(inverse == u)
            band = bands[page]
            res = self.region(ix, iy, (px, py))
            if band is not None:
                res = _blend(res, x0, y0, *band)
            out[frames, y0:y1, x0:x1] = res
            for patches, state in ((self.mouths, lv), (self.lids, eyes)):
                st = state[frames]
                for level in np.unique(st[st > 0]).tolist():
                    if patches[level] is None:
                        continue
                    got = self.patch(patches[level], ix, iy, (px, py))
                    if got is None:
                        continue
                    (a0, a1, b0, b1), pix = got
                    if band is not None:
                        pix = _blend(pix, b0, a0, *band)
                    out[frames[st == level], a0:a1, b0:b1] = pix


def bench(width: int = 640, height: int = 400, frames: int = 500, *, layers: bool = True) -> float:
    """Render ``frames`` frames of a ``width`` x ``height`` talking head (with a subtitle; with head motion unless
    ``layers`` is False) and return frames/s (wall clock of :meth:`HeadAnimator.render` alone, single thread)."""
    from .art import render_person_layers, render_studio

    studio = render_studio(width, height, title="Bench Show")
    lay = render_person_layers(studio, name="Ada", speaker_index=0)
    extra = {"person": np.asarray(lay.person), "backdrop": np.asarray(lay.backdrop)} if layers else {}
    anim = HeadAnimator(np.asarray(lay.image), lay.layout, **extra)
    t = np.arange(frames)
    mouth = (0.5 + 0.5 * np.sin(t * 0.7)).astype(np.float32)
    anim.render(mouth[:10], subtitle="warm up")
    text = "Welcome back to the show, today we talk about streaming video pipelines and why latency matters so much."
    t0 = time.perf_counter()
    anim.render(mouth, subtitle=text, speaker="Ada", start_frame=1000)
    return frames / (time.perf_counter() - t0)


if __name__ == "__main__":
    import sys

    w, h, n = (int(v) for v in (sys.argv[1:4] + ["640", "400", "500"][len(sys.argv[1:4]):]))
    for moving in (False, True):
        print(f"HeadAnimator.render {w}x{h}{' with head motion' if moving else ''}: "
              f"{bench(w, h, n, layers=moving):.0f} frames/s")
