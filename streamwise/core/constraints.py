"""Model constraints as configuration: clip lengths, frame counts, fps, sizes, aspect ratios.

StreamWise scheduler design (arXiv 2603.05800; design notes section 4): "maximum clip
length, frame-count rules, fps, aspect ratios and multiples of 8 are per-model config,
enforced when the DAG expands". FantasyTalking, for example, makes at most 3.5 s at 23 fps
(81 frames, a 1+4n count), at sizes that are multiples of 16. The constraints live in
``configs/models.yaml``; the functions here are pure and do the arithmetic the DAG
expansion needs. Splitting long lines at speech pauses (when the audio is known) is
``streamwise.stages.cpu.speech.split_at_pauses``; :func:`clip_plan` is the fallback when pause
positions are not known yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

FRAME_RULES = ("1+4n", "any")
HARDWARE = ("gpu", "cpu")
_EPS = 1e-9


class ConfigError(ValueError):
    """A config file that does not have the expected shape; the message names file and key."""


@dataclass(frozen=True, slots=True)
class ModelConstraints:
    """What one model accepts and produces.

    ``max_clip_s`` (seconds) and ``fps`` (frames per second) are ``None`` when the model has
    no such limit; ``aspect_ratios`` holds ``(w, h)`` pairs, empty for any ratio;
    ``size_multiple`` (pixels) applies to width and height; ``gpu_counts`` is empty on CPU.
    """

    model: str
    stage: str
    hardware: str = "cpu"
    checkpoint: str | None = None
    weights: tuple[str, ...] = ()
    max_clip_s: float | None = None
    fps: float | None = None
    frame_rule: str = "any"
    size_multiple: int = 1
    aspect_ratios: tuple[tuple[int, int], ...] = ()
    gpu_counts: tuple[int, ...] = ()
    sample_rate_hz: int | None = None


# --------------------------------------------------------------------------- loading


def read_config(name: str) -> Any:
    """Parsed YAML of ``configs/<name>`` (the installed ``streamwise.configs`` package)."""
    text = resources.files("streamwise.configs").joinpath(name).read_text()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from None


def _pos_number(where: str, value: Any, *, nullable: bool = True) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: must be a positive number, got {value!r}")
    return float(value)


def _pos_int(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: must be a positive integer, got {value!r}")
    return value


def _str(where: str, value: Any, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _ratios(where: str, value: Any) -> tuple[tuple[int, int], ...]:
    if value is None or value == "any":
        return ()
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be \"any\" or a list of \"W:H\", got {value!r}")
    out = []
    for i, item in enumerate(value):
        parts = str(item).split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise ConfigError(f"{where}[{i}]: must look like \"16:9\", got {item!r}")
        out.append((int(parts[0]), int(parts[1])))
    return tuple(out)


def _model(file: str, name: str, entry: Any) -> ModelConstraints:
    where = f"{file}: models.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(entry).__name__}")
    known = set(ModelConstraints.__dataclass_fields__) - {"model"}
    for key in entry:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
    hardware = entry.get("hardware", "cpu")
    if hardware not in HARDWARE:
        raise ConfigError(f"{where}.hardware: must be one of {HARDWARE}, got {hardware!r}")
    frame_rule = entry.get("frame_rule", "any")
    if frame_rule not in FRAME_RULES:
        raise ConfigError(f"{where}.frame_rule: must be one of {FRAME_RULES}, got {frame_rule!r}")
    weights = entry.get("weights") or []
    if not isinstance(weights, list):
        raise ConfigError(f"{where}.weights: must be a list of ids, got {weights!r}")
    gpu_counts = entry.get("gpu_counts") or []
    if not isinstance(gpu_counts, list):
        raise ConfigError(f"{where}.gpu_counts: must be a list of integers, got {gpu_counts!r}")
    counts = tuple(_pos_int(f"{where}.gpu_counts[{i}]", c) for i, c in enumerate(gpu_counts))
    if hardware == "gpu" and not counts:
        raise ConfigError(f"{where}.gpu_counts: a gpu model needs at least one GPU count")
    if hardware == "cpu" and counts:
        raise ConfigError(f"{where}.gpu_counts: a cpu model takes no GPU counts, got {gpu_counts!r}")
    rate = entry.get("sample_rate_hz")
    return ModelConstraints(
        model=name,
        stage=_str(f"{where}.stage", entry.get("stage")),
        hardware=hardware,
        checkpoint=_str(f"{where}.checkpoint", entry.get("checkpoint"), nullable=True),
        weights=tuple(_str(f"{where}.weights[{i}]", w) for i, w in enumerate(weights)),
        max_clip_s=_pos_number(f"{where}.max_clip_s", entry.get("max_clip_s")),
        fps=_pos_number(f"{where}.fps", entry.get("fps")),
        frame_rule=frame_rule,
        size_multiple=_pos_int(f"{where}.size_multiple", entry.get("size_multiple", 1)),
        aspect_ratios=_ratios(f"{where}.aspect_ratios", entry.get("aspect_ratios")),
        gpu_counts=counts,
        sample_rate_hz=None if rate is None else _pos_int(f"{where}.sample_rate_hz", rate),
    )


def load_constraints(name: str = "models.yaml", data: Any = None) -> dict[str, ModelConstraints]:
    """Constraints by model name, from ``configs/<name>`` (or already-parsed ``data``).

    Raises:
        ConfigError: the file or an entry has the wrong shape; the message names the file
            and the key path, e.g. ``models.yaml: models.flux.size_multiple: ...``.
    """
    if data is None:
        data = read_config(name)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data["models"]:
        raise ConfigError(f"{name}: models: must be a non-empty mapping of model name -> constraints")
    return {str(model): _model(name, str(model), entry) for model, entry in data["models"].items()}


# --------------------------------------------------------------------------- arithmetic


def frames_for(duration_s: float, constraints: ModelConstraints, *, fps: float | None = None) -> int:
    """Frames (count) to generate for a clip of ``duration_s`` seconds, rounded up.

    Uses the model's fps, or ``fps`` (frames per second) for a model that takes any rate.
    Under the ``1+4n`` rule the count is rounded up to the next ``1 + 4n`` (3.5 s at 23 fps:
    80.5 -> 81 frames); the caller trims the surplus. At least one frame.

    Raises:
        ValueError: negative duration, a clip longer than ``max_clip_s`` (split it first with
            :func:`clip_plan`), no frame rate, or ``fps`` differing from a fixed model fps.
    """
    rate = _rate(constraints, fps)
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration must be >= 0 seconds, got {duration_s!r}")
    limit = constraints.max_clip_s
    if limit is not None and duration_s > limit + _EPS:
        raise ValueError(f"{constraints.model}: a {duration_s:g} s clip exceeds max_clip_s {limit:g} s; "
                         "split it with clip_plan() or at speech pauses first")
    n = max(1, math.ceil(duration_s * rate - _EPS))
    if constraints.frame_rule == "1+4n":
        n = 1 + 4 * math.ceil((n - 1) / 4)
    return n


def _rate(constraints: ModelConstraints, fps: float | None) -> float:
    if constraints.fps is not None:
        if fps is not None and abs(fps - constraints.fps) > _EPS:
            raise ValueError(f"{constraints.model} generates at {constraints.fps:g} fps, not {fps:g} fps")
        return constraints.fps
    if fps is None or fps <= 0:
        raise ValueError(f"{constraints.model} has no fixed fps: pass fps (frames per second) > 0")
    return fps


def _round_to(x: float, m: int) -> int:
    """``x`` rounded to the nearest multiple of ``m`` (halves up), at least ``m``."""
    return max(m, m * math.floor(x / m + 0.5))


def _nearest_ratio(width: float, height: float, ratios: tuple[tuple[int, int], ...]) -> float:
    aspect = math.log(width / height)
    return min((rw / rh for rw, rh in ratios), key=lambda r: abs(math.log(r) - aspect))


def snap_size(width: int, height: int, constraints: ModelConstraints) -> tuple[int, int]:
    """The size (pixels) closest to ``width`` x ``height`` that the model accepts.

    The aspect ratio snaps to the nearest allowed one (compared in log space) keeping the
    pixel area; then one side rounds to the size multiple and the other follows from the
    ratio, so the result is within half a multiple of the exact ratio. Both sides are at
    least one multiple. With ``aspect_ratios: any`` each side just rounds to the multiple.

    Raises:
        ValueError: width or height not positive.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {width}x{height}")
    m = constraints.size_multiple
    if not constraints.aspect_ratios:
        return _round_to(width, m), _round_to(height, m)
    r = _nearest_ratio(width, height, constraints.aspect_ratios)
    h_ideal = math.sqrt(width * height / r)
    h = _round_to(h_ideal, m)
    by_height = (_round_to(h * r, m), h)
    w = _round_to(h_ideal * r, m)
    by_width = (w, _round_to(w / r, m))
    return min((by_height, by_width), key=lambda s: abs(math.log(s[0] / s[1] / r)))


