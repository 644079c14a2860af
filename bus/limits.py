"""Admission limits of the StreamWise bus (``configs/limits.yaml``, issue 9).

The request schema (:mod:`streamwise.bus.messages`) builds its msgspec constraints from
:data:`LIMITS` at import, so a request with a NaN, infinite, negative or huge number, or an
over-long string, fails validation when it is decoded, before any policy code sees it.
``$STREAMWISE_LIMITS`` names an operator's own YAML file (same keys; missing keys keep the
defaults shipped in ``configs/limits.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class Limits:
    """Every admission limit. Ranges are ``(low, high)`` inclusive; units are in the names
    (seconds ``_s``, pixels, frames per second, bytes, characters)."""

    id_chars: int
    script_bytes: int
    document_bytes: int
    topic_chars: int
    title_chars: int
    name_chars: int
    ttff_s: tuple[float, float]
    width: tuple[int, int]
    height: tuple[int, int]
    fps: tuple[float, float]
    pixel_rate: int
    segment_s: tuple[float, float]
    first_segment_s: tuple[float, float]
    max_clip_s: tuple[float, float]
    submitted_at: tuple[float, float]
    script_lines: int
    script_speakers: int
    script_line_chars: int
    script_spoken_s: float


@dataclass(frozen=True)
class BusLimits:
    """Size (bytes) and age (seconds) bounds of the streams, KV buckets and object store that
    :func:`streamwise.bus.client.ensure_layout` creates (``bus:`` in ``configs/limits.yaml``)."""

    requests_max_age_s: float
    requests_max_bytes: int
    tasks_max_age_s: float
    tasks_max_bytes: int
    events_max_bytes: int
    segments_max_bytes: int
    status_max_bytes: int
    deadletter_max_age_s: float
    deadletter_max_bytes: int
    instances_max_bytes: int
    cache_max_bytes: int
    artifacts_max_bytes: int
    uploads_max_bytes: int      # each tenant's upload store (sw_uploads_<tenant>)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _raw(path: str | None) -> dict[str, Any]:
    raw = yaml.safe_load(resources.files("streamwise.configs").joinpath("limits.yaml").read_text())
    path = path or os.environ.get("STREAMWISE_LIMITS")
    if path:
        with open(path) as f:
            raw = _merge(raw, yaml.safe_load(f) or {})
    return raw


def load_bus_limits(path: str | None = None) -> BusLimits:
    """The ``bus:`` bounds of ``configs/limits.yaml`` (overlaid as :func:`load_limits` does).

    Raises:
        ValueError: a bound is missing or not a number.
    """
    b = _raw(path)["bus"]
    try:
        return BusLimits(**{f: float(b[f]) if f.endswith("_s") else int(b[f]) for f in BusLimits.__dataclass_fields__})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"limits: missing or malformed bus entry {exc}") from None


def load_limits(path: str | None = None) -> Limits:
    """Read ``configs/limits.yaml``, overlaid with ``path`` (or ``$STREAMWISE_LIMITS``).

    Raises:
        OSError: the override file cannot be read.
        ValueError: a limit is missing or not a number / a ``[low, high]`` pair.
    """
    raw = _raw(path)
    r, s = raw["request"], raw["script"]
    try:
        pair = lambda key: (r[key][0], r[key][1])   # noqa: E731
        return Limits(id_chars=int(r["id_chars"]), script_bytes=int(r["script_bytes"]),
                      document_bytes=int(r["document_bytes"]), topic_chars=int(r["topic_chars"]),
                      title_chars=int(r["title_chars"]), name_chars=int(r["name_chars"]),
                      ttff_s=pair("ttff_s"), width=pair("width"), height=pair("height"), fps=pair("fps"),
                      pixel_rate=int(r["pixel_rate"]), segment_s=pair("segment_s"),
                      first_segment_s=pair("first_segment_s"), max_clip_s=pair("max_clip_s"),
                      submitted_at=pair("submitted_at"), script_lines=int(s["lines"]),
                      script_speakers=int(s["speakers"]), script_line_chars=int(s["line_chars"]),
                      script_spoken_s=float(s["spoken_s"]))
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"limits: missing or malformed entry {exc}") from None


LIMITS = load_limits()
BUS_LIMITS = load_bus_limits()
