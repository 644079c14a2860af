"""Drawing primitives shared by the procedural art of the CPU quality rung (:mod:`stages.art.studio`,
:mod:`stages.art.portrait`): the supersampling factor, fonts, colour arithmetic, boxes and a stable hash.

Everything is drawn with Pillow at ``SS`` x the output size and box-downscaled (antialiasing), and is fully
deterministic in its inputs (no global RNG, hashes via blake2b). Coordinates are pixels, x right, y down.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

from PIL import ImageFont

__all__ = ["SS", "RGB", "font", "shade", "mix"]

SS = 2            # supersampling factor
RGB = tuple[int, int, int]


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


def _c(x: float, y: float, rx: float, ry: float | None = None) -> tuple[float, float, float, float]:
    """Box of half-size (rx, ry) centred on (x, y)."""
    return (x - rx, y - (rx if ry is None else ry), x + rx, y + (rx if ry is None else ry))


def _ellipsize(text: str, fnt, max_w: float) -> str:
    if fnt.getlength(text) <= max_w:
        return text
    while text and fnt.getlength(text + "…") > max_w:
        text = text[:-1]
    return text + "…"
