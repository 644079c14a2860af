"""Discrete-event simulator running the live scheduler's policies.

Every request of the workload is the podcast DAG, per request (the paper's 10-minute podcast:
43 scenes, 172 clips):

    screenplay (Gemma; scene k streams out at first + k * per-scene) -> TTS of scene k (Kokoro)
    scene 0 -> studio image (FLUX)
    image + TTS of its scene -> clip c: FramePack sketch -> [FramePack VAE, when disaggregated]
        -> talking head (FantasyTalking, at a quality rung) -> [Real-ESRGAN x2, for an
        ``upscale`` rung when the cluster has upscaler instances] -> segment c (in order)

Policies are the live ones, called unchanged:

- **Deadlines** (:mod:`streamwise.core.deadlines`): segment c is due at
  ``segment_deadline(t_submit, TTFF SLO, c * clip length)``; every upstream node at
  ``upstream_deadline(child deadline, child expected runtime)``, the minimum over children.
- **Dispatch and instance selection** (:func:`streamwise.core.placement.assign`): ready nodes of
  all requests wait in one queue per stage, in deadline order (EDF) or arrival order (FIFO);
  each goes to the instance with the earliest expected completion (its queued seconds plus
  the node's runtime there), ties to the cheaper $/s, at most ``cap`` outstanding per instance.
  Instances run one task at a time from a local queue in the same order (the live worker's
  local EDF heap).
- **Adaptive quality** (:mod:`streamwise.core.quality` through ``assign``): talking-head clips take
  the highest rung of the workload's ladder that meets their deadline on the best instance,
  with the per-request hysteresis of :func:`streamwise.core.quality.next_rung`; the static rung runs
  on CPU instances. The FIFO baseline runs every clip at the top rung.

Runtimes are the analytic model's per-unit times (:class:`streamwise.sim.analytic.Model`: the
reference profiles with the paper's scaling) times the rung's pixels / 640x400 and steps / 10,
so that where the two engines differ it is the model of time -- pipelining between stages and
queueing between requests -- and not the profiles. The static rung takes the CPU profile
(``configs/profiles/cpu.yaml``, stage ``video``).

Spot evictions (optional; spot pricing only): each GPU instance is evicted at the times of a
Poisson process (``evictions_per_hour`` per instance), or at explicit ``evict_at`` times. As
in the live worker, a notice (:data:`streamwise.stages.runtime.worker.EVICTION_NOTICE_S`, 30 s)
makes it drain: it takes no new task, runs the queued tasks that still finish within the
notice (in queue order), hands the rest back at once (they are placed again, elsewhere or
later), and a running task that does not finish within the notice is
lost and runs again from the start. The instance serves again ``replace_s`` seconds after it
is gone (a new VM and the model load: our assumption, 300 s by default). Lost work still
counts as GPU time and energy.

Speed: one heap of events; per stage one ready heap; instances of one (model, GPU type,
GPUs) class are interchangeable, so ``assign`` sees only the least-loaded instance of each class
(a lazy heap per class): a dispatch costs O(classes), not O(instances).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..core.deadlines import load_profiles, segment_deadline, upstream_deadline
from ..core.placement import InstanceView, ReadyNode, assign
from ..core.quality import Ladder, Rung, load_ladders
from .analytic import MEDIUM_PIXELS, Model
from .cluster import SERVER_GPUS, Cluster, catalog
from .workload import FLUX, FT, FT_VAE, GEMMA, HF, HF_VAE, TTS, UPSCALER, SloClass, Workload

CPU = "cpu"
_ARRIVE, _SCENE, _DONE, _NOTICE, _GONE, _BACK = 0, 1, 2, 3, 4, 5
REPLACE_S = 300.0   # s from an evicted instance gone to its replacement serving (VM + model load; our assumption)


@dataclass
class _Inst:
    """One instance (one replica) in the simulation."""

    id: str
    stage: str
    model: str
    gpu: str
    gpus: int
    cls: tuple
    price_per_s: float
    outstanding: int = 0
    busy_until: float = 0.0          # expected time its outstanding work is done
    version: int = 0
    queue: list = field(default_factory=list)
    running: bool = False
    busy_s: float = 0.0
    alive: bool = True               # False between an eviction and its replacement
    draining: bool = False           # an eviction notice is running: no new task
    epoch: int = 0                   # bumped when a running task is lost (its DONE is then stale)
    current: tuple | None = None     # (start, end time, node, rung) of the running task


@dataclass
class RequestStats:
    """Per-request figures (seconds): TTFF after the static slide, makespan (submit to last
    segment), stall time, segments past their deadline, FantasyTalking rungs used."""

    request: int
    slo_class: str
    submitted_s: float
    ttff_slo_s: float
    ttff_s: float = math.inf
    makespan_s: float = math.inf
    stall_s: float = 0.0
    deadline_misses: int = 0
    rungs: Counter = field(default_factory=Counter)


class _Req:
    __slots__ = ("id", "t0", "slo", "cls", "nclips", "tts_done", "flux_done", "clip_done", "next_seg",
                 "seg_t", "dl", "stats", "hf_ready_pending", "scenes_seen")

    def __init__(self, rid: int, t0: float, slo: float, cls: str, w: Workload) -> None:
        self.id, self.t0, self.slo, self.cls = rid, t0, slo, cls
        self.nclips = w.clips
        self.tts_done = [False] * w.scenes
        self.flux_done = False
        self.clip_done = [False] * w.clips
        self.next_seg = 0
        self.seg_t: list[float] = []
        self.dl: dict = {}
        self.stats = RequestStats(rid, cls, t0, slo)
        self.scenes_seen: set[int] = set()    # a re-run screenplay streams its scenes again


class Simulator:
    """Discrete-event simulation of ``w`` (its arrivals) on the instances of ``cluster``.

    ``policy``: ``edf`` (StreamWise: deadline order, adaptive quality) or ``fifo`` (arrival
    order, top rung only). ``cpu_instances``: CPU workers serving the static rung. ``cap``:
    outstanding tasks per instance (the live scheduler's cap). Spot evictions (see the module
    docstring): ``evictions_per_hour`` per GPU instance (Poisson, drawn with ``seed``; only
    with spot pricing), ``evict_at`` explicit ``(instance id, notice time in s)`` pairs, and
    ``replace_s`` seconds from gone to serving again.

    Raises:
        ValueError: an unknown policy, a negative rate, or an ``evict_at`` instance that does
            not exist or is a CPU instance.
    """

    def __init__(self, cluster: Cluster, w: Workload, *, policy: str = "edf", cpu_instances: int = 16,
                 cap: int = 3, ladder: Ladder | None = None, evictions_per_hour: float = 0.0,
                 evict_at: list[tuple[str, float]] | None = None, replace_s: float = REPLACE_S,
                 seed: int = 0) -> None:
        if policy not in ("edf", "fifo"):
            raise ValueError(f"policy must be 'edf' or 'fifo', got {policy!r}")
        if evictions_per_hour < 0 or replace_s < 0:
            raise ValueError("evictions_per_hour and replace_s must be >= 0")
        self.c, self.w, self.policy, self.cap = cluster, w, policy, cap
        self.an = Model(w)
        ladder = ladder or w.ladder or load_ladders()[FT]
        self.ladder = ladder     # FIFO too: placement's FIFO takes the best rung the pool serves, no adapting
        self.ladders = {FT: ladder}
        self.cpu_video = load_profiles()["video"]
        self.has_up = any(i.model == UPSCALER for i in cluster.instances)
        cat = catalog()
        self.insts: list[_Inst] = []
        for grp in cluster.instances:
            price = cat[grp.gpu].price(cluster.pricing) * grp.gpus / 3600.0
            for r in range(grp.replicas):
                self.insts.append(_Inst(f"{grp.model}-{grp.gpu}x{grp.gpus}-{r}", grp.model, grp.model, grp.gpu,
                                        grp.gpus, (grp.model, grp.gpu, grp.gpus), price))
        for r in range(cpu_instances if len(ladder.rungs) > 1 else 0):
            m = ladder.model_of(ladder.static)
            self.insts.append(_Inst(f"cpu-{r}", FT, m, CPU, 0, (m, CPU, 0), 0.0))
        self.by_id = {i.id: i for i in self.insts}
        self.classes: dict[str, dict[tuple, list]] = defaultdict(dict)     # stage -> class -> heap
        self.members: dict[tuple, list[_Inst]] = defaultdict(list)        # class -> its instances
        for i in self.insts:
            self.classes[i.stage].setdefault(i.cls, []).append((0.0, i.version, i.id))
            self.members[i.cls].append(i)
        for st in self.classes.values():
            for h in st.values():
                heapq.heapify(h)
        self._rt_cache: dict = {}
        self.events: list = []
        self.seq = itertools.count()
        self.ready: dict[str, list] = defaultdict(list)
        self.states: dict = {}
        self.now = 0.0
        self.reqs: list[_Req] = []
        self.node_seq = itertools.count()
        # expected runtimes on the fastest class of each stage at the top rung, for deadlines
        self.expect = {s: min(self._base(s, cls[1], cls[2], ladder.top) for cls in self.classes[s]
                              if cls[1] != CPU) for s in self.classes if any(c[1] != CPU for c in self.classes[s])}
        # spot evictions
        self.evict_rate_s = evictions_per_hour / 3600.0 if cluster.pricing == "spot" else 0.0
        self.replace_s = replace_s
        self.rng = random.Random(seed)
        self.notice_s = 0.0
        self.evict_at = list(evict_at or [])
        for iid, _ in self.evict_at:
            if iid not in self.by_id or self.by_id[iid].gpu == CPU:
                raise ValueError(f"evict_at: no GPU instance {iid!r} (instances: {', '.join(self.by_id)})")
        if self.evict_rate_s or self.evict_at:
            from ..stages.runtime.worker import EVICTION_NOTICE_S   # the live worker's notice (30 s)

            self.notice_s = EVICTION_NOTICE_S
        self.evictions = self.tasks_rerun = self.tasks_handed_back = 0
        self.lost_gpu_s = 0.0
        self.unfinished = 0

    # ------------------------------------------------------------------ runtimes
    def _base(self, stage: str, gpu: str, gpus: int, rung: Rung | None) -> float:
        """Seconds of one task of ``stage`` on ``gpus`` x ``gpu`` at ``rung``."""
        key = (stage, gpu, gpus, rung)
        v = self._rt_cache.get(key)
        if v is not None:
            return v
        an, w = self.an, self.w
        if gpu == CPU:
            v = self.cpu_video.runtime_s(w.clip_frames(FT)) * (rung.cpu_cost if rung is not None else 1.0)
        elif stage == GEMMA:
            v = an.unit_s(GEMMA, gpu, gpus)
        elif stage == FLUX:
            v = an.unit_s(FLUX, gpu, gpus)
        elif stage == TTS:
            v = an.unit_s(TTS, gpu, gpus) / w.scenes
        elif stage in (HF, FT):
            # FramePack at the workload's resolution; a talking-head clip at its rung's pixels
            # (profiled at 640x400) and steps, in place of the workload's resolution scale
            px = steps = 1.0
            if stage == FT and rung is not None and rung.steps:
                px = rung.width * rung.height / MEDIUM_PIXELS / an.s
                steps = rung.steps / w.steps[FT]
            v = an.unit_s(stage, gpu, gpus) * px * steps
            if not w.disaggregate.get(stage, False):
                v += w.clip_frames(stage) * an.vae_inline_s(stage, gpu) * px
            if stage == FT and rung is not None and rung.upscale and not self.has_up:
                v += w.clip_frames(FT) * an.unit_s(UPSCALER, gpu, min(gpus, 8) if gpus in (1, 2, 4, 8) else 1)
        elif stage in (HF_VAE, FT_VAE):
            v = an.first_s(stage, gpu, gpus)
        else:
            v = w.clip_frames(FT) * an.unit_s(UPSCALER, gpu, gpus)
        self._rt_cache[key] = v
        return v

    def _runtime(self, node: ReadyNode, inst: InstanceView, rung: Rung | None) -> float:
        return self._base(node.stage, inst.hardware, inst.gpus, rung)

    # ------------------------------------------------------------------ events
    def _push(self, t: float, kind: int, payload) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, payload))

    def _ready(self, r: _Req, stage: str, idx: int) -> None:
        dl = r.dl[(stage, idx)]
        self._requeue(ReadyNode((r.id, stage, idx), stage, dl, r.id, (r.t0, next(self.node_seq))))
        self._dispatch(stage)

    def _requeue(self, node: ReadyNode) -> None:
        """Put ``node`` in its stage's ready heap (deadline order for EDF, arrival for FIFO)."""
        key = (node.deadline,) if self.policy == "edf" else node.arrival
        heapq.heappush(self.ready[node.stage], (key, next(self.seq), node))

    def _reps(self, stage: str) -> list[InstanceView]:
        """The snapshot for placement, as the live scheduler's (busy instances included, so the
        hold-for-a-busy-GPU rule sees them): per class of ``stage``, the least-loaded instance
        with room (< cap outstanding), or, when every one is at its cap, the one that frees
        first. ``queued_s`` is its expected seconds of outstanding work from now."""
        out = []
        for cls, h in self.classes[stage].items():     # heaps hold only instances with room
            inst = None
            while h:
                bu, ver, iid = h[0]
                if ver != self.by_id[iid].version:
                    heapq.heappop(h)
                    continue
                inst = self.by_id[iid]
                break
            if inst is None:                           # all at their cap (or gone): the first to free up
                live = [i for i in self.members[cls] if i.alive and not i.draining]
                if not live:
                    continue
                inst = min(live, key=lambda i: (i.busy_until, i.id))
            out.append(InstanceView(inst.id, stage, inst.model, inst.outstanding, True, inst.gpu, inst.gpus,
                                    max(0.0, inst.busy_until - self.now), inst.price_per_s))
        return out

    def _dispatch(self, stage: str) -> None:
        """Place the stage's ready nodes as the live scheduler does: all of them in one call of
        :func:`~streamwise.core.placement.assign` (a node held for a busy instance, or one no
        instance can take, does not stop the nodes behind it), repeated while it dispatches."""
        heap = self.ready[stage]
        while heap:
            reps = self._reps(stage)
            if not any(r.outstanding < self.cap for r in reps):
                return
            nodes = [item[2] for item in heap]
            states = {n.request: self.states[n.request] for n in nodes if n.request in self.states}
            decisions, new = assign(nodes, reps, cap=self.cap, now=self.now, runtime_s=self._runtime,
                                    ladders=self.ladders, states=states, policy=self.policy)
            if not decisions:
                return
            self.states.update(new)
            d = decisions[0]       # the first only: the next call sees this instance's new load
            for k, item in enumerate(heap):
                if item[2] is d.node:
                    heap[k] = heap[-1]
                    heap.pop()
                    heapq.heapify(heap)
                    break
            self._start(self.by_id[d.instance.instance], d.node, d.rung, d.expected_s)

    def _touch(self, inst: _Inst) -> None:
        """Invalidate the instance's heap entry; re-enter it while it has room (< cap)."""
        inst.version += 1
        if inst.outstanding < self.cap and inst.alive and not inst.draining:
            heapq.heappush(self.classes[inst.stage][inst.cls], (inst.busy_until, inst.version, inst.id))

    def _start(self, inst: _Inst, node: ReadyNode, rung: Rung | None, rt: float) -> None:
        inst.outstanding += 1
        inst.busy_until = max(inst.busy_until, self.now) + rt
        self._touch(inst)
        key = node.deadline if self.policy == "edf" else node.arrival
        heapq.heappush(inst.queue, (key, next(self.seq), node, rung, rt))
        if not inst.running:
            self._run_next(inst)

    def _run_next(self, inst: _Inst) -> None:
        _, _, node, rung, rt = heapq.heappop(inst.queue)
        inst.running = True
        inst.busy_s += rt
        inst.current = (self.now, self.now + rt, node, rung)
        rid, stage, idx = node.key
        if stage == GEMMA:          # the screenplay streams its scenes out while it runs
            first = self.an.first_s(GEMMA, inst.gpu, inst.gpus)
            per = (rt - first) / max(self.w.scenes - 1, 1)
            for k in range(self.w.scenes):
                self._push(self.now + first + per * k, _SCENE, (rid, k, inst.id, inst.epoch))
        self._push(self.now + rt, _DONE, (inst.id, node, rung, inst.epoch))

    # ------------------------------------------------------------------ spot evictions
    def _notice(self, inst: _Inst) -> None:
        """Eviction notice: drain as the live worker does (:meth:`Worker.drain`): no new task;
        the queued tasks that still fit in the notice after the running one, in queue order,
        run; the rest are handed back at once; gone after the notice."""
        if not inst.alive or inst.draining:
            return
        inst.draining = True
        inst.version += 1                  # out of its class heap
        end = self.now + self.notice_s
        t = inst.current[1] if inst.current else self.now
        keep = []
        for item in sorted(inst.queue):
            rt = item[4]
            if t + rt <= end:               # finishes within the notice: it runs
                keep.append(item)
                t += rt
            else:
                self._requeue(item[2])
                inst.outstanding -= 1
                self.tasks_handed_back += 1
        inst.queue[:] = keep
        heapq.heapify(inst.queue)
        inst.busy_until = t
        self._push(self.now + self.notice_s, _GONE, inst.id)
        self._dispatch(inst.stage)

    def _gone(self, inst: _Inst) -> None:
        """The notice is over: a task still running is lost (it runs again); the replacement
        serves after ``replace_s``."""
        self.evictions += 1
        if inst.current is not None:
            start, end, node, _ = inst.current
            inst.busy_s -= end - self.now          # the part it never ran
            self.lost_gpu_s += (self.now - start) * inst.gpus
            inst.epoch += 1                       # its DONE (and a screenplay's later scenes) are stale
            inst.current = None
            inst.running = False
            inst.outstanding -= 1
            self.tasks_rerun += 1
            self._requeue(node)
        inst.alive = False
        self._push(self.now + self.replace_s, _BACK, inst.id)
        self._dispatch(inst.stage)

    def _back(self, inst: _Inst) -> None:
        """The replacement instance serves; its next eviction is drawn."""
        inst.alive, inst.draining, inst.busy_until = True, False, self.now
        self._touch(inst)
        self._schedule_eviction(inst)
        self._dispatch(inst.stage)

    def _schedule_eviction(self, inst: _Inst) -> None:
        if self.evict_rate_s and inst.gpu != CPU:
            self._push(self.now + self.rng.expovariate(self.evict_rate_s), _NOTICE, inst.id)

    # ------------------------------------------------------------------ the DAG
    def _admit(self, rid: int, t0: float, slo: float, cls: str) -> None:
        w = self.w
        r = _Req(rid, t0, slo, cls, w)
        self.reqs.append(r)
        e = self.expect
        per_scene = w.clips // w.scenes
        dl = r.dl
        up = e.get(UPSCALER, 0.0) if self.has_up else 0.0
        tts_dl = [math.inf] * w.scenes
        hf_min = math.inf
        for c in range(w.clips):
            seg = segment_deadline(t0, slo, c * w.clip_s)
            dl[(UPSCALER, c)] = seg
            ft = upstream_deadline(seg, up)
            dl[(FT, c)] = ft
            vae = upstream_deadline(ft, e[FT])
            dl[(HF_VAE, c)] = vae
            hf = upstream_deadline(vae, e.get(HF_VAE, 0.0))
            dl[(HF, c)] = hf
            k = min(c // per_scene, w.scenes - 1)
            tts_dl[k] = min(tts_dl[k], upstream_deadline(hf, e[HF]), upstream_deadline(ft, e[FT]))
            hf_min = min(hf_min, upstream_deadline(hf, e[HF]))
        for k in range(w.scenes):
            dl[(TTS, k)] = tts_dl[k]
        dl[(FLUX, 0)] = hf_min
        dl[(GEMMA, 0)] = min(upstream_deadline(hf_min, e[FLUX]), upstream_deadline(tts_dl[0], e[TTS]))
        self._ready(r, GEMMA, 0)

    def _clips_of(self, k: int) -> range:
        per = self.w.clips // self.w.scenes
        hi = self.w.clips if k == self.w.scenes - 1 else (k + 1) * per
        return range(k * per, hi)

    def _done(self, inst: _Inst, node: ReadyNode, rung: Rung | None) -> None:
        inst.outstanding -= 1
        inst.running = False
        inst.current = None
        self._touch(inst)
        if inst.queue:
            self._run_next(inst)
        rid, stage, idx = node.key
        r = self.reqs[rid]
        w = self.w
        if stage == FLUX:
            r.flux_done = True
            for k in range(w.scenes):
                if r.tts_done[k]:
                    for c in self._clips_of(k):
                        self._ready(r, HF, c)
        elif stage == TTS:
            r.tts_done[idx] = True
            if r.flux_done:
                for c in self._clips_of(idx):
                    self._ready(r, HF, c)
        elif stage == HF:
            self._ready(r, HF_VAE if w.disaggregate.get(HF, False) else FT, idx)
        elif stage == HF_VAE:
            self._ready(r, FT, idx)
        elif stage == FT:
            r.stats.rungs[rung.name if rung else "none"] += 1
            if rung is not None and rung.upscale and self.has_up:
                self._ready(r, UPSCALER, idx)
            else:
                self._clip_done(r, idx)
        elif stage == UPSCALER:
            self._clip_done(r, idx)
        self._dispatch(inst.stage)

    def _clip_done(self, r: _Req, c: int) -> None:
        r.clip_done[c] = True
        while r.next_seg < r.nclips and r.clip_done[r.next_seg]:
            r.seg_t.append(self.now)
            r.next_seg += 1
            if r.next_seg == r.nclips:
                self.unfinished -= 1

    # ------------------------------------------------------------------ run
    def run(self, arrivals: list[tuple[float, SloClass]] | None = None) -> SimResult:
        """Simulate every arrival to completion; the figures per request and for the cluster.
        ``arrivals``: ``(time in s, SLO class)`` per request, instead of the workload's."""
        if arrivals is None:
            arrivals = self.w.arrivals.times(self.w.ttff_slo_s)
        for rid, (t, cls) in enumerate(arrivals):
            self._push(t, _ARRIVE, (rid, cls))
            self.unfinished += 1
        for iid, t in self.evict_at:
            self._push(t, _NOTICE, iid)
        for inst in self.insts:
            self._schedule_eviction(inst)
        events = self.events
        while events and self.unfinished:      # evictions go on for ever: stop when every request is done
            t, _, kind, p = heapq.heappop(events)
            self.now = t
            if kind == _DONE:
                inst = self.by_id[p[0]]
                if p[3] == inst.epoch:            # else the task was lost to an eviction
                    self._done(inst, p[1], p[2])
            elif kind == _SCENE:
                rid, k, iid, epoch = p
                r = self.reqs[rid]
                if epoch != self.by_id[iid].epoch or k in r.scenes_seen:
                    continue                      # a lost screenplay run's later scenes / a re-run's repeats
                r.scenes_seen.add(k)
                if k == 0:
                    self._ready(r, FLUX, 0)
                self._ready(r, TTS, k)
            elif kind == _NOTICE:
                self._notice(self.by_id[p])
            elif kind == _GONE:
                self._gone(self.by_id[p])
            elif kind == _BACK:
                self._back(self.by_id[p])
            else:
                self._admit(p[0], t, p[1].ttff_s, p[1].name)
        return self._result()

    def _result(self) -> SimResult:
        w = self.w
        stats = []
        for r in self.reqs:
            s = r.stats
            if len(r.seg_t) == r.nclips:
                first = r.seg_t[0] - r.t0
                s.ttff_s = max(0.0, first - w.static_slide_s)
                s.makespan_s = r.seg_t[-1] - r.t0
                play, stall = r.seg_t[0], 0.0
                for c, t in enumerate(r.seg_t):
                    need = play + c * w.clip_s + stall
                    if t > need + 1e-9:
                        stall += t - need
                    if t > segment_deadline(r.t0, r.slo + w.static_slide_s, c * w.clip_s) + 1e-9:
                        s.deadline_misses += 1
                s.stall_s = stall
            stats.append(s)
        span = max((r.seg_t[-1] for r in self.reqs if r.seg_t), default=0.0)
        cat = catalog()
        servers = self.c.servers()
        paid = sum(servers.values()) * SERVER_GPUS
        cost = sum(n * SERVER_GPUS * cat[g].price(self.c.pricing) for g, n in servers.items()) * span / 3600.0
        busy_gpu_s = sum(i.busy_s * i.gpus for i in self.insts if i.gpu != CPU)
        joules = sum(i.busy_s * i.gpus * (cat[i.gpu].power_w(i.model) - cat[i.gpu].idle_w)
                     for i in self.insts if i.gpu != CPU)
        joules += sum(n * SERVER_GPUS * cat[g].idle_w for g, n in servers.items()) * span
        return SimResult(stats, span, cost, joules / 3.6e6, busy_gpu_s / (paid * span) if paid and span else 0.0,
                         self.c.spec(), w.video_s, self.evictions, self.tasks_rerun, self.tasks_handed_back,
                         self.lost_gpu_s)


@dataclass
class SimResult:
    """The discrete-event run: per-request stats; the cluster's span (s: first arrival at 0 to
    last segment), cost ($, servers paid for the whole span), energy (kWh), GPU utilisation;
    spot evictions: instances evicted, running tasks lost and run again, queued tasks handed
    back, and the GPU-seconds the lost tasks had run."""

    requests: list[RequestStats]
    span_s: float
    cost_usd: float
    energy_kwh: float
    utilisation: float
    spec: str
    video_s: float
    evictions: int = 0
    tasks_rerun: int = 0
    tasks_handed_back: int = 0
    lost_gpu_s: float = 0.0

    def as_dict(self) -> dict:
        """Plain data for ``--json``: one request's figures, or medians / p95 over many."""
        done = [s for s in self.requests if math.isfinite(s.makespan_s)]
        rungs = Counter()
        for s in self.requests:
            rungs.update(s.rungs)

        def q(vals, p):
            if not vals:
                return None
            vals = sorted(vals)
            return round(vals[min(len(vals) - 1, int(p * len(vals)))], 3)

        ttff = [s.ttff_s for s in done]
        mk = [s.makespan_s for s in done]
        out = {"engine": "des", "cluster": self.spec, "requests": len(self.requests), "completed": len(done),
               "ttff_s": q(ttff, 0.5), "ttff_p95_s": q(ttff, 0.95), "makespan_s": q(mk, 0.5),
               "makespan_p95_s": q(mk, 0.95), "realtime_factor": q([m / self.video_s for m in mk], 0.5),
               "stall_s": q([s.stall_s for s in done], 0.5), "stall_p95_s": q([s.stall_s for s in done], 0.95),
               "deadline_misses": sum(s.deadline_misses for s in done),
               "segments": sum(sum(s.rungs.values()) for s in done),
               "rungs": dict(rungs), "span_s": round(self.span_s, 2), "cost_usd": round(self.cost_usd, 2),
               "cost_per_request_usd": round(self.cost_usd / max(len(self.requests), 1), 3),
               "energy_kwh": round(self.energy_kwh, 3), "gpu_utilisation": round(self.utilisation, 3),
               "evictions": self.evictions, "tasks_rerun": self.tasks_rerun,
               "tasks_handed_back": self.tasks_handed_back, "lost_gpu_s": round(self.lost_gpu_s, 1)}
        by_class: dict[str, list] = defaultdict(list)
        for s in done:
            by_class[s.slo_class].append(s)
        if len(by_class) > 1:
            out["classes"] = {k: {"requests": len(v), "ttff_slo_s": v[0].ttff_slo_s, "ttff_s": q([s.ttff_s for s in v], 0.5),
                                  "deadline_misses": sum(s.deadline_misses for s in v)} for k, v in by_class.items()}
        return out


def simulate(cluster: Cluster, w: Workload, *, policy: str = "edf", **kw) -> SimResult:
    """Run :class:`Simulator` (see there) and return its :class:`SimResult`."""
    return Simulator(cluster, w, policy=policy, **kw).run()
