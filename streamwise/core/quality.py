"""Adaptive quality: per-model ladders and the rung policy, as pure functions.

StreamWise scheduler design (arXiv 2603.05800; design notes section 4, "Adaptive
quality"): start at the target (e.g. 1280x800 at 20 steps); when a deadline is at risk step
down (640x400 at 10 steps, a small rung), then static content; first shots may run low and
later ones high; a lower rung is upscaled (or scaled) to the output size so one stream keeps
one resolution. Ladders are data (``configs/quality.yaml``), checked on load against the
model constraints in ``configs/models.yaml``.

The policy is split Ray Serve style: what the deadline allows now on each instance is
decided by :func:`streamwise.core.placement.assign` (the highest rung whose best instance
finishes in time), and :func:`next_rung` adds hysteresis with the per-request :class:`QualityState` passed in and
returned explicitly (step down at once, climb back one rung per ``climb_after`` shots with
slack). The caller records the rung it dispatches for every segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from .constraints import ConfigError, ModelConstraints, aspect_ok, load_constraints, read_config

ScalePlan = Literal["none", "upscale", "scale"]


@dataclass(frozen=True, slots=True)
class Rung:
    """One quality level: generated size (pixels), denoising steps (``None``: not a diffusion
    model) and frame rate (fps; ``None``: a still image). ``model`` is the model that renders
    it (``None``: the ladder's own); ``upscale`` sends it through the ladder's upscaler."""

    name: str
    width: int
    height: int
    steps: int | None
    fps: float | None
    model: str | None = None
    upscale: bool = False
    draw_fps: float | None = None   # a CPU rung that draws this many frames a second and holds each (None: all)
    cpu_cost: float = 1.0           # a CPU rung's expected time relative to the CPU profile (measured)

    def hold_frames(self, fps: float) -> int:
        """How many stream frames (at ``fps``) each drawn frame is held for: 1 unless the rung
        draws fewer frames a second (``draw_fps``), e.g. 12 at 25 fps for 2 drawn frames a second."""
        return 1 if not self.draw_fps else max(1, round(fps / self.draw_fps))


@dataclass(frozen=True, slots=True)
class Ladder:
    """A model's rungs, highest quality first, and the stream's ``output`` size (w, h) in pixels.

    ``upscaler`` is the model (e.g. Real-ESRGAN x2) that brings ``upscale`` rungs to the
    output, ``upscale_factor`` times larger; ``climb_after`` is the number of shots in a row
    with slack for a higher rung before the policy climbs one rung.
    """

    model: str
    rungs: tuple[Rung, ...]
    output: tuple[int, int]
    upscaler: str | None = None
    upscale_factor: int = 2
    climb_after: int = 2

    @property
    def top(self) -> Rung:
        """The target rung (highest quality)."""
        return self.rungs[0]

    @property
    def static(self) -> Rung:
        """The lowest rung: the cheapest CPU fallback, taken when nothing meets the deadline."""
        return self.rungs[-1]

    def is_cpu(self, rung: Rung) -> bool:
        """Whether ``rung`` is rendered by the CPU model of the lowest rung (the CPU tier:
        ``static`` and the cheaper rungs below it), at the stream's size."""
        return self.model_of(rung) == self.model_of(self.static)

    def index(self, rung: Rung | str) -> int:
        """Position of ``rung`` (or a rung name) in the ladder, 0 = highest.

        Raises:
            ValueError: no such rung in this ladder.
        """
        name = rung if isinstance(rung, str) else rung.name
        for i, r in enumerate(self.rungs):
            if r.name == name:
                return i
        raise ValueError(f"ladder {self.model!r} has no rung {name!r}; rungs: {[r.name for r in self.rungs]}")

    def model_of(self, rung: Rung) -> str:
        """The model that renders ``rung``."""
        return rung.model or self.model


@dataclass(frozen=True, slots=True)
class QualityState:
    """Per-request hysteresis state: the current rung's ``index`` (0 = highest) and how many
    shots in a row (``on_time``) had slack for a higher rung."""

    index: int = 0
    on_time: int = 0


# --------------------------------------------------------------------------- policy


def next_rung(state: QualityState, ladder: Ladder, feasible_rung: Rung, *,
              climb_after: int | None = None) -> tuple[Rung, QualityState]:
    """The rung to run this shot at, and the request's new state.

    ``feasible_rung`` is what the deadline allows now (placement's choice). Below the current
    rung: step down to it at once. At the current rung: stay, and the slack count restarts.
    Above it: stay until this is the ``climb_after``-th shot in a row with slack (default
    ``ladder.climb_after``), then climb one rung only, so quality recovers without oscillating.
    """
    k = ladder.climb_after if climb_after is None else climb_after
    if k < 1:
        raise ValueError(f"climb_after must be >= 1, got {k}")
    feasible = ladder.index(feasible_rung)
    current = min(max(state.index, 0), len(ladder.rungs) - 1)
    if feasible >= current:
        return ladder.rungs[feasible], QualityState(feasible, 0)
    streak = state.on_time + 1
    if streak >= k:
        return ladder.rungs[current - 1], QualityState(current - 1, 0)
    return ladder.rungs[current], QualityState(current, streak)


def scale_plan(rung: Rung, ladder: Ladder) -> ScalePlan:
    """How ``rung``'s output reaches the stream's size: ``"none"`` (already the output size),
    ``"upscale"`` (the ladder's upscaler, e.g. Real-ESRGAN x2) or ``"scale"`` (a plain scaler)."""
    if (rung.width, rung.height) == ladder.output:
        return "none"
    return "upscale" if rung.upscale and ladder.upscaler else "scale"


# --------------------------------------------------------------------------- loading


def _positive(where: str, value: Any, unit: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: must be a positive integer{unit}, got {value!r}")
    return value


def _size(where: str, value: Any) -> int:
    return _positive(where, value, " (pixels)")


def _rung(where: str, entry: Any) -> Rung:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping, got {entry!r}")
    known = {"rung", "width", "height", "steps", "fps", "model", "upscale", "draw_fps", "cpu_cost"}
    for key in entry:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
    name = entry.get("rung")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.rung: must be a non-empty name, got {name!r}")
    steps = entry.get("steps")
    if steps is not None:
        steps = _positive(f"{where}.steps", steps)
    fps = entry.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        raise ConfigError(f"{where}.fps: must be a positive number or null, got {fps!r}")
    model = entry.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError(f"{where}.model: must be a model name, got {model!r}")
    upscale = entry.get("upscale", False)
    if not isinstance(upscale, bool):
        raise ConfigError(f"{where}.upscale: must be true or false, got {upscale!r}")
    extra = {}
    for key in ("draw_fps", "cpu_cost"):
        value = entry.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
                raise ConfigError(f"{where}.{key}: must be a positive number, got {value!r}")
            extra[key] = float(value)
    return Rung(name, _size(f"{where}.width", entry.get("width")), _size(f"{where}.height", entry.get("height")),
                steps, None if fps is None else float(fps), model, upscale, **extra)


def _ladder(file: str, model: str, entry: Any, climb_after: int) -> Ladder:
    where = f"{file}: ladders.{model}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping, got {entry!r}")
    out = entry.get("output")
    if not isinstance(out, dict):
        raise ConfigError(f"{where}.output: must be {{width, height}}, got {out!r}")
    output = (_size(f"{where}.output.width", out.get("width")), _size(f"{where}.output.height", out.get("height")))
    upscaler, factor = None, 2
    if entry.get("upscaler") is not None:
        up = entry["upscaler"]
        if not isinstance(up, dict) or not isinstance(up.get("model"), str):
            raise ConfigError(f"{where}.upscaler: must be {{model, factor}}, got {up!r}")
        upscaler, factor = up["model"], _positive(f"{where}.upscaler.factor", up.get("factor", 2))
    rungs = entry.get("rungs")
    if not isinstance(rungs, list) or not rungs:
        raise ConfigError(f"{where}.rungs: must be a non-empty list, highest quality first")
    parsed = []
    for i, item in enumerate(rungs):
        rung = _rung(f"{where}.rungs[{i}]", item)
        if rung.name in {r.name for r in parsed}:
            raise ConfigError(f"{where}.rungs[{i}].rung: duplicate rung name {rung.name!r}")
        if rung.upscale and (upscaler is None or (rung.width * factor, rung.height * factor) != output):
            raise ConfigError(f"{where}.rungs[{i}].upscale: needs an upscaler and a size exactly {factor}x "
                              f"smaller than the output {output[0]}x{output[1]}")
        parsed.append(rung if rung.model else Rung(rung.name, rung.width, rung.height, rung.steps, rung.fps,
                                                   model, rung.upscale, rung.draw_fps, rung.cpu_cost))
    k = entry.get("climb_after", climb_after)
    return Ladder(model, tuple(parsed), output, upscaler, factor, _positive(f"{where}.climb_after", k))


def _check_models(file: str, ladder: Ladder, models: Mapping[str, ModelConstraints]) -> None:
    """Every rung is something its model can render; the last rung runs on CPU."""
    where = f"{file}: ladders.{ladder.model}"
    if ladder.model not in models:
        raise ConfigError(f"{where}: no model {ladder.model!r} in models.yaml")
    if ladder.upscaler is not None and ladder.upscaler not in models:
        raise ConfigError(f"{where}.upscaler.model: no model {ladder.upscaler!r} in models.yaml")
    for i, rung in enumerate(ladder.rungs):
        at = f"{where}.rungs[{i}]"
        c = models.get(ladder.model_of(rung))
        if c is None:
            raise ConfigError(f"{at}.model: no model {ladder.model_of(rung)!r} in models.yaml")
        m = c.size_multiple
        if rung.width % m or rung.height % m:
            raise ConfigError(f"{at}: {rung.width}x{rung.height} is not a multiple of {m} pixels "
                              f"(models.yaml: models.{c.model}.size_multiple)")
        if not aspect_ok(rung.width, rung.height, c):
            raise ConfigError(f"{at}: {rung.width}x{rung.height} is not an allowed aspect ratio "
                              f"(models.yaml: models.{c.model}.aspect_ratios)")
        if c.fps is not None and rung.fps != c.fps:
            raise ConfigError(f"{at}.fps: {c.model} generates at {c.fps:g} fps, got {rung.fps!r} "
                              f"(models.yaml: models.{c.model}.fps)")
    last = models[ladder.model_of(ladder.static)]
    if last.hardware != "cpu":
        raise ConfigError(f"{where}.rungs[{len(ladder.rungs) - 1}]: the last rung must run on CPU "
                          f"(the static fallback); {last.model} is a {last.hardware} model")


def load_ladders(name: str = "quality.yaml", data: Any = None, *,
                 constraints: Mapping[str, ModelConstraints] | None = None) -> dict[str, Ladder]:
    """Quality ladders by model, from ``configs/<name>`` (or already-parsed ``data``).

    Each rung is checked against the model constraints (``constraints``, default
    ``configs/models.yaml``): size multiple, aspect ratio, fps; the last rung must run on CPU.

    Raises:
        ConfigError: a wrong shape or a rung its model cannot render; the message names the
            file and the key path, e.g. ``quality.yaml: ladders.flux.rungs[1].width: ...``.
    """
    if data is None:
        data = read_config(name)
    if not isinstance(data, dict) or not isinstance(data.get("ladders"), dict) or not data["ladders"]:
        raise ConfigError(f"{name}: ladders: must be a non-empty mapping of model name -> ladder")
    policy = data.get("policy") or {}
    if not isinstance(policy, dict):
        raise ConfigError(f"{name}: policy: must be a mapping, got {policy!r}")
    climb_after = _positive(f"{name}: policy.climb_after", policy.get("climb_after", 2))
    models = load_constraints() if constraints is None else constraints
    ladders = {}
    for model, entry in data["ladders"].items():
        ladder = _ladder(name, str(model), entry, climb_after)
        _check_models(name, ladder, models)
        ladders[ladder.model] = ladder
    return ladders
