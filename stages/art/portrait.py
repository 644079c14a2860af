"""Cartoon speaker portraits for the CPU quality rung, seated in the studio of :mod:`stages.art.studio`.

Drawn with Pillow at ``SS`` x the output size and box-downscaled (antialiasing), fully deterministic in their
inputs (see :mod:`stages.art.drawing`). Coordinates are pixels, x right, y down.
``render_portrait`` returns the frame plus a :class:`FaceLayout` telling ``stages.art.head`` where to animate;
``render_person_layers`` also returns the speaker as a separate RGBA layer and the scene without the speaker, so
``stages.art.head`` can move the head (the layers blend as described in :mod:`stages.art.compositing`).
A speaker's look (every hashed choice, and the traits a look text states) is :mod:`stages.art.appearance`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from .appearance import _Look, _look, _traits
from .compositing import compose_layers
from .drawing import RGB, SS, _c, _ellipsize, font, mix, shade
from .studio import DESK_TOP

__all__ = ["FaceLayout", "PortraitLayers", "render_portrait", "render_person_layers", "draw_mouth",
           "_traits"]   # _traits: in .appearance, imported from here by tests/test_looks.py


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


# ----------------------------------------------------------------------------------------------- portrait parts

def _qbez(p0, p1, p2, n: int = 16) -> list[tuple[float, float]]:
    return [((1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t * t * p2[0],
             (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t * t * p2[1]) for t in (i / n for i in range(n + 1))]


def draw_mouth(d: ImageDraw.ImageDraw, cx: float, cy: float, width: float, open_px: float, lip: RGB, *,
               smile: float = 0.05, n: int = 28) -> None:
    """Draw cartoon lips centred on the closed lip line (cx, cy), ``width`` corner to corner, opening ``open_px``
    high (0 = closed; the jaw drops: 30 % of the opening above the line, 70 % below) with a dark interior, upper
    teeth and a tongue. All values in the draw's pixel units. Shared by the portrait and ``stages.art.head``."""
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


def _paste_mask(img: Image.Image, color: RGB, draw_fn: Callable[[ImageDraw.ImageDraw], None]) -> None:
    mask = Image.new("L", img.size, 0)
    draw_fn(ImageDraw.Draw(mask))
    box = mask.getbbox()
    if box:
        img.paste(color, box, mask.crop(box))


