"""Per-tenant quotas (issue 11): concurrent requests, requests per minute, spoken minutes per
day and the largest script, from ``configs/quotas.yaml`` (``$STREAMWISE_QUOTAS`` overrides it).

The usage lives on the bus, in KV bucket ``sw_tenants``, one key per tenant, updated with
compare-and-set (the KV revision), so several scheduler processes admitting requests of one
tenant at once count the same requests and never admit more than the quota together. A
request a scheduler is serving is refreshed in the ledger every :data:`REFRESH_S` seconds; an
entry not refreshed for :data:`STALE_S` seconds (its scheduler died and nobody took the request
over) no longer counts. A request taken over by another scheduler keeps its entry (the same
scoped id), so a takeover is never refused for being over the concurrency quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgpack
import nats.errors
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError

from ..bus import subjects
from ..bus.limits import LIMITS
from ..bus.messages import Request, Status
from ..core.deadlines import sketch_duration_s
from ..core.quotas import Quota, Quotas, load_quotas

log = logging.getLogger(__name__)

REFRESH_S = 60.0     # a served request's ledger entry is refreshed this often
STALE_S = 300.0      # an entry not refreshed for this long no longer counts (its scheduler died)
DAY_S = 86400.0
HOUR_S = 3600.0
CONCURRENT_RETRY_S = 10.0   # what a request over the concurrency quota is told: poll this often
_CAS_TRIES = 20


class QuotaExceeded(Exception):
    """A request is over one of its tenant's quotas.

    Attributes:
        quota: the quota's name (``concurrent_requests``, ``requests_per_minute``,
            ``spoken_minutes_per_day`` or ``script_bytes``).
        retry_after_s: seconds until a retry can succeed (``None``: it never will, as sent).
    """

    def __init__(self, quota: str, reason: str, retry_after_s: float | None) -> None:
        super().__init__(reason)
        self.quota = quota
        self.retry_after_s = retry_after_s


def spoken_estimate_s(request: Request, quota: Quota) -> float:
    """Seconds of speech a request is charged at admission: the script's words at 2.5 words/s
    (:func:`~streamwise.core.deadlines.sketch_duration_s`), or ``topic_spoken_s`` for a topic,
    a document or an uploaded script (corrected when the request ends). At most the script limit
    (``configs/limits.yaml``: a longer script is refused when it is parsed, having spoken nothing)."""
    if request.script:
        return min(sketch_duration_s(request.script), LIMITS.script_spoken_s)
    return quota.topic_spoken_s


def _empty() -> dict[str, Any]:
    return {"active": {}, "recent": [], "spoken": {}}


def _prune(state: dict[str, Any], now: float) -> dict[str, Any]:
    state["active"] = {k: v for k, v in state.get("active", {}).items() if now - float(v[0]) < STALE_S}
    state["recent"] = [t for t in state.get("recent", []) if now - float(t) < 60.0]
    state["spoken"] = {h: s for h, s in state.get("spoken", {}).items() if now - float(h) < DAY_S}
    return state


class TenantLedger:
    """The quota ledger on KV ``sw_tenants``: :meth:`admit` when a request arrives,
    :meth:`refresh` while it is served, :meth:`release` when it ends."""

    def __init__(self, bus, quotas: Quotas | None = None) -> None:
        self.bus = bus
        self.quotas = quotas or load_quotas()
        self._kv = None

    async def _bucket(self):
        if self._kv is None:
            self._kv = await self.bus.js.key_value(subjects.KV_TENANTS)
        return self._kv

    async def _update(self, tenant: str, change) -> Any:
        """Apply ``change(state, now) -> result`` to ``tenant``'s entry with compare-and-set,
        retrying on a concurrent update. Returns what ``change`` returned."""
        kv = await self._bucket()
        for _ in range(_CAS_TRIES):
            try:
                entry = await kv.get(tenant)
                state, revision = msgpack.unpackb(entry.value), entry.revision
            except NotFoundError:
                state, revision = _empty(), None
            now = time.time()
            result = change(_prune(state, now), now)
            data = msgpack.packb(state)
            try:
                if revision is None:
                    await kv.create(tenant, data)
                else:
                    await kv.update(tenant, data, last=revision)
                return result
            except Exception as exc:   # another scheduler wrote first, or the bus failed
                if not _is_conflict(exc):
                    raise
        raise RuntimeError(f"quota ledger of tenant {tenant}: {_CAS_TRIES} conflicting updates in a row")

    async def admit(self, request: Request, key: str, *, script_bytes: int | None = None) -> None:
        """Charge ``request`` (scoped id ``key``) to its tenant, or refuse it.

        ``script_bytes``: the size of an uploaded script (``script_ref``), when known.

        Raises:
            QuotaExceeded: over a quota; nothing is charged.
        """
        q = self.quotas.of(request.tenant)
        size = len(request.script.encode("utf-8", "surrogatepass")) if request.script else (script_bytes or 0)
        if q.script_bytes > 0 and size > q.script_bytes:
            raise QuotaExceeded("script_bytes", f"quota: script of {size:,} bytes is over tenant "
                                f"{request.tenant}'s largest script of {q.script_bytes:,} bytes", None)
        spoken = spoken_estimate_s(request, q)

        def change(state: dict[str, Any], now: float) -> None:
            if key in state["active"]:          # a takeover or a redelivery: already charged
                state["active"][key][0] = now
                return
            active, recent = len(state["active"]), state["recent"]
            if 0 < q.concurrent_requests <= active:
                raise QuotaExceeded("concurrent_requests", (
                    f"quota: tenant {request.tenant} has {active} requests running, its limit is "
                    f"{q.concurrent_requests}; retry when one ends"), CONCURRENT_RETRY_S)
            if 0 < q.requests_per_minute <= len(recent):
                raise QuotaExceeded("requests_per_minute", (
                    f"quota: tenant {request.tenant} sent {len(recent)} requests in the last minute, its "
                    f"limit is {q.requests_per_minute}"), max(0.1, min(recent) + 60.0 - now))
            used = sum(state["spoken"].values())
            limit_s = q.spoken_minutes_per_day * 60.0
            if q.spoken_minutes_per_day > 0 and used + spoken > limit_s:
                retry = None
                if spoken <= limit_s:   # when enough of the last 24 h's hours have aged out
                    freed = 0.0
                    for hour in sorted(state["spoken"], key=float):
                        freed += state["spoken"][hour]
                        if used - freed + spoken <= limit_s:
                            retry = float(hour) + DAY_S - now
                            break
                raise QuotaExceeded("spoken_minutes_per_day", (
                    f"quota: tenant {request.tenant} has {used / 60:.1f} of its {q.spoken_minutes_per_day:g} "
                    f"spoken minutes a day in use; this request needs ~{spoken / 60:.1f} more"), retry)
            hour = str(int(now // HOUR_S * HOUR_S))
            state["active"][key] = [now, spoken, hour]
            recent.append(now)
            state["spoken"][hour] = state["spoken"].get(hour, 0.0) + spoken

        await self._update(request.tenant, change)

    async def admit_or_refuse(self, request: Request, key: str, msg) -> bool:
        """The scheduler's admission step: charge ``request`` (scoped id ``key``, JetStream
        message ``msg``) to its tenant's quotas and return True; over one, publish a failed
        status naming the quota and ``retry_after_s``, end the message and return False. When
        the ledger cannot be reached, the message is redelivered in 2 s (False), and on its
        fourth delivery it is admitted unmetered, logged, rather than lost."""
        try:
            size = None
            if request.script_ref:
                # the upload's size from its object-store metadata (the scheduler role may read
                # that, not the text), so a script over the tenant's largest is refused here, at
                # once, having spoken nothing; a missing upload is the screenplay stage's error to
                # report, and one whose size cannot be read is checked there when it is read
                try:
                    size = await asyncio.wait_for(self.bus.upload_size(request.tenant, request.script_ref), 2.0)
                except NotFoundError:
                    pass
                except (nats.errors.Error, LookupError, RuntimeError, PermissionError, asyncio.TimeoutError) as exc:
                    log.warning("request %s: size of upload %s unknown at admission (%s: %s); the screenplay "
                                "stage checks it", key, request.script_ref, type(exc).__name__, exc)
            await self.admit(request, key, script_bytes=size)
            return True
        except QuotaExceeded as exc:
            log.warning("request %s refused: %s", key, exc)
            await self.bus.publish(subjects.status(request.tenant, request.request_id), Status(
                request_id=request.request_id, state="failed", message="over quota", error=str(exc),
                quota=exc.quota, retry_after_s=exc.retry_after_s, at=time.time()))
            await msg.term()
        except Exception as exc:
            if msg.metadata.num_delivered >= 4:
                log.error("request %s: quota ledger unavailable (%s); admitted without a quota check", key, exc)
                return True
            log.warning("request %s: quota ledger unavailable (%s); trying again shortly", key, exc)
            with contextlib.suppress(Exception):
                await msg.nak(delay=2.0)
        return False

    async def refresh(self, tenant: str, keys: list[str]) -> None:
        """Mark ``keys`` (scoped ids of requests this process serves) as still running."""
        def change(state: dict[str, Any], now: float) -> None:
            for key in keys:
                if key in state["active"]:
                    state["active"][key][0] = now
        await self._update(tenant, change)

    async def release(self, tenant: str, key: str, spoken_s: float | None = None) -> None:
        """The request ``key`` ended: it no longer counts as running; ``spoken_s`` (its real
        length, when known) replaces the estimate it was charged."""
        def change(state: dict[str, Any], now: float) -> None:
            entry = state["active"].pop(key, None)
            if entry is not None and spoken_s is not None and entry[2] in state["spoken"]:
                state["spoken"][entry[2]] = max(0.0, state["spoken"][entry[2]] - float(entry[1]) + spoken_s)
        await self._update(tenant, change)


def _is_conflict(exc: Exception) -> bool:
    """A compare-and-set that lost the race (wrong last sequence, or the key created meanwhile)."""
    text = str(exc).lower()
    return isinstance(exc, KeyWrongLastSequenceError) or "wrong last sequence" in text or "10071" in text
