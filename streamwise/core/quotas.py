"""Per-tenant quotas as configured (issue 11): ``configs/quotas.yaml``, or ``$STREAMWISE_QUOTAS``.

Pure configuration, read by the scheduler (admission, :mod:`streamwise.service.quota`) and by the
screenplay stage (an uploaded script against the tenant's largest script).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

import yaml

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Quota:
    """One tenant's quotas. Units are in the names; ``0`` or a negative value means no limit."""

    concurrent_requests: int = 8
    requests_per_minute: int = 60
    spoken_minutes_per_day: float = 1440.0
    script_bytes: int = 8_000_000
    topic_spoken_s: float = 300.0


@dataclass(frozen=True)
class Quotas:
    """The quotas of every tenant: ``default`` for those not listed in ``tenants``."""

    default: Quota
    tenants: dict[str, Quota]

    def of(self, tenant: str) -> Quota:
        return self.tenants.get(tenant, self.default)


def load_quotas(path: str | None = None) -> Quotas:
    """Read ``path`` (default ``$STREAMWISE_QUOTAS``, else the shipped ``configs/quotas.yaml``).
    ``off`` means no quotas at all (the benchmarks, which load one pool with many requests).

    Raises:
        ValueError: an unknown quota name, or a value that is not a number.
    """
    path = path or os.environ.get("STREAMWISE_QUOTAS")
    if path == "off":
        return Quotas(default=Quota(0, 0, 0.0, 0, 0.0), tenants={})
    if path:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    else:
        raw = yaml.safe_load(resources.files("streamwise.configs").joinpath("quotas.yaml").read_text()) or {}
    names = {f.name: f.type for f in fields(Quota)}

    def quota(values: dict[str, Any] | None, base: Quota) -> Quota:
        values = dict(values or {})
        unknown = set(values) - set(names)
        if unknown:
            raise ValueError(f"quotas: unknown quota {sorted(unknown)[0]!r} (known: {', '.join(names)})")
        out = {}
        for k, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"quotas: {k} must be a finite number, not {v!r}")
            out[k] = int(v) if k in ("concurrent_requests", "requests_per_minute", "script_bytes") else float(v)
        return Quota(**{**base.__dict__, **out})

    default = quota(raw.get("default"), Quota())
    tenants = {_tenant(str(t)): quota(v, default) for t, v in (raw.get("tenants") or {}).items()}
    return Quotas(default=default, tenants=tenants)




def _tenant(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError(f"quotas: tenant {name!r} is not a subject token (letters, digits, _ and -)")
    return name
