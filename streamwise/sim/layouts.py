"""The provisioner's per-stage layouts (steps 1 and 2 of :mod:`streamwise.sim.provision`).

For every model and GPU type, every instance layout the paper's model allows -- a pool of ``r``
identical instances of ``d`` GPUs (``d`` from the valid GPU counts, ``r`` up to the model's
work), optionally plus one larger "lead" instance that serves the first chunk fast --
evaluated in closed form with numpy (:func:`model_options`: the same formulas as
:class:`streamwise.sim.analytic.Model`, checked against it in the tests); the layouts another
one dominates for every weight are dropped (:func:`prune_dominated`), and of the rest the
Pareto front and lower convex hull in ($/h, seconds) are what the search merges
(:func:`_pareto_idx`, :func:`_hull`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analytic import Model
from .cluster import Instance
from .workload import FT, HF


#: Lead-instance sizes tried: the largest valid GPU counts (a lead exists to cut the first chunk).
LEADS = 3


@dataclass
class Options:
    """All layouts of one model on one GPU type: GPUs ``n``, stage time ``t`` and first-unit
    time ``f`` (seconds), pool GPUs-per-instance ``d`` and replicas ``r``, lead instance GPUs
    ``lead`` (0: none)."""

    model: str
    gpu: str
    n: np.ndarray
    t: np.ndarray
    f: np.ndarray
    d: np.ndarray
    r: np.ndarray
    lead: np.ndarray

    def instances(self, k: int) -> list[Instance]:
        """The instance groups of option ``k``."""
        out = [Instance(self.model, self.gpu, int(self.d[k]), int(self.r[k]))]
        if self.lead[k]:
            out.append(Instance(self.model, self.gpu, int(self.lead[k]), 1))
        return out


def _split(work: int, share: np.ndarray, reps: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Vectorised :func:`streamwise.sim.analytic.split_time`."""
    return np.maximum(np.ceil(share * work - 1e-9) / reps * unit, unit)


