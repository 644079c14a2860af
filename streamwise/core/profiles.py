"""Expected task runtimes from the StreamWise reference profiles, corrected online.

Where the numbers come from
    ``configs/profiles/reference/`` holds, unchanged, the latency profiles that the StreamWise
    authors measured on A100, H100, H200 and GB200 GPUs and used for every evaluation figure of
    their paper (arXiv 2603.05800); code release Azure/realtimevideogen, commit 9bcbc4e, MIT,
    "Copyright (c) Microsoft Corporation" (see the README there). CPU stages come from
    ``configs/profiles/cpu.yaml`` (measured here with ``streamwise bench``).

How a runtime is computed (seconds; pixels = width x height; frames = output video frames)
    A mapping file gives one configuration per (GPU type, GPU count). The authors note that time
    is about linear in denoising steps and in frames and grows faster than linearly with pixels
    (attention). The mapping row is kept as the anchor and scaled by a *shape* fitted by
    non-negative least squares on relative error to the raw benchmark runs of the same GPU count
    (nearest measured count and GPU type otherwise)::

        step(L, P) = max(floor, c0 + c1*T + c2*T**2 + c3*P)   P = pixels/256 (8x VAE, 2x2 patches)
        runtime    = steps * step_s * step(L, P) / step(L0, P0) + vae_s * vae(F, P) / vae(F0, P0)
        vae(F, P)  = v0 + v1 * F * P                          T = L*P tokens, L latent frames

    so the reference configuration reproduces its mapping row and other qualities follow the
    measured scaling. ``floor`` is the per-step floor of multi-GPU runs (communication and
    launch overheads) that small images and clips hit. ``python -m streamwise.core.profiles`` prints
    the fit errors. The fitting is :mod:`streamwise.core.profile_fit`; the online correction of
    each worker's speed, :mod:`streamwise.core.correction`.
"""

from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from dataclasses import dataclass, replace

from .correction import OnlineCorrection
from .deadlines import load_profiles
from .profile_fit import (HF_SECTION_FRAMES, SHAPE_FALLBACK, FitStat, _latent_frames, _pick, _rows, _shapes, _stat,
                          _step_shape, _vae_shape)

__all__ = ["HARDWARE", "FLUX_REF", "UPSCALER_REF_PIXELS", "ALIASES", "measured_paths", "ProfileBook", "main",
           # defined in .profile_fit and .correction (here before the split)
           "SHAPE_FALLBACK", "HF_SECTION_FRAMES", "FitStat", "OnlineCorrection"]

HARDWARE = ("a100", "h100", "h200", "gb200")
FLUX_REF = (1280, 800, 25)   # the authors' simulator: NUM_PIXELS_ORIGINAL_FLUX, NUM_STEPS[FLUX]
UPSCALER_REF_PIXELS = 1280 * 800  # NUM_PIXELS_ORIGINAL_UPSCALER (output pixels)
ALIASES = {"fantasytalking": "fantasytalking", "ft": "fantasytalking",
           "hunyuanframepack": "hunyuanframepack", "framepack": "hunyuanframepack", "hf": "hunyuanframepack",
           "flux": "flux", "gemma": "gemma", "kokoro": "kokoro", "others": "kokoro",
           "realesrgan": "realesrgan", "upscaler": "realesrgan",
           "llm": "gemma"}   # the screenplay LLM's bus model; on GPU it serves Gemma-3-27B (configs/models.yaml llm:)
_TAG = {"fantasytalking": "ft", "hunyuanframepack": "hf", "flux": "flux"}
_MODE = {"fantasytalking": "latent", "hunyuanframepack": "sections", "flux": "none"}


