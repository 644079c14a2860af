"""Procedural podcast-studio backdrop for the CPU quality rung (:func:`render_studio`).

Drawn with Pillow at ``SS`` x the output size and box-downscaled (antialiasing), fully deterministic in its inputs
(see :mod:`stages.art.drawing`). The speaker of :mod:`stages.art.portrait` sits behind the desk, whose top edge is at
``DESK_TOP`` of the frame height. Coordinates are pixels, x right, y down.
"""
from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .drawing import RGB, SS, _c, _ellipsize, _hash, font, mix, shade

__all__ = ["DESK_TOP", "render_studio"]

DESK_TOP = 0.86   # desk top edge as a fraction of frame height (the speaker sits behind it)


def _glow(arr: np.ndarray, cx: float, cy: float, radius: float, color: RGB, strength: float) -> None:
    """Add a gaussian light blob to a float HxWx3 array in place (only its bounding window is touched)."""
    h, w = arr.shape[:2]
    x0, x1 = max(0, int(cx - 2.5 * radius)), min(w, int(cx + 2.5 * radius) + 1)
    y0, y1 = max(0, int(cy - 2.5 * radius)), min(h, int(cy + 2.5 * radius) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    # exp(-(dx² + dy²) / r²) = exp(-dx² / r²) * exp(-dy² / r²): two 1-D exponentials instead of one per pixel
    gy = np.exp(-((yy - cy) ** 2) / (radius * radius)).astype(np.float32)
    gx = np.exp(-((xx - cx) ** 2) / (radius * radius)).astype(np.float32)
    g = gy * gx
    window = arr[y0:y1, x0:x1]
    for c, value in enumerate(np.asarray(color, np.float32) * np.float32(strength)):   # no (h, w, 3) temporary
        window[..., c] += g * value


def _fit_font(text: str, size: float, max_w: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    size = int(size)
    while size > 8 and font(size).getlength(text) > max_w:
        size = int(size * 0.9)
    return font(size)


_THEMES: tuple[tuple[RGB, RGB, RGB], ...] = (   # wall top, wall bottom, accent
    ((16, 36, 54), (40, 86, 100), (255, 168, 72)),
    ((38, 24, 58), (94, 58, 108), (86, 224, 214)),
    ((18, 42, 38), (56, 98, 78), (255, 204, 96)),
    ((20, 28, 62), (58, 74, 132), (255, 112, 150)),
    ((56, 32, 34), (120, 72, 62), (110, 206, 255)),
)
_BOOKS: tuple[RGB, ...] = ((200, 70, 60), (230, 180, 70), (70, 130, 190), (90, 160, 110), (220, 220, 210),
                           (150, 90, 160))


def _hexagon(x: float, y: float, r: float) -> list[tuple[float, float]]:
    return [(x + r * math.cos(a), y + r * math.sin(a)) for a in (j * math.pi / 3 for j in range(6))]


def render_studio(width: int, height: int, *, title: str, description: str | None = None, seed: int = 0) -> Image.Image:
    """A podcast studio backdrop, RGB ``width`` x ``height`` px: gradient back wall with wood slats, acoustic
    hexagon panels, a shelf with books and plants, pendant lamps, an ON AIR light, a neon sign with the show
    title (and description), a desk with a microphone and a mug. Deterministic in (size, title, description, seed)."""
    W, H = int(width), int(height)
    w2, h2 = W * SS, H * SS
    rng = random.Random(_hash("studio", W, H, title, description, seed))
    top, bottom, accent = _THEMES[rng.randrange(len(_THEMES))]
    flip = rng.random() < 0.5
    fx = (lambda x: (1 - x) * w2) if flip else (lambda x: x * w2)   # fraction -> 2x px, mirrored if flipped
    dy, white = DESK_TOP * h2, (255, 255, 255)
    lw = lambda f: max(1, int(f * h2))  # noqa: E731  (line width as a fraction of height)

    t = np.linspace(0.0, 1.0, h2, dtype=np.float32)[:, None, None]
    arr = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    img = Image.fromarray(np.broadcast_to(arr.clip(0, 255).astype(np.uint8), (h2, w2, 3)))
    d = ImageDraw.Draw(img, "RGBA")
    wood = mix((128, 86, 56), bottom, 0.15)      # wood slats behind the speaker
    x, sw, gap, i = 0.27 * w2, 0.022 * w2, 0.007 * w2, 0
    while x + sw <= 0.73 * w2:
        d.rectangle((x, 0, x + sw, dy), fill=shade(wood, (0.92, 1.0, 1.08)[i % 3]))
        d.rectangle((x + sw, 0, x + sw + gap, dy), fill=shade(wood, 0.45))
        x, i = x + sw + gap, i + 1
    R = 0.05 * h2                                # hexagon acoustic panels on one side
    for col in range(3):
        for row in range(4):
            if rng.random() < 0.2:
                continue
            hx, hy = 0.055 * w2 + col * 1.55 * R + R, 0.34 * h2 + row * 1.8 * R + (0.9 * R if col % 2 else 0)
            hx = (w2 - hx) if flip else hx
            c = mix(bottom, accent, 0.35) if rng.random() < 0.3 else shade(bottom, rng.uniform(0.75, 1.2))
            d.polygon(_hexagon(hx, hy, R), fill=shade(c, 0.7))
            d.polygon(_hexagon(hx, hy, 0.8 * R), fill=c)
    for sy in (0.40, 0.62):                      # shelves with books and a plant on the other side
        (xa, xb), yy = sorted((fx(0.77), fx(0.97))), sy * h2
        bx = xa + 0.01 * w2
        while bx < xb - 0.09 * w2:
            bw, bh = rng.uniform(0.011, 0.02) * w2, rng.uniform(0.07, 0.11) * h2
            if rng.random() >= 0.15:
                c = _BOOKS[rng.randrange(len(_BOOKS))]
                d.rectangle((bx, yy - bh, bx + bw, yy), fill=shade(c, 0.8))
                d.rectangle((bx + bw * 0.2, yy - bh * 0.8, bx + bw * 0.8, yy - bh * 0.72), fill=shade(c, 1.15))
            bx += bw + 0.002 * w2
        px, pot = xb - 0.05 * w2, 0.025 * w2
        for j in range(7):
            a = -math.pi / 2 + (j - 3) * 0.42
            d.ellipse(_c(px + math.cos(a) * 0.04 * h2, yy - 0.06 * h2 + math.sin(a) * 0.05 * h2, 0.022 * h2, 0.03 * h2),
                      fill=(64 + 12 * (j % 3), 140, 84))
        py = yy - 0.055 * h2
        d.polygon([(px - pot, py), (px + pot, py), (px + 0.75 * pot, yy), (px - 0.75 * pot, yy)], fill=(196, 110, 72))
        d.rectangle((xa, yy, xb, yy + 0.014 * h2), fill=shade(wood, 1.2))
    arr = np.asarray(img, np.float32).copy()     # lights: a backlight and two pendant lamps
    _glow(arr, 0.5 * w2, 0.42 * h2, 0.42 * h2, mix(accent, white, 0.5), 0.32)
    lamps = (fx(0.14), fx(0.86))
    for lx in lamps:
        _glow(arr, lx, 0.2 * h2, 0.2 * h2, (255, 226, 170), 0.35)
    img = Image.fromarray(np.minimum(arr, 255, out=arr).astype(np.uint8))   # (light only adds: arr >= 0)
    d = ImageDraw.Draw(img, "RGBA")
    for lx in lamps:
        d.line((lx, 0, lx, 0.1 * h2), fill=(30, 30, 34), width=lw(0.004))
        d.pieslice(_c(lx, 0.14 * h2, 0.05 * h2), 180, 360, fill=shade(accent, 0.8))
        d.ellipse(_c(lx, 0.14 * h2, 0.022 * h2, 0.015 * h2), fill=(255, 246, 220))
    # neon title sign (+ description) with a blurred glow
    tfont, dfont = _fit_font(title, 0.075 * h2, 0.58 * w2), font(int(0.032 * h2))
    tw = tfont.getlength(title)
    desc = _ellipsize(description.strip(), dfont, max(tw, 0.56 * w2)) if description and description.strip() else ""
    sw_, sh, sy0 = max(tw, dfont.getlength(desc)) + 0.06 * w2, 0.11 * h2 + (0.045 * h2 if desc else 0), 0.035 * h2
    box, neon, rad = ((w2 - sw_) / 2, sy0, (w2 + sw_) / 2, sy0 + sh), mix(accent, white, 0.55), 0.025 * h2
    glow = Image.new("RGB", img.size, (0, 0, 0))
    gd = ImageDraw.Draw(glow)
    gd.rounded_rectangle(box, radius=rad, outline=accent, width=max(2, int(0.012 * h2)))
    gd.text((w2 / 2, sy0 + 0.058 * h2), title, font=tfont, fill=accent, anchor="mm")
    pad = int(0.05 * h2)
    crop = (max(0, int(box[0]) - pad), max(0, int(box[1]) - pad),
            min(w2, int(box[2]) + pad), min(h2, int(box[3]) + pad))
    d.rounded_rectangle(box, radius=rad, fill=(12, 12, 22, 215))
    region = np.asarray(img.crop(crop), np.float32)
    region += 1.6 * np.asarray(glow.crop(crop).filter(ImageFilter.GaussianBlur(0.018 * h2)), np.float32)
    img.paste(Image.fromarray(region.clip(0, 255).astype(np.uint8)), crop[:2])
    d = ImageDraw.Draw(img, "RGBA")
    d.rounded_rectangle(box, radius=rad, outline=neon, width=lw(0.005))
    d.text((w2 / 2, sy0 + 0.058 * h2), title, font=tfont, fill=neon, anchor="mm")
    if desc:
        d.text((w2 / 2, sy0 + 0.122 * h2), desc, font=dfont, fill=(220, 220, 230), anchor="mm")
    ob = _c(fx(0.87), 0.245 * h2, 0.065 * w2, 0.03 * h2)     # ON AIR light under a lamp
    d.rounded_rectangle(ob, radius=0.01 * h2, fill=(70, 14, 18), outline=(255, 70, 70), width=lw(0.005))
    d.text((fx(0.87), 0.245 * h2), "ON AIR", font=_fit_font("ON AIR", 0.04 * h2, 0.11 * w2), fill=(255, 130, 120),
           anchor="mm")
    # desk: top surface, front with an LED strip; a mic and a mug on it
    for y0, y1, c in ((0, 1, (38, 32, 38)), (0, 0.03, (176, 126, 84)), (0, 0.006, (214, 170, 124)),
                      (0.03, 0.036, accent), (0.036, 0.06, shade(accent, 0.35))):
        d.rectangle((0, dy + y0 * h2, w2, dy + y1 * h2), fill=c)
    mx = fx(0.88)
    d.rectangle((mx - 0.004 * h2, dy - 0.1 * h2, mx + 0.004 * h2, dy), fill=(50, 50, 56))
    d.ellipse(_c(mx, dy, 0.04 * h2, 0.011 * h2), fill=(44, 44, 50))
    d.rounded_rectangle(_c(mx, dy - 0.155 * h2, 0.028 * h2, 0.065 * h2), radius=0.028 * h2, fill=(58, 58, 66),
                        outline=(120, 120, 132), width=lw(0.004))
    for gy in np.linspace(dy - 0.2 * h2, dy - 0.15 * h2, 4):
        d.line((mx - 0.022 * h2, gy, mx + 0.022 * h2, gy), fill=(110, 110, 122), width=lw(0.003))
    gx, mug = fx(0.2), mix(accent, white, 0.3)
    d.rounded_rectangle((gx - 0.03 * h2, dy - 0.065 * h2, gx + 0.03 * h2, dy + 0.004 * h2), radius=0.008 * h2, fill=mug)
    d.arc(_c(gx + 0.0325 * h2, dy - 0.0325 * h2, 0.0175 * h2), 270, 90, fill=mug, width=lw(0.007))
    arr = np.array(img, np.float32)              # soft vignette
    yy, xx = (v.astype(np.float32) for v in np.ogrid[-1:1:h2 * 1j, -1:1:w2 * 1j])
    vig = np.float32(1.0) - np.float32(0.28) * np.minimum((xx * xx + yy * yy) / np.float32(2.0), 1) ** np.float32(1.3)
    arr *= vig[..., None]                        # (0 < vig <= 1: stays in 0..255, no clip needed)
    return Image.fromarray(arr.astype(np.uint8)).reduce(SS)