def model_options(an: Model, first: Model, m: str, g: str, max_gpus: int, thin: bool = False) -> Options | None:
    """Every layout of ``m`` on GPU type ``g`` within ``max_gpus`` GPUs (None: not profiled).
    ``first`` is the model whose first-unit times count (the low level for adaptive quality);
    ``thin``: replica counts from :func:`replica_counts` instead of every count."""
    w, tab = an.w, an.t
    ds = [d for d in w.gpu_counts[m] if d <= max_gpus and tab.has(m, g, d)]
    if not ds:
        return None
    work = w.work(m)
    cols: dict[str, list] = {k: [] for k in ("n", "t", "f", "d", "r", "lead")}

    def add(n, t, f, d, r, lead):
        for k, v in zip(cols, (n, t, f, d, r, lead)):
            cols[k].append(np.asarray(v, dtype=float))

    if work <= 1:
        for d in ds:
            add([d], [an.unit_s(m, g, d)], [first.first_s(m, g, d)], [d], [1], [0])
    else:
        inline = m in (HF, FT) and not w.disaggregate.get(m, False)
        frames = w.total_frames(m) if inline else 0
        for d in ds:
            rmax = min(work, max_gpus // d)
            r = replica_counts(rmax) if thin else np.arange(1, rmax + 1, dtype=float)
            u, lat = an.unit_s(m, g, d), an.capacity_latency(m, g, d)
            v = an.vae_inline_s(m, g) if inline else 0.0
            fd = first.first_s(m, g, d)
            t = _split(work, np.ones_like(r), r, np.full_like(r, u))
            if inline:
                t = t + _split(frames, np.ones_like(r), r, np.full_like(r, v))
            add(d * r, t, np.full_like(r, fd), np.full_like(r, d), r, np.zeros_like(r))
            for d1 in ds[-LEADS:]:             # a lead instance larger than the pool's
                if d1 <= d or d1 + d > max_gpus:
                    continue
                r2 = r[d * r + d1 <= max_gpus]
                c1, c2 = 1.0 / an.capacity_latency(m, g, d1), r2 / lat
                s1 = c1 / (c1 + c2)
                u1 = an.unit_s(m, g, d1)
                t1 = _split(work, s1, np.ones_like(r2), np.full_like(r2, u1))
                t2 = _split(work, 1.0 - s1, r2, np.full_like(r2, u))
                if inline:
                    t1 = t1 + _split(frames, s1, np.ones_like(r2), np.full_like(r2, v))
                    t2 = t2 + _split(frames, 1.0 - s1, r2, np.full_like(r2, v))
                add(d * r2 + d1, np.maximum(t1, t2), np.full_like(r2, min(fd, first.first_s(m, g, d1))),
                    np.full_like(r2, d), r2, np.full_like(r2, d1))
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return Options(m, g, cat["n"].astype(int), cat["t"], cat["f"], cat["d"].astype(int), cat["r"].astype(int),
                   cat["lead"].astype(int))


def prune_dominated(o: Options) -> Options:
    """``o`` without the layouts another one dominates for every weight ``mu >= 0``: q
    dominates p when ``n_q <= n_p``, ``t_q <= t_p``, ``f_q <= f_p`` and q is strictly smaller in
    GPUs, or equal in GPUs and strictly faster (ties in both kept, so that every later
    tie-break by index is unchanged). Such a p never survives :func:`_pareto_idx` (it is
    never cheaper and never better on ``t + mu f``) and never wins in :func:`streamwise.sim.provision._fill` (the
    objective is monotone in M and F), so the search's result is the same; most layouts go
    (the FantasyTalking grid of ~4,600 leaves a few hundred). Vectorised: f takes few values
    per model and GPU type, so one exclusive prefix-minimum of t per f level, in (n, t) order."""
    n, t, f = o.n, o.t, o.f
    order = np.lexsort((t, n))
    ns, ts, fs = n[order], t[order], f[order]
    levels = np.unique(fs)
    keep = np.ones(len(order), dtype=bool)
    # group starts of equal (n, t): a dominator must come from an earlier group
    new_grp = np.ones(len(order), dtype=bool)
    new_grp[1:] = (ns[1:] != ns[:-1]) | (ts[1:] != ts[:-1])
    grp_start = np.maximum.accumulate(np.where(new_grp, np.arange(len(order)), 0))
    for fv in levels:
        tt = np.where(fs <= fv, ts, np.inf)
        incl = np.minimum.accumulate(tt)
        excl = np.concatenate(([np.inf], incl[:-1]))       # min t over positions < i with f <= fv
        before = excl[grp_start]                            # ... over earlier (n, t) groups only
        keep &= ~((fs == fv) & (before <= ts))
    k = np.sort(order[keep])
    return Options(o.model, o.gpu, o.n[k], o.t[k], o.f[k], o.d[k], o.r[k], o.lead[k])


def _pareto_idx(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices of the points no cheaper-or-equal point beats on v (increasing x, strictly
    decreasing v), vectorised."""
    order = np.lexsort((v, x))
    vs = v[order]
    prev = np.minimum.accumulate(np.concatenate(([np.inf], vs[:-1])))
    return order[vs < prev - 1e-12]


def _hull(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices of the lower-left convex hull of points (x, v): increasing x, decreasing v
    (Andrew's monotone chain over the Pareto points)."""
    idx = _pareto_idx(x, v)
    for _ in range(64):                 # vectorised passes drop the non-hull points first:
        if len(idx) <= 3:               # a point on or above its neighbours' chord is never
            break                       # a hull vertex
        xa, va = x[idx], v[idx]
        cross = (va[1:-1] - va[:-2]) * (xa[2:] - xa[:-2]) - (va[2:] - va[:-2]) * (xa[1:-1] - xa[:-2])
        keep = np.ones(len(idx), dtype=bool)
        keep[1:-1] = cross < 0
        if keep.all():
            break
        idx = idx[keep]
    xs, vs = x[idx].tolist(), v[idx].tolist()
    hull: list[int] = []
    for k in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (vs[b] - vs[a]) * (xs[k] - xs[a]) >= (vs[k] - vs[a]) * (xs[b] - xs[a]):
                hull.pop()
            else:
                break
        hull.append(k)
    return idx[hull]


def replica_counts(rmax: int, dense: int = 48, points: int = 96) -> np.ndarray:
    """Replica counts tried for a pool: every count up to ``dense``, then a geometric grid
    (~``points`` more, spaced ~3-5 %) up to ``rmax``. Past a few dozen replicas one more
    changes a stage's time by well under 1 %, and the final slack filling
    (:func:`streamwise.sim.provision._fill`) tries every count again."""
    r = np.arange(1, min(rmax, dense) + 1)
    if rmax > dense:
        r = np.unique(np.concatenate((r, np.round(np.geomspace(dense, rmax, points)).astype(int), [rmax])))
    return r.astype(float)