@dataclass(frozen=True, slots=True)
class _Video:
    """A diffusion model on one (GPU type, GPU count): its mapping row and fitted shapes.
    ``frame_mode``: ``latent`` (Wan2.1 tokens over all frames), ``sections`` (FramePack: step
    time per section of pixels, linear in frames) or ``none`` (an image)."""

    step_s: float
    vae_s: float
    steps: int
    frames: int
    width: int
    height: int
    c: tuple[float, ...]
    v: tuple[float, float]
    frame_mode: str
    shape_from: str
    s0: float = 1.0
    v0: float = 1.0

    def _parts(self, width: float, height: float, frames: float) -> tuple[float, float]:
        P = width * height / 256.0
        if self.frame_mode == "latent":
            step = _step_shape(self.c, _latent_frames(frames), P)
        else:
            step = _step_shape(self.c, 1.0, P)
            if self.frame_mode == "sections":
                step *= frames / self.frames
        return step, self.v[0] + self.v[1] * frames * P

    def runtime(self, width: float | None, height: float | None, steps: float | None,
                frames: float | None, units: float | None) -> float:
        step, vae = self._parts(width or self.width, height or self.height, frames or self.frames)
        return (steps or self.steps) * self.step_s * step / self.s0 + self.vae_s * vae / self.v0


@dataclass(frozen=True, slots=True)
class _Affine:
    """``(base_s + per_s * max(n - offset, 0)) * pixels / ref_pixels`` with ``n`` the units
    (or the frames when ``unit`` is ``frames``), ``default`` when neither is given; the pixel
    factor applies only when ``ref_pixels`` is set and width and height are given."""

    base_s: float
    per_s: float
    unit: str
    default: float
    offset: float = 0.0
    ref_pixels: float = 0.0

    def runtime(self, width: float | None, height: float | None, steps: float | None,
                frames: float | None, units: float | None) -> float:
        n = units if units is not None else frames if (self.unit == "frames" and frames is not None) else self.default
        t = self.base_s + self.per_s * max(n - self.offset, 0.0)
        if self.ref_pixels and width and height:
            t *= width * height / self.ref_pixels
        return t


def _anchored(e: _Video) -> _Video:
    """``e`` normalised so that its reference configuration has shape 1 (s0, v0 filled in)."""
    step0, vae0 = e._parts(e.width, e.height, e.frames)
    return replace(e, s0=step0, v0=vae0)


#: Model names of measured profiles (``streamwise profile --model``) -> book names; ``<name>:shape`` -> the
#: reference model whose scaling a measured model without its own reference borrows.
_MEASURED_ALIASES = {"realesrgan-x2": "realesrgan", "flux-kontext": "flux-kontext", "flux-kontext:shape": "flux"}


def measured_paths() -> list[str]:
    """Measured profile CSVs named by ``$STREAMWISE_PROFILES`` (files or folders of ``*.csv``,
    separated by ``os.pathsep``); empty when unset."""
    import glob
    import os

    out: list[str] = []
    for item in filter(None, os.environ.get("STREAMWISE_PROFILES", "").split(os.pathsep)):
        out += sorted(glob.glob(os.path.join(item, "*.csv"))) if os.path.isdir(item) else [item]
    return out


