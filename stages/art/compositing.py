"""Layer compositing of a portrait (see :func:`stages.art.portrait.render_person_layers`).

A portrait is two layers: ``person`` (RGBA, straight alpha, ``scale`` x the frame size: the speaker alone) and
``backdrop`` (RGBA, frame size: RGB = the scene without the speaker, i.e. studio + desk + microphone + name plate;
A = how much of the speaker shows through at that pixel: 255 in open studio, 0 behind the desk / the mic /
the name text, partial at their antialiased edges and behind the translucent plate). The frame is
    out = C + V * (Pm - A * B)
with C the backdrop RGB, V its alpha / 255, Pm and A the person's premultiplied colour and alpha box-reduced to
the frame grid (at a sub-pixel phase when shifted), and B the studio *behind* the speaker (B = C where V = 1;
estimated from fully open neighbours where 0 < V < 1). ``stages.art.head`` uses exactly this arithmetic per frame, so
an unshifted person reproduces the portrait bit for bit.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["compose_layers", "backdrop_arrays", "person_premultiplied", "reduce_phase", "blend_person"]


def _bbox(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the non-zero pixels of a 2-D uint8 array, None when there are none."""
    box = Image.fromarray(np.ascontiguousarray(alpha, dtype=np.uint8)).getbbox()
    return None if box is None else (box[1], box[3], box[0], box[2])


def person_premultiplied(person: np.ndarray) -> np.ndarray:
    """RGBA uint8 straight alpha -> float32 (h, w, 4): premultiplied RGB and alpha in [0, 1]."""
    p = np.asarray(person)
    a = p[..., 3].astype(np.float32) / np.float32(255.0)
    out = np.empty(p.shape[:2] + (4,), np.float32)
    np.multiply(p[..., :3].astype(np.float32), a[..., None], out=out[..., :3])
    out[..., 3] = a
    return out


def reduce_phase(layer: np.ndarray, scale: int, phase: tuple[int, int], window: tuple[int, int, int, int],
                 origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Box-reduce a premultiplied ``layer`` (h, w, C) held at ``scale`` x the frame grid, shifted right/down by
    ``phase`` = (px, py) layer pixels (any integers), over the frame-pixel ``window`` (y0, y1, x0, x1); ``origin``
    is the layer's top-left in scaled px (for a crop). Pixels outside the layer count as transparent zeros. float32
    (y1-y0, x1-x0, C). The s*s samples are added in a fixed order, so a pixel's value never depends on the window."""
    s, (px, py), (y0, y1, x0, x1) = int(scale), phase, window
    Y0, X0 = s * y0 - py - origin[0], s * x0 - px - origin[1]
    h, w, C = (y1 - y0) * s, (x1 - x0) * s, layer.shape[2]
    crop = np.zeros((h, w, C), np.float32)
    ys0, xs0 = max(0, Y0), max(0, X0)
    ys1, xs1 = min(layer.shape[0], Y0 + h), min(layer.shape[1], X0 + w)
    if ys1 > ys0 and xs1 > xs0:
        crop[ys0 - Y0:ys1 - Y0, xs0 - X0:xs1 - X0] = layer[ys0:ys1, xs0:xs1]
    if s == 1:
        return crop
    c5 = crop.reshape(y1 - y0, s, x1 - x0, s, C)
    acc = c5[:, 0, :, 0].copy()
    for j in range(s):
        for i in range(s):
            if i or j:
                acc += c5[:, j, :, i]
    acc /= np.float32(s * s)
    return acc


def backdrop_arrays(backdrop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, B, V) of a backdrop RGBA uint8 (H, W, 4): float32 (H, W, 3) scene, float32 (H, W, 3) studio behind the
    speaker, float32 (H, W) speaker visibility in [0, 1]. Where 0 < V < 1 (edges of the desk, mic and name plate, the
    translucent plate) B is the mean of the nearest fully open pixels (C itself when there are none within 3 px),
    clamped so that the blend stays inside 0..255."""
    bd = np.asarray(backdrop)
    c = bd[..., :3].astype(np.float32)
    v = bd[..., 3].astype(np.float32) / np.float32(255.0)
    b = c.copy()
    ys, xs = np.nonzero((bd[..., 3] > 0) & (bd[..., 3] < 255))
    if ys.size:
        H, W = v.shape
        full = bd[..., 3] == 255
        est = c[ys, xs].copy()
        todo = np.ones(ys.size, bool)
        for radius in (1, 2, 3):                 # the mean of the nearest fully open pixels (3x3, else 5x5, 7x7)
            num, den = np.zeros((ys.size, 3), np.float32), np.zeros(ys.size, np.float32)
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    yy, xx = ys + dy, xs + dx
                    ok = todo & (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
                    ok[ok] = full[yy[ok], xx[ok]]
                    num[ok] += c[yy[ok], xx[ok]]
                    den[ok] += 1
            got = den > 0
            est[got] = num[got] / den[got][:, None]
            todo &= ~got
        vv, cc = v[ys, xs][:, None], c[ys, xs]
        b[ys, xs] = np.clip(est, (cc - 255.0 * (1 - vv)) / vv, cc / vv)
    return c, b, v


def blend_person(c: np.ndarray, b: np.ndarray, v: np.ndarray, pm: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``C + V * (Pm - A * B)`` rounded to uint8 (see the module notes); c, b, pm (..., 3), v, a (...)."""
    t = a[..., None] * b
    np.subtract(pm, t, out=t)
    t *= v[..., None]
    t += c
    t += np.float32(0.5)
    return t.astype(np.uint8)


def compose_layers(backdrop: np.ndarray, person: np.ndarray, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The frame (H, W, 3) uint8 of a backdrop and a person layer (``person`` at an integer multiple ``s`` of the
    frame size), the person shifted right/down by ``shift`` = (dx, dy) person-layer pixels (1/s frame px each).
    The reference for what ``stages.art.head`` renders per frame."""
    bd, pl = np.asarray(backdrop), np.asarray(person)
    H, W = bd.shape[:2]
    s = pl.shape[0] // H
    if s < 1 or pl.shape[:2] != (s * H, s * W) or pl.shape[2] != 4 or bd.shape[2] != 4:
        raise ValueError(f"person {pl.shape} must be RGBA at an integer multiple of the backdrop {bd.shape}")
    out = np.array(bd[..., :3])
    box = _bbox(pl[..., 3])
    dx, dy = int(shift[0]), int(shift[1])
    if box is None:
        return out
    y0, y1 = max(0, (box[0] + dy) // s), min(H, -(-(box[1] + dy) // s))     # the frame pixels the person touches
    x0, x1 = max(0, (box[2] + dx) // s), min(W, -(-(box[3] + dx) // s))
    if y0 >= y1 or x0 >= x1:
        return out
    c, b, v = (x[y0:y1, x0:x1] for x in backdrop_arrays(bd))       # B always from the whole frame (see there)
    Y0, X0 = max(0, s * y0 - dy), max(0, s * x0 - dx)                       # the layer pixels that land there
    crop = pl[Y0:max(Y0, s * y1 - dy), X0:max(X0, s * x1 - dx)]
    pa = reduce_phase(person_premultiplied(crop), s, (dx, dy), (y0, y1, x0, x1), origin=(Y0, X0))
    out[y0:y1, x0:x1] = blend_person(c, b, v, pa[..., :3], pa[..., 3])
    return out
