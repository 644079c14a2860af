"""Burned-in subtitles of the talking head (:class:`stages.art.head.HeadAnimator`): the clip's words wrapped to
<= 2-line pages, each drawn once as a translucent RGBA band with the speaker's name in front, and the frames each
page is shown on.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .drawing import font

__all__ = ["Band", "subtitle_pages", "wrap_text"]

Band = tuple[np.ndarray, int, int]   # RGBA band (h, w, 4) uint8 and its top-left frame px (x, y)


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


def subtitle_pages(subtitle: str, speaker: str, n: int, width: int,
                   height: int) -> tuple[list[Band | None], np.ndarray]:
    """Split the subtitle into <=2-line pages for a ``width`` x ``height`` frame of ``n`` frames; returns (one RGBA
    band + frame position per page, page per frame). Pages get frames in proportion to their character count."""
    text = " ".join(str(subtitle).split())
    if not text:
        return [None], np.zeros(n, np.intp)
    H, W = int(height), int(width)
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
    bands: list[Band | None] = []
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
