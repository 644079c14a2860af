"""Talking-head renderer of the CPU quality rung: animate one portrait from per-frame mouth openness.

Everything expensive is pre-rendered: ``levels`` mouth patches (closed -> wide open) and two eyelid patches (half
and fully closed) at construction, one composited base frame per subtitle page per :meth:`HeadAnimator.render`
call. Per frame the work is one base-frame copy plus at most two small patch pastes (numpy slicing), so a
640x400 clip renders at hundreds of frames/s on one core. Patches are drawn at 2x on a nearest-upscaled crop
and box-downscaled, so pixels they do not touch stay bit-identical to the portrait.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .art import FaceLayout, draw_mouth, font, shade

__all__ = ["HeadAnimator", "blink_states", "wrap_text", "bench"]

BLINK_PERIOD_S = 3.75   # one blink per slot of this length ...
BLINK_JITTER_S = 0.6    # ... placed at the slot middle +- this, so blinks are 2.55-4.95 s apart
_M64 = (1 << 64) - 1
_LASH = (40, 30, 30)
_Box = tuple[int, int, int, int]
_Band = tuple[np.ndarray, int, int]   # RGBA band (h, w, 4) uint8 and its top-left frame px (x, y)


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
    """Animate one portrait: mouth opening per frame, blinks, subtitles. Construct once per clip (cheap, a few ms),
    or cache per speaker.

    ``portrait`` is HxWx3 uint8 (H, W any size; the layout is in its pixels); ``levels`` mouth patches are
    pre-rendered from closed (level 0, the portrait itself) to wide open (``layout.mouth_max_open`` px)."""

    def __init__(self, portrait: np.ndarray, layout: FaceLayout, *, levels: int = 8) -> None:
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
        self.mouth_patches = [self._crop(self.mouth_box)] + [
            self._paint(self.mouth_box, lambda d, im, tx, o=lv / (self.levels - 1): self._draw_mouth(d, tx, o))
            for lv in range(1, self.levels)]
        self.eye_patches = [self._crop(self.eye_box)] + [
            self._paint(self.eye_box, lambda d, im, tx, s=state: self._draw_lids(d, im, tx, s)) for state in (1, 2)]

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
               start_frame: int = 0, fps: float = 25.0) -> np.ndarray:
        """Render ``len(mouth_open)`` frames. ``mouth_open``: float (N,) in [0, 1] per frame (0 closed, 1 wide
        open; quantised to ``levels``). Blinks are a function of ``blink_seed`` and the absolute frame number
        ``start_frame + i`` at ``fps`` frames/s (see :func:`blink_states`). ``subtitle`` is burned in at the bottom
        on a translucent band, wrapped to <= 2 lines per page, pages shown for their share of the N frames;
        ``speaker`` prefixes it. Returns uint8 (N, H, W, 3)."""
        m = np.nan_to_num(np.asarray(mouth_open, dtype=np.float32).reshape(-1), nan=0.0)
        n = int(m.shape[0])
        H, W = self.portrait.shape[:2]
        out = np.empty((n, H, W, 3), np.uint8)
        if n == 0:
            return out
        lv = np.clip(np.rint(m * (self.levels - 1)), 0, self.levels - 1).astype(np.intp)
        eyes = blink_states(n, start_frame=start_frame, fps=fps, seed=blink_seed)
        bands, page_of = self._subtitle_pages(subtitle, speaker, n)
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


def bench(width: int = 640, height: int = 400, frames: int = 500) -> float:
    """Render ``frames`` frames of a ``width`` x ``height`` talking head (with a subtitle) and return frames/s
    (wall clock of :meth:`HeadAnimator.render` alone, single thread)."""
    from .art import render_portrait, render_studio

    studio = render_studio(width, height, title="Bench Show")
    img, layout = render_portrait(studio, name="Ada", speaker_index=0)
    anim = HeadAnimator(np.asarray(img), layout)
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
    print(f"HeadAnimator.render {w}x{h}: {bench(w, h, n):.0f} frames/s")
