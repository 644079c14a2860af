"""Procedural art for the CPU quality rung: a podcast-studio backdrop and cartoon speaker portraits.

Everything is drawn with Pillow at ``SS`` x the output size and box-downscaled (antialiasing), and is fully
deterministic in its inputs (no global RNG, hashes via blake2b). Coordinates are pixels, x right, y down.
``render_portrait`` returns the frame plus a :class:`FaceLayout` telling ``stages.head`` where to animate.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["FaceLayout", "render_studio", "render_portrait", "draw_mouth", "font", "DESK_TOP"]

SS = 2            # supersampling factor
DESK_TOP = 0.86   # desk top edge as a fraction of frame height (the speaker sits behind it)
RGB = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class FaceLayout:
    """Where the animatable parts of a portrait are, in pixels of the portrait frame (x right, y down)."""
    mouth_center: tuple[int, int]       # centre of the closed lip line
    mouth_width: int                    # corner to corner, px
    mouth_max_open: int                 # max opening height in px
    eye_centers: tuple[tuple[int, int], tuple[int, int]]
    eye_radius: int                     # horizontal radius of the eye white, px
    skin_rgb: tuple[int, int, int]
    lip_rgb: tuple[int, int, int]

    def to_dict(self) -> dict:
        """Plain JSON/msgpack-able dict (lists of ints)."""
        return {"mouth_center": list(self.mouth_center), "mouth_width": self.mouth_width,
                "mouth_max_open": self.mouth_max_open, "eye_centers": [list(e) for e in self.eye_centers],
                "eye_radius": self.eye_radius, "skin_rgb": list(self.skin_rgb), "lip_rgb": list(self.lip_rgb)}

    @classmethod
    def from_dict(cls, d: dict) -> "FaceLayout":
        """Inverse of :meth:`to_dict` (accepts lists or tuples)."""
        t = lambda v: tuple(int(x) for x in v)  # noqa: E731
        return cls(mouth_center=t(d["mouth_center"]), mouth_width=int(d["mouth_width"]),
                   mouth_max_open=int(d["mouth_max_open"]),
                   eye_centers=(t(d["eye_centers"][0]), t(d["eye_centers"][1])),
                   eye_radius=int(d["eye_radius"]), skin_rgb=t(d["skin_rgb"]), lip_rgb=t(d["lip_rgb"]))


# ----------------------------------------------------------------------------------------------- helpers

def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in scalable font at ``size`` px (falls back to the bitmap default on old Pillow)."""
    try:
        return ImageFont.load_default(size=max(6, int(size)))
    except (TypeError, OSError, ImportError, AttributeError):
        return ImageFont.load_default()