def _draw_person(img: Image.Image, lk: _Look) -> None:
    """Draw the speaker alone (back hair, body and shirt, neck, ears, head, hair, face, glasses, headphones) onto the
    RGB image ``img`` (SS x the frame size). Only opaque shapes reach outside the head, so drawing onto black and onto
    white gives the exact coverage (see :func:`_matte`)."""
    d = ImageDraw.Draw(img, "RGBA")
    skin, hair, shirt, style, dark = lk.skin, lk.hair, lk.shirt, lk.style, lk.dark
    fh, fw, cx, cy, n_exp, F, P, ol = lk.fh, lk.fw, lk.cx, lk.cy, lk.n_exp, lk.F, lk.P, lk.ol
    ey, ex_off, r = lk.eyes

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
    elif style == "bald":
        for sg in (-1, 1):
            d.ellipse(_c(cx + sg * 0.47 * fw, ey + 0.02 * fh, 0.11 * fw, 0.15 * fh), fill=hair)
    yn = 0.6                                                 # neck base, face units; body / shirt below
    left = _qbez(P(-0.3, yn), P(-1.17, yn + 0.02), P(-1.3, yn + 0.38))
    bottom = img.size[1] + 9
    body = left + [(cx - 1.37 * fw, bottom), (cx + 1.37 * fw, bottom)] + [(2 * cx - x, y) for x, y in left[::-1]]
    d.polygon(body, fill=shirt, outline=shade(shirt, 0.7), width=ol)
    if lk.shirt_style == "hoodie":
        d.ellipse(F(-0.5, yn - 0.14, 0.5, yn + 0.2), fill=shade(shirt, 0.8))
    elif lk.shirt_style == "tee":
        d.ellipse(F(-0.33, yn - 0.12, 0.33, yn + 0.1), fill=shade(shirt, 0.78))
    nk = shade(skin, 0.93)                                   # neck with a chin shadow
    d.rectangle(F(-0.19, 0.25, 0.19, yn), fill=nk)
    d.ellipse(F(-0.19, yn - 0.1, 0.19, yn + 0.06), fill=nk)
    d.ellipse(F(-0.24, 0.32, 0.24, 0.56), fill=shade(skin, 0.78))
    if lk.shirt_style == "vneck":
        d.polygon([P(-0.24, yn - 0.02), P(0.24, yn - 0.02), P(0, yn + 0.26)], fill=shade(shirt, 0.7))
        d.polygon([P(-0.18, yn - 0.02), P(0.18, yn - 0.02), P(0, yn + 0.2)], fill=nk)
    elif lk.shirt_style == "collar":
        d.polygon([P(-0.17, yn - 0.03), P(0.17, yn - 0.03), P(0, yn + 0.16)], fill=nk)
        cc = mix(shirt, (250, 250, 250), 0.75)
        for sg in (-1, 1):
            d.polygon([P(sg * 0.2, yn - 0.08), P(sg * 0.42, yn + 0.1), P(sg * 0.03, yn + 0.18)], fill=cc,
                      outline=shade(cc, 0.75), width=ol)
        for j in range(3):
            d.ellipse(_c(*P(0, yn + 0.28 + 0.14 * j), 0.025 * fw), fill=shade(shirt, 0.6))
    elif lk.shirt_style == "hoodie":
        for sg in (-1, 1):
            d.line((*P(sg * 0.12, yn + 0.04), *P(sg * 0.14, yn + 0.34)), fill=(240, 240, 240), width=2 * ol)
    elif lk.shirt_style in ("toga", "robe", "suit"):
        _draw_garment(d, lk, yn, nk)
    ear_y = ey + 0.08 * fh                                   # ears, head
    half = fw / 2 * (1 - abs((ear_y - cy) / (fh / 2)) ** n_exp) ** (1 / n_exp)
    for sg in (-1, 1):
        ex = cx + sg * (half + 0.01 * fw)
        d.ellipse(_c(ex, ear_y - 0.01 * fh, 0.085 * fw, 0.11 * fh), fill=skin, outline=dark, width=ol)
        d.arc(_c(ex, ear_y - 0.01 * fh, 0.045 * fw, 0.06 * fh), 180 + sg * 90, 360 + sg * 90, fill=shade(skin, 0.72),
              width=ol * 2)
    d.polygon(_face_poly(cx, cy, fw / 2, fh / 2, n_exp, lk.taper), fill=skin, outline=dark, width=ol)
    vol = {"buzz": 0.015, "bun": 0.03, "quiff": 0.05}.get(style, 0.08) * fh     # front hair: a cap minus the face
    part = lk.part

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

    if style != "bald":   # bald: only the fringe behind the ears (drawn with the back hair)
        _paste_mask(img, mix(skin, hair, 0.55) if style == "buzz" else hair, cap)
    d = ImageDraw.Draw(img, "RGBA")
    if lk.old:
        _draw_age_lines(d, lk)
    if style not in ("buzz", "curly", "bald"):
        d.arc(F(-0.3, -0.47, 0.2, -0.2), 200, 260, fill=mix(hair, (255, 255, 255), 0.3), width=2 * ol)
    for sg in (-1, 1):                                       # blush, nose
        d.ellipse(F(sg * 0.29 - 0.08, 0.1, sg * 0.29 + 0.08, 0.16), fill=(236, 96, 110, 55))
    d.ellipse(F(-0.055, 0.05, 0.055, 0.125), fill=shade(skin, 0.86) + (90,))
    d.arc(F(-0.065, 0.04, 0.065, 0.13), 30, 150, fill=shade(skin, 0.66), width=round(ol * 1.5))
    d.ellipse(F(-0.02, 0.06, 0.02, 0.085), fill=(255, 255, 255, 70))
    brow = shade(hair, 0.6) if sum(hair) < 500 else mix(hair, (70, 50, 40), 0.55)       # eyes and brows
    brow_y = ey - (1.75 if lk.glasses else 1.5) * r
    eyes = [(cx - ex_off, ey), (cx + ex_off, ey)]
    for sg, (ex, _) in zip((-1, 1), eyes):
        d.ellipse(_c(ex, ey, r, 0.85 * r), fill=(252, 252, 250))
        d.ellipse(_c(ex, ey + 0.05 * r, 0.6 * r), fill=lk.iris)
        d.ellipse(_c(ex, ey + 0.05 * r, 0.3 * r), fill=(20, 16, 18))
        d.ellipse(_c(ex + 0.22 * r, ey - 0.18 * r, 0.12 * r), fill=(255, 255, 255))
        d.arc(_c(ex, ey, r, 0.85 * r), 190, 350, fill=(40, 30, 30), width=max(1, round(0.16 * r)))
        bp = ((ex - sg * 0.95 * r, brow_y + 0.25 * r), (ex, brow_y - 0.35 * r), (ex + sg * 0.95 * r, brow_y + 0.1 * r))
        d.line(_qbez(*bp, 10), fill=brow, width=max(1, round(0.26 * r)), joint="curve")
    if lk.gender == "female":   # lashes at the outer corners
        for sg, (ex, _) in zip((-1, 1), eyes):
            for j in (0, 1):
                a = math.radians(200 + 25 * j) if sg < 0 else math.radians(340 - 25 * j)
                x0, y0 = ex + math.cos(a) * r, ey + math.sin(a) * 0.85 * r
                d.line((x0, y0, x0 + math.cos(a) * 0.35 * r, y0 + math.sin(a) * 0.35 * r - 0.1 * r),
                       fill=(40, 30, 30), width=max(1, round(0.12 * r)))
    if lk.beard is not None:
        _draw_beard(img, lk, ear_y)
        d = ImageDraw.Draw(img, "RGBA")
    draw_mouth(d, cx, lk.mouth_y, lk.mw, 0, lk.lip)
    if lk.moustache is not None:
        my, mw = lk.mouth_y, lk.mw
        for sg in (-1, 1):
            d.ellipse(_c(cx + sg * 0.25 * mw, my - 0.37 * mw, 0.32 * mw, 0.11 * mw), fill=lk.moustache,
                      outline=shade(lk.moustache, 0.7), width=ol)
    if lk.glasses and lk.glass_rgb is not None:
        gc, gw = lk.glass_rgb, max(1, round(0.16 * r))
        for ex, _ in eyes:
            d.rounded_rectangle(_c(ex, ey - 0.025 * r, 1.55 * r, 1.275 * r), radius=0.7 * r, outline=gc, width=gw)
        d.arc((cx - 0.55 * r, ey - 0.6 * r, cx + 0.55 * r, ey + 0.3 * r), 200, 340, fill=gc, width=gw)
        for sg in (-1, 1):
            d.line((cx + sg * (ex_off + 1.55 * r), ey - 0.3 * r, cx + sg * (half - 0.02 * fw), ey - 0.2 * r),
                   fill=gc, width=gw)
    if lk.phones:
        pc = (44, 44, 52)
        d.arc((cx - 0.6 * fw, cy - 0.54 * fh - vol, cx + 0.6 * fw, cy + 0.4 * fh), 190, 350, fill=pc,
              width=round(0.06 * fw))
        for sg in (-1, 1):
            d.rounded_rectangle(_c(cx + sg * (half + 0.04 * fw), ear_y - 0.015 * fh, 0.09 * fw, 0.135 * fh),
                                radius=0.07 * fw, fill=pc, outline=shirt, width=2 * ol)


