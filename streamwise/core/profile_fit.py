"""Fitting the reference profiles' scaling (:mod:`streamwise.core.profiles` builds its book with it):
the reference CSVs read (:func:`_rows`), the step-time shapes fitted by non-negative least squares on
relative error to the raw benchmark runs (:func:`_shapes`, :func:`_fit_step`), the VAE shapes
(:func:`_vae_shape`), which raw group a (GPU type, GPU count) borrows (:func:`_pick`) and how well a
fit reproduces its rows (:class:`FitStat`). The formulas are in :mod:`streamwise.core.profiles`'s
docstring; the numbers' source is ``configs/profiles/reference/README.md``."""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: Shapes are borrowed from raw runs in this order of GPU type (GB200 has no raw runs).
SHAPE_FALLBACK = {"a100": ("a100", "h100", "h200"), "h100": ("h100", "h200", "a100"),
                  "h200": ("h200", "h100", "a100"), "gb200": ("h200", "h100", "a100")}
HF_SECTION_FRAMES = 36       # FramePack generates 36-frame sections (raw runs: 36..324 frames)


def _text(*parts: str) -> str:
    return resources.files("streamwise.configs").joinpath("profiles", *parts).read_text()


def _rows(name: str) -> list[dict[str, str]]:
    """Rows of a reference CSV: the first line is the header (a leading ``#`` dropped); later
    lines starting with ``#`` are the authors' comments."""
    lines = [ln for ln in _text("reference", name).splitlines() if ln.strip()]
    header = lines[0].lstrip("#").strip().split(",")
    return [dict(zip(header, r)) for r in csv.reader(ln for ln in lines[1:] if not ln.startswith("#"))]


def _latent_frames(frames: float) -> float:
    """Wan2.1 latent frames: the first frame alone, then 4x temporal compression."""
    return (frames - 1.0) / 4.0 + 1.0


