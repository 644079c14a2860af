"""Deadlines from the SLO, and expected runtimes from a profile.

Deadline rule from the StreamWise scheduler design (arXiv 2603.05800; design notes
section 4): segment k, which starts ``p_k`` seconds into playback, must be delivered by
``t_submit + TTFF + p_k``; every upstream node's deadline is its child's deadline minus
the child's expected runtime, recursively (the minimum over children).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

WORDS_PER_S = 2.5  # the sketch's speaking rate before TTS gives exact durations (design notes, section 2)


def segment_deadline(t_submit: float, ttff_s: float, playback_offset_s: float) -> float:
    """Absolute deadline (Unix s) of the segment that starts ``playback_offset_s`` into playback."""
    return t_submit + ttff_s + playback_offset_s


def upstream_deadline(child_deadline: float, child_runtime_s: float) -> float:
    """Deadline of a node whose child must start by ``child_deadline - child_runtime_s``."""
    return child_deadline - child_runtime_s


def sketch_duration_s(text: str) -> float:
    """Estimated speaking time of ``text`` (seconds) before TTS has run: words / 2.5 per second."""
    return max(len(text.split()), 1) / WORDS_PER_S


@dataclass(frozen=True)
class StageProfile:
    """Expected runtime ``base_s + per_unit_s * units`` of one stage on one hardware kind.
    ``unit`` names what ``units`` counts (``frames``, ``audio_s``, ``none``)."""

    base_s: float
    per_unit_s: float = 0.0
    unit: str = "none"

    def runtime_s(self, units: float = 0.0) -> float:
        return self.base_s + self.per_unit_s * units


class ProfileError(ValueError):
    """A profile file that does not have the expected shape."""


def load_profiles(name: str = "cpu.yaml", data: dict[str, Any] | None = None) -> dict[str, StageProfile]:
    """Expected-runtime profiles by stage, from ``configs/profiles/<name>`` (or ``data``).

    Raises:
        ProfileError: a stage entry lacks ``base_s`` or has non-numeric values.
    """
    if data is None:
        text = resources.files("streamwise.configs").joinpath("profiles", name).read_text()
        data = yaml.safe_load(text)
    profiles = {}
    for stage, entry in (data.get("stages") or {}).items():
        try:
            profiles[stage] = StageProfile(float(entry["base_s"]), float(entry.get("per_unit_s", 0.0)),
                                           str(entry.get("unit", "none")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"profile {name}: stage {stage!r}: {exc}") from None
        if not math.isfinite(profiles[stage].base_s):
            raise ProfileError(f"profile {name}: stage {stage!r}: base_s must be finite")
    return profiles