MOUTH_HOLE = (0.62, 0.27, 0.29)
"""The beard's opening around the mouth (half-width, above, below the lip line; mouth widths): larger than the
skin oval ``stages.art.head`` paints under an animated mouth (0.58, 0.24, 0.26), so the beard stays untouched."""


def _draw_beard(img: Image.Image, lk: _Look, ear_y: float) -> None:
    """A full beard: the face below the ears and a little below the chin, around an opening for the mouth."""
    cx, fh, mw, my = lk.cx, lk.fh, lk.mw, lk.mouth_y
    hw, up, down = MOUTH_HOLE

    def shape(md: ImageDraw.ImageDraw) -> None:
        md.polygon(_face_poly(cx, lk.cy, lk.fw / 2 + 0.01 * lk.fw, fh / 2, lk.n_exp, lk.taper), fill=255)
        md.ellipse(lk.F(-0.36, 0.18, 0.36, 0.62), fill=255)
        md.rectangle((0, 0, img.size[0], ear_y + 0.04 * fh), fill=0)
        md.ellipse((cx - hw * mw, my - up * mw, cx + hw * mw, my + down * mw), fill=0)

    _paste_mask(img, lk.beard, shape)   # type: ignore[arg-type]
    d = ImageDraw.Draw(img, "RGBA")
    for j in range(5):                  # a little texture
        x = cx + (j - 2) * 0.11 * lk.fw
        d.arc((x - 0.05 * lk.fw, my + 0.35 * mw, x + 0.05 * lk.fw, my + 0.6 * mw), 20, 160,
              fill=shade(lk.beard, 0.75), width=lk.ol)   # type: ignore[arg-type]


