"""The online correction of expected runtimes: each worker's learnt speed as an EWMA of observed /
expected runtime (:class:`OnlineCorrection`), applied on top of :mod:`streamwise.core.profiles`."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class OnlineCorrection:
    """Learnt speed of each worker: EWMA of observed / expected runtime per ``key`` (for example
    ``(instance_id, model)``), so that ``corrected(key, expected_s)`` = expected x factor.

    A key starts at 1.0 (trust the profile); each observation moves it by ``alpha`` x (ratio -
    factor), so with alpha 0.3 ten observations close 97 % of the gap. Ratios are clamped to
    [``lo``, ``hi``]; non-positive, non-finite or non-numeric inputs are ignored. State is the
    two plain dicts below (no globals)."""

    alpha: float = 0.3
    lo: float = 0.05
    hi: float = 50.0
    factors: dict[Hashable, float] = field(default_factory=dict)
    counts: dict[Hashable, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 < self.alpha <= 1.0 and 0.0 < self.lo <= 1.0 <= self.hi):
            raise ValueError(f"need 0 < alpha <= 1 and 0 < lo <= 1 <= hi, got {self.alpha}, {self.lo}, {self.hi}")

    def observe(self, key: Hashable, expected_s: float, observed_s: float) -> float | None:
        """Fold in one task that was expected to take ``expected_s`` s and took ``observed_s`` s.
        Returns the new factor, or ``None`` when the observation was ignored."""
        try:
            e, o = float(expected_s), float(observed_s)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(e) and math.isfinite(o)) or e <= 0.0 or o <= 0.0:
            return None
        ratio = min(max(o / e, self.lo), self.hi)
        old = self.factors.get(key, 1.0)
        new = old + self.alpha * (ratio - old)
        self.factors[key] = new
        self.counts[key] = self.counts.get(key, 0) + 1
        return new

    def factor(self, key: Hashable) -> float:
        """observed / expected for ``key``: 1.0 when unseen, always within [lo, hi]."""
        return self.factors.get(key, 1.0)

    def corrected(self, key: Hashable, expected_s: float) -> float:
        """``expected_s`` (seconds) times :meth:`factor`."""
        return expected_s * self.factors.get(key, 1.0)