def clip_plan(duration_s: float, constraints: ModelConstraints) -> list[float]:
    """Clip lengths (seconds) covering ``duration_s``, each at most ``max_clip_s``.

    The fewest clips that fit, all of equal length (no short tail); they sum to
    ``duration_s``. For use when speech-pause positions are not known yet; with the audio in
    hand, cut at pauses instead (``streamwise.stages.cpu.speech.split_at_pauses``).
    Returns ``[]`` for a zero duration and one clip when the model has no limit.

    Raises:
        ValueError: negative or non-finite duration.
    """
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration must be >= 0 seconds, got {duration_s!r}")
    if duration_s == 0:
        return []
    limit = constraints.max_clip_s
    if limit is None or duration_s <= limit:
        return [duration_s]
    n = math.ceil(duration_s / limit - _EPS)
    clips = [duration_s / n] * (n - 1)
    return clips + [duration_s - sum(clips)]


def aspect_ok(width: int, height: int, constraints: ModelConstraints) -> bool:
    """Whether ``width`` x ``height`` (pixels) is within one size multiple of an allowed ratio
    (832x480 counts as 16:9 for a multiple-of-16 model)."""
    if not constraints.aspect_ratios:
        return True
    m = constraints.size_multiple
    return any(abs(width - height * rw / rh) <= m + _EPS or abs(height - width * rh / rw) <= m + _EPS
               for rw, rh in constraints.aspect_ratios)