class ProfileBook:
    """Expected runtimes by (model, hardware, GPU count); build it with :meth:`load`."""

    def __init__(self, entries: dict[tuple[str, str, int], _Video | _Affine], fits: list[FitStat]) -> None:
        self._entries = entries
        self.fits = fits
        self._alias = dict(ALIASES) | {m: m for m, _, _ in entries}
        self._known: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for m, hw, g in sorted(entries, key=lambda k: (k[0], HARDWARE.index(k[1]) if k[1] in HARDWARE else 9, k[2])):
            self._known[m].append((hw, g))

    @classmethod
    def load(cls) -> ProfileBook:
        """Read the packaged reference CSVs and ``cpu.yaml`` and fit the shapes (tens of ms).

        GPU models: fantasytalking, hunyuanframepack, flux, gemma, kokoro, realesrgan on a100, h100,
        h200, gb200 with the GPU counts of their mapping files. CPU stages (``cpu.yaml``): hardware
        ``cpu``, GPU count 0. Raises ``OSError`` / ``ValueError`` / ``KeyError`` on missing or
        malformed files."""
        fits: list[FitStat] = []
        entries: dict[tuple[str, str, int], _Video | _Affine] = {}
        raw = {m: _shapes(f"{m}.csv", m, fits) for m in _MODE}
        vae = {m: _vae_shape(m, fits) for m in ("fantasytalking", "hunyuanframepack")} | {"flux": (1.0, 0.0)}
        image = {"steps": FLUX_REF[2], "frames": 1, "width": FLUX_REF[0], "height": FLUX_REF[1], "vae_time": 0.0}
        for hw in HARDWARE:
            for m, mode in _MODE.items():
                src, pred, obs = f"latency_{_TAG[m]}_mapping_{hw}.csv", [], []
                for r in _rows(src):
                    r = (image if m == "flux" else {}) | r  # FLUX rows are seconds per step: give the image
                    ws, avg = int(r["world_size"]), float(r["avg_steps_time"])
                    g = _pick(raw[m], hw, ws)
                    e = _anchored(_Video(avg, float(r["vae_time"]), int(r["steps"]), int(r["frames"]), int(r["width"]),
                                       int(r["height"]), raw[m][g], vae[m], mode, f"{g[0]}x{g[1]}"))
                    entries[(m, hw, ws)] = e
                    pred.append(e.runtime(None, None, None, None, None))
                    obs.append(float(r.get("total_time", avg * FLUX_REF[2])))
                fits.append(_stat(m, hw, None, src, pred, obs))
            for m, src, base, per, unit in (("gemma", "gemma", "first_scene_time", "per_scene_time", "scenes"),
                                            ("kokoro", "others", "", "time", "scenes"),
                                            ("realesrgan", "upscaler", "", "avg_steps_time", "frames")):
                src, pred, obs = f"latency_{src}_{hw}.csv", [], []
                for r in _rows(src):
                    b, p = float(r.get(base, 0.0)), float(r[per])
                    e = _Affine(b, p, unit, 1.0, 1.0 if b else 0.0, UPSCALER_REF_PIXELS if m == "realesrgan" else 0.0)
                    entries[(m, hw, int(r.get("tp", r.get("world_size", 0))))] = e
                    pred += [e.runtime(None, None, None, None, 1), e.runtime(None, None, None, None, 2)]
                    obs += [b or p, b + p if b else 2 * p]
                fits.append(_stat(m, hw, None, src, pred, obs))
        # one reader of cpu.yaml for the whole scheduler: the plan's upstream deadlines and
        # placement's CPU estimates come from the same validated StageProfiles
        for stage, p in load_profiles().items():
            entries[(stage, "cpu", 0)] = _Affine(p.base_s, p.per_unit_s, p.unit, 0.0)
        book = cls(entries, fits)
        for path in measured_paths():   # $STREAMWISE_PROFILES: profiles written by `streamwise profile`
            book = book.with_measured(path)
        return book

    def with_measured(self, path: str, *, model: str | None = None, hardware: str | None = None) -> ProfileBook:
        """A copy of this book plus the measured profile at ``path`` (written by ``streamwise profile``: the
        ``latency_ft_mapping`` columns, then ``# model: ...`` / ``# hardware: ...`` comment lines).

        For each ``world_size`` the row with the most work (steps x frames x pixels) becomes the anchor of a
        new (model, hardware, world_size) entry, as a mapping row is for the reference profiles; how time
        scales away from it is borrowed from the model's reference shape (H100 first). Real-ESRGAN rows are
        seconds per input frame at ``width`` x ``height`` (output 2x per side). ``model`` / ``hardware``
        override the file's comments.

        Raises:
            OSError: unreadable file. KeyError / ValueError: no model named, an unknown model, bad rows.
        """
        import os

        lines = [ln for ln in open(os.fspath(path), encoding="utf-8").read().splitlines() if ln.strip()]
        notes = {k.strip(): v.strip() for k, _, v in (ln[1:].partition(":") for ln in lines[1:] if ln.startswith("#"))}
        header = lines[0].lstrip("#").strip().split(",")
        rows = [dict(zip(header, r)) for r in csv.reader(ln for ln in lines[1:] if not ln.startswith("#"))]
        given = model or notes.get("model")
        if not given or not rows:
            raise ValueError(f"{path}: no rows, or no model (pass model= or a '# model: NAME' line)")
        name = _MEASURED_ALIASES.get(given, None) or self._name(given)
        shape_of = _MEASURED_ALIASES.get(f"{name}:shape", name)
        hw = (hardware or notes.get("hardware") or "measured").lower()
        entries = dict(self._entries)
        by_ws: dict[int, list[dict[str, str]]] = defaultdict(list)
        for r in rows:
            by_ws[int(r["world_size"])].append(r)
        for ws, rs in by_ws.items():
            a = max(rs, key=lambda r: int(r.get("steps", 1)) * int(r.get("frames", 1)) * int(r["width"]) * int(r["height"]))
            ref = self._reference(shape_of, ws)
            if isinstance(ref, _Video):
                e: _Video | _Affine = _anchored(replace(
                    ref, step_s=float(a["avg_steps_time"]), vae_s=float(a["vae_time"]), steps=int(a["steps"]),
                    frames=int(a["frames"]), width=int(a["width"]), height=int(a["height"])))
            else:   # Real-ESRGAN x2: seconds per frame; the book's runtime_s takes output pixels
                e = _Affine(0.0, float(a["avg_steps_time"]), "frames", 1.0, 0.0, 4.0 * int(a["width"]) * int(a["height"]))
            entries[(name, hw, ws)] = e
        return ProfileBook(entries, self.fits)

    def _reference(self, model: str, gpus: int) -> _Video | _Affine | None:
        """The reference entry whose shape a measured profile of ``model`` borrows (H100 first, nearest count)."""
        cands = [(k, e) for k, e in self._entries.items() if k[0] == model and k[1] in HARDWARE]
        if not cands:
            return None
        order = ("h100", "h200", "a100", "gb200")
        return min(cands, key=lambda ke: (abs(math.log2(max(ke[0][2], 1) / max(gpus, 1))), order.index(ke[0][1])))[1]

    def _name(self, model: str) -> str:
        name = self._alias.get(model.lower())
        if name is None:
            raise KeyError(f"unknown model {model!r}; known: {sorted(self._alias)}")
        return name

    def known(self, model: str) -> list[tuple[str, int]]:
        """(hardware, GPU count) pairs profiled for ``model`` (any alias); CPU stages list
        ``("cpu", 0)``. Raises ``KeyError`` for an unknown model."""
        return list(self._known[self._name(model)])

    def models(self) -> list[str]:
        """Canonical model and CPU stage names."""
        return sorted(self._known)

    def runtime_s(self, model: str, hardware: str, gpus: int, *, width: int | None = None,
                  height: int | None = None, steps: int | None = None, frames: int | None = None,
                  units: float | None = None) -> float:
        """Expected seconds for one task of ``model`` on ``gpus`` GPUs of ``hardware``.

        Arguments left ``None`` take the profiled configuration. ``width``/``height`` in pixels,
        ``frames`` = output video frames, ``steps`` = denoising steps.

        - fantasytalking: one clip; reference 640x480, 77 frames, 10 steps (mapping row). Step time
          from Wan2.1 tokens (``(frames-1)/4+1`` latent frames x pixels/256) + VAE decode.
        - hunyuanframepack: one chunk; reference 640x480 (as the mapping says; its per-step time
          matches the raw runs near 320x240 and the authors' simulator calls it 512x320), 324
          frames, 10 steps; linear in frames (36-frame sections), shape in pixels.
        - flux: one image: steps x seconds/step; reference 1280x800, 25 steps (the resolution and
          steps of the authors' simulator; the raw runs agree with the mapping near 1280x720).
        - gemma: ``units`` scenes (default 1): first_scene_time + per_scene_time x (units - 1),
          for the authors' 20K input tokens.
        - kokoro (TTS + YOLO crop): time per scene x ``units`` (default 1).
        - realesrgan: seconds per frame x ``frames`` (or ``units``; default 1), times output
          pixels / (1280x800) when width and height are given.
        - CPU stages (hardware ``cpu``; ``gpus`` is ignored): base_s + per_unit_s x ``units``
          (``frames`` when the stage's unit is frames; default 0).

        GB200 beyond 4 GPUs and the 10-40 GPU (multi-server) rows are the authors' extrapolations.
        With several GPUs a step has a floor, so small images and clips can run faster on fewer
        GPUs (as the raw runs show): compare counts rather than assume more is faster.

        Raises:
            KeyError: unknown model, or (model, hardware, gpus) not profiled; the message lists
                what is known.
            ValueError: a non-positive width/height/steps/frames or negative units.
        """
        name = self._alias.get(model.lower()) or self._name(model)
        hw = hardware.lower()
        entry = self._entries.get((name, hw, 0 if hw == "cpu" else gpus))
        if entry is None:
            raise KeyError(f"no profile for {name!r} on {hardware!r} x {gpus}; known (hardware, gpus): {self._known[name]}")
        if ((width is not None and width <= 0) or (height is not None and height <= 0) or (steps is not None and steps <= 0)
                or (frames is not None and frames <= 0) or (units is not None and units < 0)):
            raise ValueError(f"width={width} height={height} steps={steps} frames={frames} must be > 0, units={units} >= 0")
        return entry.runtime(width, height, steps, frames, units)

    def shape_source(self, model: str, hardware: str, gpus: int) -> str:
        """Raw group (``<gpu>x<count>``) whose scaling a diffusion entry borrows; '' otherwise."""
        e = self._entries[(self._name(model), hardware.lower(), gpus)]
        return e.shape_from if isinstance(e, _Video) else ""

    def fit_report(self) -> str:
        """Table of fit errors: mapping rows reproduced per (model, hardware), then the step and
        VAE shape fits on the raw benchmark rows per (GPU type, GPU count)."""
        out = [f"{'model':<17} {'hardware':<8} {'gpus':>4} {'rows':>4} {'max err':>8} {'median':>8}  source"]
        for f in sorted(self.fits, key=lambda f: (f.gpus is not None, f.model, f.source, f.hardware, f.gpus or 0)):
            gp = "" if f.gpus is None else str(f.gpus)
            shapes = sorted({self.shape_source(f.model, hw, g) for hw, g in self._known[f.model] if hw == f.hardware} - {""})
            shapes_txt = f" (shapes {','.join(shapes)})" if f.gpus is None and shapes else ""
            out.append(f"{f.model:<17} {f.hardware:<8} {gp:>4} {f.rows:>4} {f.max_rel_err:>8.2%} {f.median_rel_err:>8.2%}  {f.source}{shapes_txt}")
        return "\n".join(out)


def main() -> None:
    """Print the fit report and the cost of one ``runtime_s`` call."""
    t0 = time.perf_counter()
    book = ProfileBook.load()
    print(f"loaded in {time.perf_counter() - t0:.3f} s\n{book.fit_report()}")
    for args, kw in ((("ft", "h100", 4), {"width": 1280, "height": 720, "steps": 20, "frames": 77}),
                     (("flux", "a100", 1), {"width": 640, "height": 400}), (("tts", "cpu", 0), {"units": 3.5})):
        n = 50_000
        t0 = time.perf_counter()
        for _ in range(n):
            book.runtime_s(*args, **kw)
        dt = (time.perf_counter() - t0) / n
        print(f"runtime_s{args} = {book.runtime_s(*args, **kw):.3f} s; {dt * 1e6:.2f} us per call")


if __name__ == "__main__":
    main()