def _nnls_rel(X: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """Coefficients c >= 0 minimising sum((X c / y - 1)**2): least squares on every subset of
    columns, keeping the best non-negative solution (X has at most 4 columns)."""
    scale = np.abs(X / y[:, None]).max(axis=0)
    A, ones = X / y[:, None] / scale, np.ones(len(y))
    best: tuple[float, tuple[int, ...], np.ndarray] = (math.inf, (), np.zeros(0))
    for k in range(1, X.shape[1] + 1):
        for cols in itertools.combinations(range(X.shape[1]), k):
            c = np.linalg.lstsq(A[:, cols], ones, rcond=None)[0]
            sse = float(((A[:, cols] @ c - 1.0) ** 2).sum())
            if (c >= 0).all() and sse < best[0]:
                best = (sse, cols, c)
    out = np.zeros(X.shape[1])  # a single column always has a positive solution (y > 0)
    out[list(best[1])] = best[2] / scale[list(best[1])]
    return tuple(out.tolist())


def _fit_step(X: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """``(c0, c1, c2, c3, floor)`` of ``max(floor, X c)``: for each candidate floor (none, or one
    of the measured times) the polynomial is fitted by :func:`_nnls_rel` to the points above it;
    the candidate with the smallest maximum relative error wins."""
    pad = (0.0,) * (4 - X.shape[1])
    best = (math.inf, (0.0,))
    for floor in [0.0, *sorted(set(y.tolist()))[:-2]]:
        above = y > floor
        c = _nnls_rel(X[above], y[above]) + pad + (floor,)
        err = float(np.abs(np.maximum(floor, X @ np.array(c[:X.shape[1]])) / y - 1.0).max())
        if err < best[0] - 1e-9:
            best = (err, c)
    return best[1]


def _step_shape(c: tuple[float, ...], L: float, P: float) -> float:
    T = L * P
    return max(c[4], c[0] + T * (c[1] + c[2] * T) + c[3] * P)


@dataclass(frozen=True)
class FitStat:
    """How well a fit reproduces the rows it describes: relative errors (0.01 = 1 %)."""

    model: str
    hardware: str
    gpus: int | None
    source: str
    rows: int
    max_rel_err: float
    median_rel_err: float


def _stat(model: str, hw: str, gpus: int | None, source: str, pred: list[float], obs: list[float]) -> FitStat:
    err = [abs(p / o - 1.0) for p, o in zip(pred, obs)]
    return FitStat(model, hw, gpus, source, len(err), max(err), statistics.median(err))


def _shapes(name: str, model: str, fits: list[FitStat]) -> dict[tuple[str, int], tuple[float, ...]]:
    """Step-time shapes by (GPU type, GPU count) from a raw benchmark file. Kept: runs with
    torch.compile, >= 5 steps (1-2 step runs are off by up to ~10 %), all steps done, positive
    times, known GPU type (not H100 NVL), not multi-GPU over PCIe (the A100 PCIe runs pay a 2-4 s
    per-step floor that the A100 mappings do not show) and, for FantasyTalking, not 81 frames
    (2-10x slower than 77: beyond its 77-frame clip). Seconds per step = total_steps_time / steps
    (per 36-frame section for FramePack), median over repeated runs of one configuration; groups
    with fewer than 5 configurations are dropped (too few to fit the shape)."""
    acc: dict[tuple[str, int], dict[tuple[float, float], list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in _rows(name):
        gpu, steps, frames = r["gpu_model"], int(r["steps"]), int(r.get("frames", 1))
        hw = "a100" if "A100" in gpu else "h200" if "H200" in gpu else "h100" if "H100 80GB" in gpu else None
        if (hw is None or ("PCIe" in gpu and r["world_size"] != "1") or r["torch_compile"] != "True"
                or steps < 5 or float(r["num_steps"]) != steps
                or float(r["avg_steps_time"]) <= 0 or float(r["total_time"]) <= 0 or frames == 81):
            continue
        step = float(r["total_steps_time"]) / steps
        L = _latent_frames(frames) if model == "fantasytalking" else 1.0
        if model == "hunyuanframepack":
            step /= frames / HF_SECTION_FRAMES
        acc[(hw, int(r["world_size"]))][(L, int(r["width"]) * int(r["height"]) / 256.0)].append(step)
    out = {}
    for (hw, ws), pts in sorted(acc.items()):
        if len(pts) < 5:
            continue
        keys = sorted(pts)
        y = np.array([statistics.median(pts[k]) for k in keys])
        X = np.array([[1.0, L * P, (L * P) ** 2, P] for L, P in keys])
        if model != "fantasytalking":
            X = X[:, :3]  # images and FramePack sections: T = P, no separate per-frame term
        c = _fit_step(X, y)
        out[(hw, ws)] = c
        fits.append(_stat(model, hw, ws, f"{name} step shape", [_step_shape(c, L, P) for L, P in keys], list(y)))
    return out


def _vae_shape(model: str, fits: list[FitStat]) -> tuple[float, float]:
    """VAE time ``v0 + v1 * frames * P``: FantasyTalking from Wan2.1's ``vae_dec`` on A100
    (wan-timing-a100.csv), FramePack from total_time - total_steps_time of the raw H100
    one-GPU runs (VAE decode plus encoders: the VAE is not parallelised)."""
    acc: dict[tuple[int, float], list[float]] = defaultdict(list)
    if model == "fantasytalking":
        name = "wan-timing-a100.csv"
        for r in _rows(name):
            if float(r["vae_dec"]) > 0:
                acc[(int(r["frames"]), int(r["width"]) * int(r["height"]) / 256.0)].append(float(r["vae_dec"]))
    else:
        name = "hunyuanframepack.csv"
        for r in _rows(name):
            steps = int(r["steps"])
            if ("H100 80GB" in r["gpu_model"] and r["world_size"] == "1" and steps >= 5 and float(r["num_steps"]) == steps
                    and float(r["avg_steps_time"]) > 0 and float(r["total_time"]) > 0):
                acc[(int(r["frames"]), int(r["width"]) * int(r["height"]) / 256.0)].append(
                    float(r["total_time"]) - float(r["total_steps_time"]))
    keys = sorted(acc)
    y = np.array([statistics.median(acc[k]) for k in keys])
    v = _nnls_rel(np.array([[1.0, F * P] for F, P in keys]), y)
    fits.append(_stat(model, "a100" if model == "fantasytalking" else "h100", 1, f"{name} vae shape",
                      [v[0] + v[1] * F * P for F, P in keys], list(y)))
    return v[0], v[1]


def _pick(shapes: dict[tuple[str, int], tuple[float, ...]], hw: str, ws: int) -> tuple[str, int]:
    """Raw group for (hw, ws): nearest GPU count (log2), then GPU type in SHAPE_FALLBACK order."""
    chain = SHAPE_FALLBACK[hw]
    return min((k for k in shapes if k[0] in chain), key=lambda k: (abs(math.log2(k[1] / ws)), chain.index(k[0]), k[1]))
