"""The scheduler's use of the result cache (KV ``sw_cache``): serve ready nodes whose content
key was computed before, and store completed ones (keyed by content and, on a laddered
stage, by rung). A mixin of :class:`~streamwise.service.scheduler.SchedulerService`, which
provides ``bus``, ``active``, ``ladders``, ``use_cache`` and ``_ready``/``_finish``."""

from __future__ import annotations

import asyncio
import logging
import time

import msgpack
import msgspec
from nats.js.errors import KeyNotFoundError, NotFoundError

from ..bus.codec import MessageError
from ..bus.messages import Quality
from ..bus.payloads import check_outputs
from ..core.dag import Node
from ..workflow.podcast import PlanError, PodcastPlan

log = logging.getLogger(__name__)


class ResultCache:
    """Result-cache lookups and writes of the scheduler service."""

    async def _serve_from_cache(self, ready: list[tuple[str, int, Node]]) -> list[tuple[str, int, Node]]:
        """Complete ready nodes whose content key is in the cache (KV ``sw_cache``) without
        dispatching them; repeat while hits make new nodes ready. Returns what is still ready."""
        while self.use_cache:
            todo = [(self.active[rid], n) for rid, _, n in ready
                    if n.cache_key and n.node_id not in self.active[rid].cache_checked]
            if not todo:
                break
            keys = [self._cache_keys(n) for _, n in todo]
            flat = await asyncio.gather(*(self._cache_get(k) for ks in keys for k in ks))
            hits = 0
            at = 0
            for (active, node), ks in zip(todo, keys):
                found, at = flat[at:at + len(ks)], at + len(ks)
                active.cache_checked.add(node.node_id)
                # the highest rung cached; a value without its stage's shape (bus/payloads.py) is a miss
                outputs = next((o for o in found if o is not None and _cached_ok(node.stage, o)), None)
                if outputs is not None and active.plan.key in self.active:
                    hits += 1
                    quality = outputs.pop("$quality", None)
                    if quality is not None and node.stage in self.ladders:
                        node.quality = msgspec.convert(quality, Quality)
                        node.rung_index = self.ladders[node.stage].index(node.quality.rung)
                    active.progress_at = time.monotonic()
                    try:
                        active.plan.complete_from_cache(node, outputs)
                        if self.metrics:
                            self.metrics.cache_hit(node.stage)
                    except PlanError as exc:
                        await self._finish(active, failed=str(exc))
            if hits:
                ready = self._ready()      # hits completed nodes and made others ready
        return ready

    def _cache_keys(self, node: Node) -> list[str]:
        """The cache keys to look up for ``node``, best first: for a stage with a quality ladder
        one key per rung, highest rung first (a hit serves the best version computed so far,
        never silently a lower one under a rung-blind key); otherwise its content key."""
        ladder = self.ladders.get(node.stage)
        if ladder is None:
            return [node.cache_key]
        return [f"{node.cache_key}.{rung.name}" for rung in ladder.rungs]

    async def _cache_put(self, plan: PodcastPlan, node: Node) -> None:
        """Store a completed node's outputs under its content key; on a laddered stage the
        key names the rung it ran at and the value carries its quality, so a later hit
        records the right rung for its segment."""
        outputs = dict(node.outputs)
        key = node.cache_key
        if node.stage in self.ladders:
            quality = plan.quality_of(node)
            key = f"{key}.{quality.rung}"
            outputs["$quality"] = msgspec.to_builtins(quality)
        try:
            await self.bus.cache.put(key, msgpack.packb(outputs))
        except Exception as exc:   # the cache is an optimisation: a bus outage only costs the entry
            log.warning("could not cache %s: %s", node.node_id, exc)

    async def _cache_get(self, key: str) -> dict | None:
        try:
            entry = await self.bus.cache.get(key)
        except (KeyNotFoundError, NotFoundError):
            return None
        except Exception as exc:   # an outage: treat as a miss (the node is computed instead)
            log.debug("cache lookup failed: %s", exc)
            return None
        return msgpack.unpackb(entry.value) if entry.value else None


def _cached_ok(stage: str, outputs) -> bool:
    """Whether a cache value has its stage's output shape (a value written by an older version
    with another shape is not used)."""
    try:
        check_outputs(stage, outputs)
        return True
    except MessageError:
        return False
