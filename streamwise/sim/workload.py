"""Workload descriptions: the podcast's shape, its models, and request arrival patterns.

The default workload is the StreamWise paper's 10-minute podcast (arXiv 2603.05800; numbers
from Azure/realtimevideogen ``simulator/constants.py``): 600 s of video, 43 scenes, 172 clips
("subscenes", each ~3.5 s: FantasyTalking's 81 frames at 23 fps), FLUX 25 steps, FramePack and
FantasyTalking 10 steps, 20K (20,480) LLM input tokens, optional Real-ESRGAN x2, FramePack
DiT / VAE disaggregated. Files live in ``configs/workloads/*.yaml``; see
``configs/workloads/podcast10.yaml`` for every key with its unit.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..core.quality import Ladder, load_ladders

# Model (stage) names used by the simulator. The two VAE "models" are the VAE decode of
# FramePack / FantasyTalking when it runs on instances of its own (disaggregated).
GEMMA, FLUX, TTS = "gemma", "flux", "kokoro"
HF, HF_VAE = "hunyuanframepack", "hunyuanframepack-vae"
FT, FT_VAE = "fantasytalking", "fantasytalking-vae"
UPSCALER = "realesrgan"
MODELS = (GEMMA, FLUX, TTS, HF, HF_VAE, FT, FT_VAE, UPSCALER)
VAE_OF = {HF: HF_VAE, FT: FT_VAE}
PARENT_OF = {HF_VAE: HF, FT_VAE: FT}

#: GPUs per instance the paper's provisioner may use (Azure/realtimevideogen
#: simulator/constants.py DEVICE_OPTIONS); 10-40 GPUs span several servers.
PAPER_GPU_COUNTS: dict[str, tuple[int, ...]] = {
    GEMMA: (1, 2, 4, 8), FLUX: (1, 2, 4, 8, 16), TTS: (1,),
    HF: (1, 2, 4, 8, 10, 16, 20, 24, 32, 40), HF_VAE: (1,),
    FT: (1, 2, 4, 8, 10, 16, 20, 24, 32, 40), FT_VAE: (1,), UPSCALER: (1, 2, 4, 8),
}

QUALITY_LEVELS = ("high", "medium", "low")


class WorkloadError(ValueError):
    """A workload file with a wrong shape; the message names the key."""


@dataclass(frozen=True)
class SloClass:
    """A class of requests: ``share`` of the arrivals (0..1), TTFF SLO ``ttff_s`` (seconds)."""

    name: str
    share: float
    ttff_s: float


@dataclass(frozen=True)
class Arrivals:
    """How requests arrive. ``kind``: ``single`` (one request at t=0) or ``poisson`` (rate
    ``rate_per_min`` requests per minute, ``requests`` in all, seeded by ``seed``);
    ``classes``: the SLO classes requests are drawn from (empty: all take the workload's SLO)."""

    kind: str = "single"
    rate_per_min: float = 0.0
    requests: int = 1
    seed: int = 0
    classes: tuple[SloClass, ...] = ()

    def times(self, default_ttff_s: float) -> list[tuple[float, SloClass]]:
        """(arrival time in seconds, SLO class) for every request, sorted by time."""
        rng = random.Random(self.seed)
        classes = self.classes or (SloClass("default", 1.0, default_ttff_s),)
        weights = [c.share for c in classes]
        out, t = [], 0.0
        for i in range(self.requests if self.kind == "poisson" else 1):
            if self.kind == "poisson" and i > 0:
                t += rng.expovariate(self.rate_per_min / 60.0)
            out.append((t, rng.choices(classes, weights)[0] if len(classes) > 1 else classes[0]))
        return out


@dataclass(frozen=True)
class Workload:
    """One request's work, in the paper's terms (all times in seconds, frames in frames).

    ``fps`` and ``steps`` are per model; ``reference_frames`` is the frame count of a profile's
    mapping row (FramePack 324, FantasyTalking 77) that per-clip times are scaled from;
    ``first_chunk_frames`` is FramePack's first section (36 frames). ``quality`` is the paper's
    target level (``high`` = 1280x800 output; with the upscaler the models generate 640x400).
    ``disaggregate`` says which models run their VAE decode on instances of its own.
    ``gpu_counts`` are the valid GPUs per instance of each model. ``ladder`` is the quality
    ladder the discrete-event simulator uses for FantasyTalking clips (None: quality.yaml's).
    """

    name: str = "podcast-10min"
    video_s: float = 600.0
    scenes: int = 43
    clips: int = 172
    fps: dict[str, float] = field(default_factory=lambda: {HF: 30.0, FT: 23.0})
    steps: dict[str, int] = field(default_factory=lambda: {FLUX: 25, HF: 10, FT: 10})
    reference_frames: dict[str, int] = field(default_factory=lambda: {HF: 324, FT: 77})
    first_chunk_frames: dict[str, int] = field(default_factory=lambda: {HF: 36})
    input_tokens: int = 20 * 1024
    reference_tokens: int = 20 * 1024
    images: int = 1
    upscaler: bool = True
    disaggregate: dict[str, bool] = field(default_factory=lambda: {HF: True, FT: False})
    quality: str = "high"
    ttff_slo_s: float = 10.0
    static_slide_s: float = 0.0
    gpu_counts: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(PAPER_GPU_COUNTS))
    arrivals: Arrivals = field(default_factory=Arrivals)
    ladder: Ladder | None = None

    # ------------------------------------------------------------------ derived
    def total_frames(self, model: str) -> int:
        """Frames of the whole video at ``model``'s fps (FramePack 18,000; FantasyTalking 13,800)."""
        return math.ceil(self.video_s * self.fps[model])

    def clip_frames(self, model: str) -> int:
        """Frames of one clip at ``model``'s fps, rounded up (FramePack 105, FantasyTalking 81)."""
        return math.ceil(self.video_s * self.fps[model] / self.clips)

    @property
    def clip_s(self) -> float:
        """Playback length of one clip (seconds): 600 / 172 = 3.49 s."""
        return self.video_s / self.clips

    def uses(self, model: str) -> bool:
        """Whether the workload runs ``model`` on instances of its own (VAEs only when
        disaggregated, the upscaler only when enabled)."""
        if model in PARENT_OF:
            return self.disaggregate.get(PARENT_OF[model], False)
        if model == UPSCALER:
            return self.upscaler
        return model in MODELS

    def models(self) -> list[str]:
        """The models that need instances, in pipeline order."""
        return [m for m in MODELS if self.uses(m)]

    def work(self, model: str) -> int:
        """Units of work of ``model`` per request, as in the paper's ``WorkflowConfig.model_work``:
        1 for the LLM, FLUX and TTS (not split across instances), clips for the DiTs, frames
        for the VAEs and the upscaler."""
        if model in (GEMMA, FLUX, TTS):
            return 1
        if model in (HF, FT):
            return self.clips
        if model == HF_VAE:
            return self.total_frames(HF)
        return self.total_frames(FT)

    def with_(self, **kw: Any) -> Workload:
        """A copy with some fields replaced."""
        return replace(self, **kw)