def _draw_age_lines(d: ImageDraw.ImageDraw, lk: _Look) -> None:
    """An old speaker's forehead lines, eye bags and smile folds."""
    c, w = shade(lk.skin, 0.72), max(1, round(lk.ol * 1.2))
    for y in (-0.205, -0.235):
        d.arc(lk.F(-0.22, y, 0.22, y + 0.06), 200, 340, fill=c, width=w)
    ey, ex_off, r = lk.eyes
    for sg in (-1, 1):
        ex = lk.cx + sg * ex_off
        d.arc(_c(ex, ey + 0.55 * r, 0.75 * r, 0.45 * r), 30, 150, fill=c, width=w)
        d.line(_qbez(lk.P(sg * 0.1, 0.13), lk.P(sg * 0.2, 0.2), lk.P(sg * 0.19, 0.27), 8), fill=c, width=w)


def _draw_garment(d: ImageDraw.ImageDraw, lk: _Look, yn: float, nk: RGB) -> None:
    """The garments beyond the hash's own four: a toga's drape, a robe's crossed front, a suit's jacket."""
    P, shirt, ol = lk.P, lk.shirt, lk.ol
    if lk.shirt_style == "toga":       # a drape from the left shoulder across the chest, with folds
        band = [P(-0.95, yn + 0.02), P(-0.55, yn - 0.02), P(1.0, yn + 1.05), P(0.45, yn + 1.2)]
        d.polygon(band, fill=shade(shirt, 0.86), outline=shade(shirt, 0.7), width=ol)
        for t in (0.3, 0.55):
            d.line((*P(-0.85 + t, yn + 0.05 + 0.1 * t), *P(0.3 + t, yn + 1.1)), fill=shade(shirt, 0.74), width=ol)
    elif lk.shirt_style == "robe":     # a crossed front with a trim
        trim = shade(shirt, 0.62)
        d.polygon([P(-0.3, yn - 0.04), P(0.05, yn + 0.6), P(-0.05, yn + 0.7), P(-0.42, yn + 0.02)], fill=trim)
        d.polygon([P(0.3, yn - 0.04), P(-0.05, yn + 0.6), P(0.05, yn + 0.7), P(0.42, yn + 0.02)], fill=trim)
        d.polygon([P(-0.22, yn - 0.02), P(0.22, yn - 0.02), P(0, yn + 0.5)], fill=nk)
    else:                              # suit: a white shirt and a tie in the jacket's opening
        d.polygon([P(-0.34, yn - 0.04), P(0.34, yn - 0.04), P(0, yn + 0.8)], fill=(244, 244, 240))
        d.polygon([P(-0.16, yn - 0.03), P(0.16, yn - 0.03), P(0, yn + 0.12)], fill=nk)
        d.polygon([P(-0.05, yn + 0.1), P(0.05, yn + 0.1), P(0.07, yn + 0.6), P(0, yn + 0.7), P(-0.07, yn + 0.6)],
                  fill=mix(shirt, (150, 30, 40), 0.6))
        for sg in (-1, 1):
            d.line((*P(sg * 0.34, yn - 0.04), *P(sg * 0.1, yn + 0.75)), fill=shade(shirt, 0.6), width=2 * ol)