def validate_request(width: int, height: int, fps: float | None, constraints: ModelConstraints) -> None:
    """Check an output size (pixels) and frame rate (fps) against a model's constraints.

    ``fps`` may be ``None`` for still-image models. All problems are reported at once.

    Raises:
        ValueError: naming the model and each violated constraint, with the nearest
            acceptable size (:func:`snap_size`) as a hint.
    """
    c = constraints
    problems = []
    if width <= 0 or height <= 0:
        raise ValueError(f"{c.model}: size must be positive, got {width}x{height}")
    if width % c.size_multiple or height % c.size_multiple:
        problems.append(f"width and height must be multiples of {c.size_multiple} pixels")
    if not aspect_ok(width, height, c):
        allowed = ", ".join(f"{w}:{h}" for w, h in c.aspect_ratios)
        problems.append(f"aspect ratio {width}:{height} is not one of {allowed}")
    if fps is not None and (fps <= 0 or not math.isfinite(fps)):
        problems.append(f"fps must be positive, got {fps!r}")
    elif fps is not None and c.fps is not None and abs(fps - c.fps) > _EPS:
        problems.append(f"the model generates at {c.fps:g} fps, not {fps:g}")
    if problems:
        w, h = snap_size(width, height, c)
        raise ValueError(f"{c.model}: {width}x{height}" + (f" at {fps:g} fps" if fps else "") + ": "
                         + "; ".join(problems) + f" (nearest accepted size: {w}x{h})")