# ---------------------------------------------------------------------------- loading


def _num(where: str, v: Any, *, integer: bool = False, positive: bool = True) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise WorkloadError(f"{where}: must be a{'n integer' if integer else ' number'}, got {v!r}")
    if (positive and v <= 0) or (not positive and v < 0):
        raise WorkloadError(f"{where}: must be {'> 0' if positive else '>= 0'}, got {v!r}")
    return v


def _classes(where: str, items: Any) -> tuple[SloClass, ...]:
    if not items:
        return ()
    if not isinstance(items, list):
        raise WorkloadError(f"{where}: must be a list of {{name, share, ttff_s}}")
    out = tuple(SloClass(str(c.get("name", f"class{i}")), float(_num(f"{where}[{i}].share", c.get("share"))),
                         float(_num(f"{where}[{i}].ttff_s", c.get("ttff_s"))))
                for i, c in enumerate(items))
    return out


def parse_workload(data: dict[str, Any], name: str = "<workload>") -> Workload:
    """A :class:`Workload` from parsed YAML; missing keys take the paper's values.

    Raises:
        WorkloadError: a key with a wrong type or value, named with its path.
    """
    if not isinstance(data, dict):
        raise WorkloadError(f"{name}: must be a mapping")
    w = Workload()
    kw: dict[str, Any] = {"name": str(data.get("name", w.name))}
    for key in ("video_s", "ttff_slo_s"):
        if key in data:
            kw[key] = float(_num(f"{name}: {key}", data[key]))
    if "static_slide_s" in data:
        kw["static_slide_s"] = float(_num(f"{name}: static_slide_s", data["static_slide_s"], positive=False))
    for key in ("scenes", "clips", "input_tokens", "reference_tokens", "images"):
        if key in data:
            kw[key] = _num(f"{name}: {key}", data[key], integer=True)
    for key in ("fps", "steps", "reference_frames", "first_chunk_frames"):
        if key in data:
            if not isinstance(data[key], dict):
                raise WorkloadError(f"{name}: {key}: must be a mapping model -> number")
            kw[key] = {**getattr(w, key), **{str(m): _num(f"{name}: {key}.{m}", v) for m, v in data[key].items()}}
    if "upscaler" in data:
        kw["upscaler"] = bool(data["upscaler"])
    if "disaggregate" in data:
        kw["disaggregate"] = {**w.disaggregate, **{str(m): bool(v) for m, v in (data["disaggregate"] or {}).items()}}
    if "quality" in data:
        if data["quality"] not in QUALITY_LEVELS:
            raise WorkloadError(f"{name}: quality: one of {QUALITY_LEVELS}, got {data['quality']!r}")
        kw["quality"] = data["quality"]
    if "gpu_counts" in data:
        counts = dict(w.gpu_counts)
        for m, v in (data["gpu_counts"] or {}).items():
            if not isinstance(v, list) or not v:
                raise WorkloadError(f"{name}: gpu_counts.{m}: must be a non-empty list of GPU counts")
            counts[str(m)] = tuple(sorted(_num(f"{name}: gpu_counts.{m}", c, integer=True) for c in v))
        kw["gpu_counts"] = counts
    a = data.get("arrivals") or {}
    if not isinstance(a, dict):
        raise WorkloadError(f"{name}: arrivals: must be a mapping")
    kind = a.get("kind", "single")
    if kind not in ("single", "poisson"):
        raise WorkloadError(f"{name}: arrivals.kind: 'single' or 'poisson', got {kind!r}")
    kw["arrivals"] = Arrivals(kind, float(a.get("rate_per_min", 0.0)), int(a.get("requests", 1)), int(a.get("seed", 0)),
                              _classes(f"{name}: arrivals.classes", a.get("classes")))
    if kind == "poisson":
        _num(f"{name}: arrivals.rate_per_min", a.get("rate_per_min"))
        _num(f"{name}: arrivals.requests", a.get("requests"), integer=True)
    if data.get("ladders"):
        kw["ladder"] = load_ladders(name, {"ladders": data["ladders"]})[FT]
    return replace(w, **kw)


def load_workload(path: str | Path | None = None) -> Workload:
    """The workload in ``path`` (a YAML file, or the name of one in ``configs/workloads/``);
    ``None``: the paper's 10-minute podcast (``podcast10.yaml``).

    Raises:
        WorkloadError: malformed file. OSError: unreadable file.
    """
    if path is None:
        path = "podcast10"
    p = Path(path)
    if p.exists():
        text, name = p.read_text(), p.name
    else:
        stem = p.name if p.suffix else f"{p.name}.yaml"
        text, name = resources.files("streamwise.configs").joinpath("workloads", stem).read_text(), stem
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{name}: not valid YAML: {exc}") from None
    return parse_workload(data, name)