def _draw_mic(img: Image.Image, lk: _Look, desk_y: int) -> None:
    """The microphone on a boom arm clamped to the desk (in front of the speaker), onto ``img`` (SS x px)."""
    d = ImageDraw.Draw(img, "RGBA")
    fh, fw, ol = lk.fh, lk.fw, lk.ol
    (mcx, mcy), ml, mr = lk.P(-0.66, 0.66), 0.3 * fh, 0.07 * fh
    ux, uy = math.cos(math.radians(-62)), math.sin(math.radians(-62))
    p0, p1 = (mcx - ux * ml / 2, mcy - uy * ml / 2), (mcx + ux * ml / 2, mcy + uy * ml / 2)
    d.line((*p0, p0[0] - 0.5 * fw, desk_y), fill=(52, 52, 58), width=round(0.035 * fh))
    d.line((p0, p1), fill=(36, 36, 42), width=round(2 * mr))
    for q in (p0, p1):
        d.ellipse(_c(*q, mr), fill=(36, 36, 42))
    grille = (96, 96, 108)
    for t, w_, c in ((0.15, ol, grille), (0.27, ol, grille), (0.39, ol, grille), (0.5, 2 * ol, lk.shirt)):
        gx, gy, rr = p1[0] - ux * ml * t, p1[1] - uy * ml * t, mr * (0.8 if t < 0.5 else 1.0)
        d.line((gx + uy * rr, gy - ux * rr, gx - uy * rr, gy + ux * rr), fill=c, width=w_)


def _draw_plate(img: Image.Image, name: str, accent: RGB) -> None:
    """The speaker's name plate, lower-left, onto ``img`` at 1x."""
    W, H = img.size
    d = ImageDraw.Draw(img, "RGBA")
    fs = max(9, round(min(H, 1.25 * W) / 22))
    nf = font(fs)
    label = _ellipsize(name, nf, 0.4 * W)
    pw, ph, px0, py1 = nf.getlength(label) + 0.9 * fs + 6, 1.6 * fs, 0.035 * W, 0.765 * H
    d.rounded_rectangle((px0, py1 - ph, px0 + pw, py1), radius=0.3 * fs, fill=(16, 16, 24, 210))
    d.rounded_rectangle((px0, py1 - ph, px0 + max(3, 0.25 * fs), py1), radius=0.12 * fs, fill=accent)
    d.text((px0 + 0.55 * fs + 4, py1 - ph / 2), label, font=nf, fill=(245, 245, 245), anchor="lm")


