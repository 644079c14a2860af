"""Talking-head renderer of the CPU quality rung: animate one portrait from per-frame mouth openness.

Everything expensive is pre-rendered: ``levels`` mouth patches (closed -> wide open) and two eyelid patches (half
and fully closed) at construction, one composited base frame per subtitle page per :meth:`HeadAnimator.render`
call. Per frame the work is one base-frame copy plus at most two small patch pastes (numpy slicing), so a
640x400 clip renders at hundreds of frames/s on one core. Patches are drawn at 2x on a nearest-upscaled crop
and box-downscaled, so pixels they do not touch stay bit-identical to the portrait.

Head motion: given the portrait as layers (``person`` RGBA at 1x or 2x the frame size, ``backdrop`` RGBA, see
``stages.art.portrait``), the speaker sways slowly and nods with the speech (:func:`stages.art.motion.head_motion`), in
steps of 1/scale px. The person is pre-reduced at every sub-pixel phase over a fixed region (its bounding box plus
the motion range, down to the desk), and the mouth / eyelid patches are drawn on the person layer; per distinct
(offset, phase) a frame region is composited once (a masked copy of the opaque interior plus an exact float blend
of the antialiased edge and of the pixels partly covered by the mic / name plate) and pasted into every frame using
it. Subtitle pages come from :mod:`stages.art.subtitles`.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .compositing import backdrop_arrays, blend_person, person_premultiplied, reduce_phase
from .drawing import shade
from .motion import MAX_DX, MAX_DY, blink_states, head_motion, nod_drive
from .portrait import FaceLayout, draw_mouth
from .subtitles import Band, subtitle_pages
from .visemes import SHAPES, VISEMES, mouth_from_track

__all__ = ["HeadAnimator", "bench"]

_LASH = (40, 30, 30)
_Box = tuple[int, int, int, int]


def _sag(cx: float, y: float, half_w: float, sag: float, n: int) -> list[tuple[float, float]]:
    """n points of a parabola from (cx - half_w, y) to (cx + half_w, y) dipping ``sag`` px in the middle."""
    return [(cx + u * half_w, y + sag * (1 - u * u)) for u in np.linspace(-1.0, 1.0, n)]


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
    size) are the layers of :func:`stages.art.portrait.render_person_layers`; with both, the head moves (``motion`` scales
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
            self.mouth_patches = _Lazy(lambda code: self._crop(self.mouth_box) if code % self.levels == 0 else
                                       self._paint(self.mouth_box, lambda d, im, tx: self._draw_mouth(
                                           d, tx, *self.mouth_shape(code))))
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

    def mouth_shape(self, code: int) -> tuple[float, float]:
        """(opening in [0, 1], width factor) of mouth patch ``code`` = viseme index * ``levels`` + level (viseme
        index 0, ``rest``, is the loudness-only mouth of full width; see :mod:`stages.art.visemes`)."""
        v, level = divmod(int(code), self.levels)
        return level / (self.levels - 1), SHAPES[VISEMES[v]][1] if v else 1.0

    def _draw_mouth(self, d: ImageDraw.ImageDraw, tx: Callable, o: float, width: float = 1.0) -> None:
        L = self.layout
        mx, my = tx(*L.mouth_center)
        w = 2.0 * L.mouth_width
        d.ellipse((mx - 0.58 * w, my - 0.24 * w, mx + 0.58 * w, my + 0.26 * w), fill=self._skin_mouth)
        draw_mouth(d, mx, my, w * width, 2.0 * o * L.mouth_max_open, L.lip_rgb)

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

    # ---------------------------------------------------------------------------------------- render
    def render(self, mouth_open: np.ndarray, *, subtitle: str = "", speaker: str = "", blink_seed: int = 0,
               start_frame: int = 0, fps: float = 25.0, end_frame: int | None = None,
               context: tuple[np.ndarray | None, np.ndarray | None] | None = None,
               visemes: np.ndarray | None = None) -> np.ndarray:
        """Render ``len(mouth_open)`` frames. ``mouth_open``: float (N,) in [0, 1] per frame (0 closed, 1 wide
        open; quantised to ``levels``). Blinks are a function of ``blink_seed`` and the absolute frame number
        ``start_frame + i`` at ``fps`` frames/s (see :func:`stages.art.motion.blink_states`). ``subtitle`` is burned in
        at the bottom on a translucent band, wrapped to <= 2 lines per page, pages shown for their share of the N
        frames; ``speaker`` prefixes it. Returns uint8 (N, H, W, 3).

        With layers, the head moves (:func:`stages.art.motion.head_motion`): a function of ``blink_seed``, the absolute
        frame number and the envelope ``mouth_open`` (the nod), at rest at frame 0 and at ``end_frame`` (the end of the
        piece, when known). ``context`` = (envelope of the frames just before the clip, of the frames just after)
        keeps the nod continuous across a split clip (missing context counts as silence).

        ``visemes``: int (N,) indices into :data:`stages.art.visemes.VISEMES`, the mouth's shape per frame: the
        opening is then the viseme's, scaled by ``mouth_open`` as the loudness
        (:func:`stages.art.visemes.mouth_from_track`), and its width the viseme's; closed and rest frames are shut.
        Without them the opening is ``mouth_open`` and every mouth has the full width."""
        m = np.nan_to_num(np.asarray(mouth_open, dtype=np.float32).reshape(-1), nan=0.0)
        n = int(m.shape[0])
        H, W = self.portrait.shape[:2]
        out = np.empty((n, H, W, 3), np.uint8)
        if n == 0:
            return out
        vi = None
        if visemes is not None:   # the opening from the viseme and the loudness (the nod keeps the loudness)
            vi = np.clip(np.pad(np.asarray(visemes, np.intp).reshape(-1)[:n], (0, max(0, n - len(visemes)))),
                         0, len(VISEMES) - 1)
        opening = m if vi is None else mouth_from_track(vi, m)
        lv = np.clip(np.rint(opening * (self.levels - 1)), 0, self.levels - 1).astype(np.intp)
        if vi is not None:        # mouth patch code: viseme * levels + level (level 0: the closed portrait)
            lv = np.where(lv > 0, vi * self.levels + lv, 0)
        eyes = blink_states(n, start_frame=start_frame, fps=fps, seed=blink_seed)
        bands, page_of = subtitle_pages(subtitle, speaker, n, W, H)
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
                base, lids = self.portrait, self.eye_patches
            else:   # composite the page band once into the base frame and into any patch it overlaps
                base = _blend(self.portrait, 0, 0, *band)
                lids = [_blend(q, ex0, ey0, *band) for q in self.eye_patches]
            idx = np.flatnonzero(sel)
            for i in idx:
                out[i] = base
            for code in np.unique(lv[idx]).tolist():
                k = idx[lv[idx] == code]
                if code % self.levels and mx1 > mx0 and my1 > my0:
                    q = self.mouth_patches[code]
                    out[k, my0:my1, mx0:mx1] = q if band is None else _blend(q, mx0, my0, *band)
            for state in (1, 2):
                k = idx[eyes[idx] == state]
                if k.size and ex1 > ex0 and ey1 > ey0:
                    out[k, ey0:ey1, ex0:ex1] = lids[state]
        return out


class _Lazy:
    """Patches built on first use: ``lazy[code]`` is ``make(code)``, made once (a show uses few of the
    viseme x level mouth shapes a portrait could need)."""

    def __init__(self, make: Callable[[int], object]) -> None:
        self._make, self._made = make, {}

    def __getitem__(self, code: int):
        if code not in self._made:
            self._made[code] = self._make(int(code))
        return self._made[code]


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
        self.mouths = _Lazy(lambda code: None if code % anim.levels == 0 else self._patch(
            pl, anim.mouth_box, lambda d, im, tx: anim._draw_mouth(d, tx, *anim.mouth_shape(code))))
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
               bands: list[Band | None], page_of: np.ndarray) -> None:
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
    from .portrait import render_person_layers
    from .studio import render_studio

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