def shade(c: RGB, f: float) -> RGB:
    """Scale a colour's brightness by ``f`` (clipped to 0..255)."""
    return tuple(int(max(0, min(255, round(v * f)))) for v in c)  # type: ignore[return-value]


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend a -> b by ``t``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _qbez(p0, p1, p2, n: int = 16) -> list[tuple[float, float]]:
    return [((1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t * t * p2[0],
             (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t * t * p2[1]) for t in (i / n for i in range(n + 1))]


def _glow(arr: np.ndarray, cx: float, cy: float, radius: float, color: RGB, strength: float) -> None:
    """Add a gaussian light blob to a float HxWx3 array in place (only its bounding window is touched)."""
    h, w = arr.shape[:2]
    x0, x1 = max(0, int(cx - 2.5 * radius)), min(w, int(cx + 2.5 * radius) + 1)
    y0, y1 = max(0, int(cy - 2.5 * radius)), min(h, int(cy + 2.5 * radius) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    g = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (radius * radius))).astype(np.float32)
    arr[y0:y1, x0:x1] += g[..., None] * (np.asarray(color, np.float32) * strength)


def _fit_font(text: str, size: float, max_w: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    size = int(size)
    while size > 8 and font(size).getlength(text) > max_w:
        size = int(size * 0.9)
    return font(size)


def _ellipsize(text: str, fnt, max_w: float) -> str:
    if fnt.getlength(text) <= max_w:
        return text
    while text and fnt.getlength(text + "…") > max_w:
        text = text[:-1]
    return text + "…"


# ----------------------------------------------------------------------------------------------- studio

_THEMES: tuple[tuple[RGB, RGB, RGB], ...] = (   # wall top, wall bottom, accent
    ((16, 36, 54), (40, 86, 100), (255, 168, 72)),
    ((38, 24, 58), (94, 58, 108), (86, 224, 214)),
    ((18, 42, 38), (56, 98, 78), (255, 204, 96)),
    ((20, 28, 62), (58, 74, 132), (255, 112, 150)),
    ((56, 32, 34), (120, 72, 62), (110, 206, 255)),
)
_BOOKS: tuple[RGB, ...] = ((200, 70, 60), (230, 180, 70), (70, 130, 190), (90, 160, 110), (220, 220, 210),
                           (150, 90, 160))


def _c(x: float, y: float, rx: float, ry: float | None = None) -> tuple[float, float, float, float]:
    """Box of half-size (rx, ry) centred on (x, y)."""
    return (x - rx, y - (rx if ry is None else ry), x + rx, y + (rx if ry is None else ry))


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
    img = Image.fromarray(np.broadcast_to(arr, (h2, w2, 3)).clip(0, 255).astype(np.uint8))
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
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
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
    arr = np.asarray(img, np.float32)            # soft vignette
    yy, xx = np.ogrid[-1:1:h2 * 1j, -1:1:w2 * 1j]
    vig = (1.0 - 0.28 * np.clip((xx * xx + yy * yy) / 2.0, 0, 1) ** 1.3).astype(np.float32)
    return Image.fromarray((arr * vig[..., None]).clip(0, 255).astype(np.uint8)).reduce(SS)


# ----------------------------------------------------------------------------------------------- portrait parts

def draw_mouth(d: ImageDraw.ImageDraw, cx: float, cy: float, width: float, open_px: float, lip: RGB, *,
               smile: float = 0.05, n: int = 28) -> None:
    """Draw cartoon lips centred on the closed lip line (cx, cy), ``width`` corner to corner, opening ``open_px``
    high (0 = closed; the jaw drops: 30 % of the opening above the line, 70 % below) with a dark interior, upper
    teeth and a tongue. All values in the draw's pixel units. Shared by the portrait and ``stages.head``."""
    h = max(0.0, float(open_px))
    w = width * (1 - 0.12 * min(1.0, h / max(1.0, 0.42 * width)))
    tu, tl = 0.13 * w * (1 - 0.2 * min(1.0, h / max(1.0, 0.42 * width))), 0.17 * w
    us = [-1 + 2 * i / n for i in range(n + 1)]
    env = [max(0.0, 1 - u * u) ** 0.6 for u in us]
    lenv = [max(0.0, 1 - u * u) ** 0.5 for u in us]
    xs = [cx + u * w / 2 for u in us]
    line = [cy - smile * w * u * u for u in us]
    yu = [y - 0.3 * h * e for y, e in zip(line, env)]
    yl = [y + 0.7 * h * e for y, e in zip(line, env)]
    top = [y - tu * e * (1 - 0.35 * math.exp(-((u / 0.16) ** 2))) for y, e, u in zip(yu, lenv, us)]
    bot = [y + tl * e for y, e in zip(yl, lenv)]

    def band(a: list[float], b: list[float], sel: slice = slice(None)) -> list[tuple[float, float]]:
        x = xs[sel]
        return list(zip(x, a[sel])) + list(zip(x[::-1], b[sel][::-1]))

    d.polygon(band(top, yu), fill=shade(lip, 0.84))
    d.polygon(band(yl, bot), fill=lip)
    hi = [y + 0.45 * tl * e for y, e in zip(yl, lenv)]
    d.line(list(zip(xs, hi))[2 * n // 5: 3 * n // 5 + 1], fill=mix(lip, (255, 255, 255), 0.3) + (110,),
           width=max(1, round(0.03 * w)))
    if h >= 0.5:
        d.polygon(band(yu, yl), fill=(62, 20, 32))
        d.polygon(band(yu, [y + 0.28 * h * e for y, e in zip(yu, env)]), fill=(248, 246, 240))
        k = slice(n // 5, n - n // 5 + 1)
        tongue = [y - 0.32 * h * e * max(0.0, 1 - (u / 0.62) ** 2) ** 0.5 for y, e, u in zip(yl, env, us)]
        d.polygon(band(tongue, yl, k), fill=(204, 92, 102))
    d.line(list(zip(xs, yu)), fill=shade(lip, 0.5), width=max(1, round(0.035 * w)), joint="curve")


def _face_poly(cx: float, cy: float, a: float, b: float, n: float, taper: float,
               m: int = 96) -> list[tuple[float, float]]:
    """Superellipse (exponent n, half-axes a, b) whose lower half narrows by ``taper`` towards the chin."""
    pts = []
    for i in range(m):
        t = 2 * math.pi * i / m
        c, s = math.cos(t), math.sin(t)
        x, y = math.copysign(abs(c) ** (2 / n), c), math.copysign(abs(s) ** (2 / n), s)
        if y > 0:
            x *= 1 - taper * y * y
        pts.append((cx + a * x, cy + b * y))
    return pts


_SKINS: tuple[RGB, ...] = ((255, 222, 196), (242, 194, 160), (224, 170, 128), (196, 138, 98), (158, 104, 72),
                           (112, 74, 52))
_HAIRS: tuple[RGB, ...] = ((38, 32, 34), (78, 50, 34), (230, 190, 112), (188, 188, 194), (146, 56, 42), (196, 100, 46))
_SHIRTS: tuple[RGB, ...] = ((46, 134, 190), (222, 88, 72), (88, 164, 96), (238, 178, 64), (132, 88, 176), (64, 72, 92),
                            (226, 120, 164), (52, 160, 150), (176, 96, 56))
_IRIS: tuple[RGB, ...] = ((104, 64, 40), (66, 44, 32), (70, 124, 176), (80, 134, 84), (134, 102, 52))
_HAIR_STYLES = ("short", "long", "curly", "bob", "bun", "quiff", "buzz")
_SHIRT_STYLES = ("tee", "collar", "vneck", "hoodie")


def _paste_mask(img: Image.Image, color: RGB, draw_fn: Callable[[ImageDraw.ImageDraw], None]) -> None:
    mask = Image.new("L", img.size, 0)
    draw_fn(ImageDraw.Draw(mask))
    img.paste(color, (0, 0, *img.size), mask)


def render_portrait(studio: Image.Image, *, name: str, speaker_index: int,
                    seed: int = 0) -> tuple[Image.Image, FaceLayout]:
    """The studio frame with one cartoon speaker seated behind the desk, head and shoulders, face ~40 % of frame
    height, closed mouth, open eyes, and a name plate lower-left. Appearance comes from a stable hash of
    (name, speaker_index, seed); hair and shirt colours are palette-indexed by ``speaker_index`` so speakers 0, 1, 2
    always differ. Returns (RGB frame of the studio's size, FaceLayout in that frame's pixels)."""
    base = studio.convert("RGB")
    W, H = base.size
    rng = random.Random(_hash("look", name, speaker_index, seed))
    pal, si = _hash("palette", seed), int(speaker_index)
    skin = _SKINS[(rng.randrange(len(_SKINS)) + 2 * si) % len(_SKINS)]
    hair = _HAIRS[(pal % 6 + 2 * si + (si // 3)) % 6]
    shirt = _SHIRTS[((pal >> 8) % 9 + 3 * si + (si // 3)) % 9]
    iris = _IRIS[rng.randrange(len(_IRIS))]
    style = _HAIR_STYLES[(rng.randrange(len(_HAIR_STYLES)) + si) % len(_HAIR_STYLES)]
    shirt_style = _SHIRT_STYLES[rng.randrange(len(_SHIRT_STYLES))]
    n_exp, taper, aspect = rng.uniform(2.0, 2.7), rng.uniform(0.1, 0.3), rng.uniform(0.76, 0.84)
    glasses, phones = rng.random() < 0.4, rng.random() < 0.3
    lip, dark = mix(shade(skin, 0.82), (200, 84, 96), 0.45), shade(skin, 0.7)

    k = SS
    img = base.resize((W * k, H * k), Image.NEAREST)
    d = ImageDraw.Draw(img, "RGBA")
    fh = 0.40 * min(H, W * 1.25) * k * rng.uniform(0.95, 1.05)     # face height (forehead to chin), 2x px
    fw = fh * aspect
    cx, cy = W * k * (0.5 + rng.uniform(-0.025, 0.025)), H * k * 0.47
    F = lambda x0, y0, x1, y1: (cx + x0 * fw, cy + y0 * fh, cx + x1 * fw, cy + y1 * fh)  # noqa: E731  face units
    P = lambda x, y: (cx + x * fw, cy + y * fh)  # noqa: E731
    ol = max(1, round(0.012 * fh))
    ey, ex_off, r = cy - 0.04 * fh, 0.205 * fw, 0.095 * fw
    my, mw = cy + 0.255 * fh, 0.4 * fw * rng.uniform(0.92, 1.06)

    if style == "long":                                      # back hair
        d.rounded_rectangle(F(-0.62, -0.45, 0.62, 0.78), radius=0.3 * fw, fill=hair)
    elif style == "bob":
        d.rounded_rectangle(F(-0.6, -0.45, 0.6, 0.36), radius=0.25 * fw, fill=hair)
    elif style == "curly":
        for j in range(18):
            t = math.pi * (0.95 + 1.1 * j / 17)
            d.ellipse(_c(*P(0.62 * math.cos(t), -0.1 + 0.48 * math.sin(t)), 0.17 * fw), fill=hair)
        d.ellipse(F(-0.66, -0.62, 0.66, 0.25), fill=hair)
    elif style == "bun":
        d.ellipse(F(-0.17, -0.72, 0.17, -0.45), fill=hair, outline=shade(hair, 0.72), width=ol)
    yn = 0.6                                                 # neck base, face units; body / shirt below
    left = _qbez(P(-0.3, yn), P(-1.17, yn + 0.02), P(-1.3, yn + 0.38))
    body = left + [(cx - 1.37 * fw, H * k + 9), (cx + 1.37 * fw, H * k + 9)] + [(2 * cx - x, y) for x, y in left[::-1]]
    d.polygon(body, fill=shirt, outline=shade(shirt, 0.7), width=ol)
    if shirt_style == "hoodie":
        d.ellipse(F(-0.5, yn - 0.14, 0.5, yn + 0.2), fill=shade(shirt, 0.8))
    elif shirt_style == "tee":
        d.ellipse(F(-0.33, yn - 0.12, 0.33, yn + 0.1), fill=shade(shirt, 0.78))
    nk = shade(skin, 0.93)                                   # neck with a chin shadow
    d.rectangle(F(-0.19, 0.25, 0.19, yn), fill=nk)
    d.ellipse(F(-0.19, yn - 0.1, 0.19, yn + 0.06), fill=nk)
    d.ellipse(F(-0.24, 0.32, 0.24, 0.56), fill=shade(skin, 0.78))
    if shirt_style == "vneck":
        d.polygon([P(-0.24, yn - 0.02), P(0.24, yn - 0.02), P(0, yn + 0.26)], fill=shade(shirt, 0.7))
        d.polygon([P(-0.18, yn - 0.02), P(0.18, yn - 0.02), P(0, yn + 0.2)], fill=nk)
    elif shirt_style == "collar":
        d.polygon([P(-0.17, yn - 0.03), P(0.17, yn - 0.03), P(0, yn + 0.16)], fill=nk)
        cc = mix(shirt, (250, 250, 250), 0.75)
        for sg in (-1, 1):
            d.polygon([P(sg * 0.2, yn - 0.08), P(sg * 0.42, yn + 0.1), P(sg * 0.03, yn + 0.18)], fill=cc,
                      outline=shade(cc, 0.75), width=ol)
        for j in range(3):
            d.ellipse(_c(*P(0, yn + 0.28 + 0.14 * j), 0.025 * fw), fill=shade(shirt, 0.6))
    elif shirt_style == "hoodie":
        for sg in (-1, 1):
            d.line((*P(sg * 0.12, yn + 0.04), *P(sg * 0.14, yn + 0.34)), fill=(240, 240, 240), width=2 * ol)
    ear_y = ey + 0.08 * fh                                   # ears, head
    half = fw / 2 * (1 - abs((ear_y - cy) / (fh / 2)) ** n_exp) ** (1 / n_exp)
    for sg in (-1, 1):
        ex = cx + sg * (half + 0.01 * fw)
        d.ellipse(_c(ex, ear_y - 0.01 * fh, 0.085 * fw, 0.11 * fh), fill=skin, outline=dark, width=ol)
        d.arc(_c(ex, ear_y - 0.01 * fh, 0.045 * fw, 0.06 * fh), 180 + sg * 90, 360 + sg * 90, fill=shade(skin, 0.72),
              width=ol * 2)
    d.polygon(_face_poly(cx, cy, fw / 2, fh / 2, n_exp, taper), fill=skin, outline=dark, width=ol)
    vol = {"buzz": 0.015, "bun": 0.03, "quiff": 0.05}.get(style, 0.08) * fh     # front hair: a cap minus the face
    part = {"short": 0.12, "long": 0.0, "quiff": -0.08}.get(style, 0.05) * (1 if rng.random() < 0.5 else -1)

    def cap(md: ImageDraw.ImageDraw) -> None:
        low = (0.28 if style in ("long", "bob") else 0.18) * fh
        md.ellipse((cx - 0.545 * fw, cy - 0.5 * fh - vol, cx + 0.545 * fw, cy + low), fill=255)
        if style == "quiff":
            md.ellipse(F(-0.35, -0.64, 0.29, -0.36), fill=255)
        if style == "curly":
            for j in range(9):
                t = math.pi * (1.05 + 0.9 * j / 8)
                md.ellipse(_c(*P(0.5 * math.cos(t), -0.12 + 0.42 * math.sin(t)), 0.11 * fw), fill=255)
        if style == "bob":
            md.rounded_rectangle(F(-0.44, -0.2, 0.44, 0.7), radius=0.15 * fw, fill=0)
        else:
            md.ellipse(F(part - 0.46, -0.26, part + 0.46, 0.62), fill=0)
        if style not in ("long", "bob"):
            md.ellipse((cx - 0.62 * fw, ey - 0.1 * fh, cx + 0.62 * fw, ey + 1.1 * fh), fill=0)

    _paste_mask(img, mix(skin, hair, 0.55) if style == "buzz" else hair, cap)
    d = ImageDraw.Draw(img, "RGBA")
    if style not in ("buzz", "curly"):
        d.arc(F(-0.3, -0.47, 0.2, -0.2), 200, 260, fill=mix(hair, (255, 255, 255), 0.3), width=2 * ol)
    for sg in (-1, 1):                                       # blush, nose
        d.ellipse(F(sg * 0.29 - 0.08, 0.1, sg * 0.29 + 0.08, 0.16), fill=(236, 96, 110, 55))
    d.ellipse(F(-0.055, 0.05, 0.055, 0.125), fill=shade(skin, 0.86) + (90,))
    d.arc(F(-0.065, 0.04, 0.065, 0.13), 30, 150, fill=shade(skin, 0.66), width=round(ol * 1.5))
    d.ellipse(F(-0.02, 0.06, 0.02, 0.085), fill=(255, 255, 255, 70))
    brow = shade(hair, 0.6) if sum(hair) < 500 else mix(hair, (70, 50, 40), 0.55)       # eyes and brows
    brow_y = ey - (1.75 if glasses else 1.5) * r
    eyes = [(cx - ex_off, ey), (cx + ex_off, ey)]
    for sg, (ex, _) in zip((-1, 1), eyes):
        d.ellipse(_c(ex, ey, r, 0.85 * r), fill=(252, 252, 250))
        d.ellipse(_c(ex, ey + 0.05 * r, 0.6 * r), fill=iris)
        d.ellipse(_c(ex, ey + 0.05 * r, 0.3 * r), fill=(20, 16, 18))
        d.ellipse(_c(ex + 0.22 * r, ey - 0.18 * r, 0.12 * r), fill=(255, 255, 255))
        d.arc(_c(ex, ey, r, 0.85 * r), 190, 350, fill=(40, 30, 30), width=max(1, round(0.16 * r)))
        bp = ((ex - sg * 0.95 * r, brow_y + 0.25 * r), (ex, brow_y - 0.35 * r), (ex + sg * 0.95 * r, brow_y + 0.1 * r))
        d.line(_qbez(*bp, 10), fill=brow, width=max(1, round(0.26 * r)), joint="curve")
    draw_mouth(d, cx, my, mw, 0, lip)
    if glasses:
        gc, gw = ((30, 30, 36), (120, 72, 40), (40, 60, 120), (170, 40, 50))[rng.randrange(4)], max(1, round(0.16 * r))
        for ex, _ in eyes:
            d.rounded_rectangle(_c(ex, ey - 0.025 * r, 1.55 * r, 1.275 * r), radius=0.7 * r, outline=gc, width=gw)
        d.arc((cx - 0.55 * r, ey - 0.6 * r, cx + 0.55 * r, ey + 0.3 * r), 200, 340, fill=gc, width=gw)
        for sg in (-1, 1):
            d.line((cx + sg * (ex_off + 1.55 * r), ey - 0.3 * r, cx + sg * (half - 0.02 * fw), ey - 0.2 * r),
                   fill=gc, width=gw)
    if phones:
        pc = (44, 44, 52)
        d.arc((cx - 0.6 * fw, cy - 0.54 * fh - vol, cx + 0.6 * fw, cy + 0.4 * fh), 190, 350, fill=pc,
              width=round(0.06 * fw))
        for sg in (-1, 1):
            d.rounded_rectangle(_c(cx + sg * (half + 0.04 * fw), ear_y - 0.015 * fh, 0.09 * fw, 0.135 * fh),
                                radius=0.07 * fw, fill=pc, outline=shirt, width=2 * ol)
    # the speaker sits behind the desk: restore the desk rows, then a mic on a boom arm in front
    dy = int(DESK_TOP * H) * k
    img.paste(base.crop((0, dy // k, W, H)).resize((W * k, H * k - dy), Image.NEAREST), (0, dy))
    d = ImageDraw.Draw(img, "RGBA")
    (mcx, mcy), ml, mr = P(-0.66, 0.66), 0.3 * fh, 0.07 * fh
    ux, uy = math.cos(math.radians(-62)), math.sin(math.radians(-62))
    p0, p1 = (mcx - ux * ml / 2, mcy - uy * ml / 2), (mcx + ux * ml / 2, mcy + uy * ml / 2)
    d.line((*p0, p0[0] - 0.5 * fw, dy), fill=(52, 52, 58), width=round(0.035 * fh))
    d.line((p0, p1), fill=(36, 36, 42), width=round(2 * mr))
    for q in (p0, p1):
        d.ellipse(_c(*q, mr), fill=(36, 36, 42))
    grille = (96, 96, 108)
    for t, w_, c in ((0.15, ol, grille), (0.27, ol, grille), (0.39, ol, grille), (0.5, 2 * ol, shirt)):
        gx, gy, rr = p1[0] - ux * ml * t, p1[1] - uy * ml * t, mr * (0.8 if t < 0.5 else 1.0)
        d.line((gx + uy * rr, gy - ux * rr, gx - uy * rr, gy + ux * rr), fill=c, width=w_)
    out = img.reduce(k)
    d = ImageDraw.Draw(out, "RGBA")                           # name plate, lower-left, at 1x
    fs = max(9, round(min(H, 1.25 * W) / 22))
    nf = font(fs)
    label = _ellipsize(name, nf, 0.4 * W)
    pw, ph, px0, py1 = nf.getlength(label) + 0.9 * fs + 6, 1.6 * fs, 0.035 * W, 0.765 * H
    d.rounded_rectangle((px0, py1 - ph, px0 + pw, py1), radius=0.3 * fs, fill=(16, 16, 24, 210))
    d.rounded_rectangle((px0, py1 - ph, px0 + max(3, 0.25 * fs), py1), radius=0.12 * fs, fill=shirt)
    d.text((px0 + 0.55 * fs + 4, py1 - ph / 2), label, font=nf, fill=(245, 245, 245), anchor="lm")
    layout = FaceLayout(
        mouth_center=(round(cx / k), round(my / k)), mouth_width=max(4, round(mw / k)),
        mouth_max_open=max(2, round(0.42 * mw / k)), eye_centers=((round(eyes[0][0] / k), round(ey / k)),
                                                                  (round(eyes[1][0] / k), round(ey / k))),
        eye_radius=max(2, round(r / k)), skin_rgb=skin, lip_rgb=lip)
    return out, layout