def _matte(draw_fn: Callable[[Image.Image], None], size: tuple[int, int], *, alpha_only: bool = False) -> np.ndarray:
    """Run ``draw_fn`` on a black and on a white RGB canvas of ``size``; returns what it drew as straight-alpha RGBA
    uint8 (H, W, 4) by difference matting: alpha = 255 - (white - black), colour = black * 255 / alpha (exact for
    anything drawn with "over" compositing; shapes drawn opaque get alpha 255 and their exact colour). With
    ``alpha_only`` just the alpha, (H, W)."""
    black, white = Image.new("RGB", size, (0, 0, 0)), Image.new("RGB", size, (255, 255, 255))
    draw_fn(black)
    draw_fn(white)
    alpha = ImageChops.invert(ImageChops.subtract(white.getchannel(1), black.getchannel(1)))
    if alpha_only:
        return np.asarray(alpha)
    out = np.array(Image.merge("RGBA", (*black.split(), alpha)))
    a = out[..., 3]
    ys, xs = np.nonzero((a > 0) & (a < 255))                         # partly covered: un-premultiply
    if ys.size:
        al = a[ys, xs].astype(np.float32)[:, None]
        out[ys, xs, :3] = np.rint(out[ys, xs, :3] * 255.0 / al).clip(0, 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------- portrait

@dataclass(frozen=True, slots=True)
class PortraitLayers:
    """A portrait as layers. ``image`` is the composite RGB frame (what :func:`render_portrait` returns), ``person``
    the speaker alone as straight-alpha RGBA at ``SS`` x the frame size (so it can move by half pixels),
    ``backdrop`` RGBA at the frame size: RGB the scene without the speaker (studio, desk, mic, name plate), A the
    speaker's visibility (0 behind the desk, mic and name text). See :mod:`stages.art.compositing` for the blend."""
    image: Image.Image
    layout: FaceLayout
    person: Image.Image
    backdrop: Image.Image


def render_person_layers(studio: Image.Image, *, name: str, speaker_index: int, seed: int = 0,
                         look: dict | None = None) -> PortraitLayers:
    """The studio frame with one cartoon speaker seated behind the desk, head and shoulders, face ~40 % of frame
    height, closed mouth, open eyes, a microphone on a boom arm in front, and a name plate lower-left; as layers
    (see :class:`PortraitLayers`). Appearance comes from a stable hash of (name, speaker_index, seed); hair and
    shirt colours are palette-indexed by ``speaker_index`` so speakers 0, 1, 2 always differ. ``look`` (the traits
    of :func:`streamwise.workflow.cast.read_look`: gender, age, hair colour and style, beard, moustache, glasses,
    clothing colour and garment, skin tone) overrides what it states; the rest stays hashed."""
    base = studio.convert("RGB")
    W, H = base.size
    k = SS
    size2 = (W * k, H * k)
    lk = _look(W, H, name, speaker_index, seed, look)
    person = _matte(lambda im: _draw_person(im, lk), size2)
    # the backdrop: studio (desk included) + the mic at SS x, then the name plate at 1x; A = what does not cover
    desk = int(DESK_TOP * H)
    scene = base.resize(size2, Image.NEAREST)
    _draw_mic(scene, lk, desk * k)
    mic = ImageChops.invert(Image.fromarray(_matte(lambda im: _draw_mic(im, lk, desk * k), size2, alpha_only=True)))
    vis = np.asarray(mic.reduce(k), np.float32) / 255.0
    vis[desk:] = 0.0                                          # the speaker sits behind the desk
    back = scene.reduce(k)
    _draw_plate(back, name, lk.shirt)
    vis *= 1.0 - _matte(lambda im: _draw_plate(im, name, lk.shirt), (W, H), alpha_only=True).astype(np.float32) / 255.0
    backdrop = np.dstack([np.asarray(back), np.rint(vis * 255.0).clip(0, 255).astype(np.uint8)])
    image = Image.fromarray(compose_layers(backdrop, person))
    ey, ex_off, r = lk.eyes
    my, cx = lk.mouth_y, lk.cx
    layout = FaceLayout(
        mouth_center=(round(cx / k), round(my / k)), mouth_width=max(4, round(lk.mw / k)),
        mouth_max_open=max(2, round(0.42 * lk.mw / k)), eye_centers=((round((cx - ex_off) / k), round(ey / k)),
                                                                     (round((cx + ex_off) / k), round(ey / k))),
        eye_radius=max(2, round(r / k)), skin_rgb=lk.skin, lip_rgb=lk.lip)
    return PortraitLayers(image=image, layout=layout, person=Image.fromarray(person, "RGBA"),
                          backdrop=Image.fromarray(backdrop, "RGBA"))


def render_portrait(studio: Image.Image, *, name: str, speaker_index: int,
                    seed: int = 0, look: dict | None = None) -> tuple[Image.Image, FaceLayout]:
    """The composite portrait of :func:`render_person_layers`: (RGB frame of the studio's size, FaceLayout in that
    frame's pixels)."""
    layers = render_person_layers(studio, name=name, speaker_index=speaker_index, seed=seed, look=look)
    return layers.image, layers.layout
