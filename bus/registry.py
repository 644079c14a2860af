"""Worker instances on the bus: heartbeats in the TTL'd KV bucket ``sw_instances``.

A worker puts its :class:`~streamwise.bus.messages.Heartbeat` under its instance id every
``HEARTBEAT_S`` seconds; the bucket's max-age (``INSTANCE_TTL_S``) removes an instance
that stopped beating. Schedulers read the bucket (or watch it) to know which instances
are alive, their state and queue.
"""

from __future__ import annotations

import asyncio
import time

from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from .codec import MessageError, decode, encode
from .messages import Heartbeat

HEARTBEAT_S = 2.0


async def beat(kv: KeyValue, heartbeat: Heartbeat) -> None:
    """Publish one heartbeat (stamped with the current time)."""
    heartbeat.at = time.time()
    await kv.put(heartbeat.instance, encode(heartbeat))


async def forget(kv: KeyValue, instance: str) -> None:
    """Remove an instance at clean shutdown (others would see it expire after the TTL anyway)."""
    try:
        await kv.delete(instance)
    except NotFoundError:
        pass


LIST_INACTIVE_S = 2.0
"""Inactivity after which the server deletes the consumer one :func:`list_instances` reads the bucket with (s).
nats-py's ``kv.keys()`` leaves its watcher's consumer for 5 minutes: polled at 20 Hz while an LLM worker
loaded (``streamwise bench --topic``), thousands piled up and the server refused new consumers ("maximum
consumers limit reached")."""


async def list_instances(kv: KeyValue) -> list[Heartbeat]:
    """All live instances, any state; entries that fail validation are skipped. One watch of the bucket (each
    key's last value, in one pass), whose consumer the server drops :data:`LIST_INACTIVE_S` after it stops."""
    watcher = await kv.watchall(ignore_deletes=True, inactive_threshold=LIST_INACTIVE_S)
    result = []
    try:
        async for entry in watcher:
            if entry is None:        # the marker after the last stored value (or at once: an empty bucket)
                break
            if entry.value:
                try:
                    result.append(decode(entry.value, Heartbeat))
                except MessageError:
                    continue
    finally:
        await watcher.stop()
    return result


async def wait_for_stages(kv: KeyValue, stages: set[str], timeout_s: float) -> list[Heartbeat]:
    """Wait until at least one ``ready`` instance serves each stage in ``stages``.

    Raises:
        TimeoutError: some stages have no ready instance after ``timeout_s``; the message names them.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        ready = [hb for hb in await list_instances(kv) if hb.state == "ready"]
        missing = stages - {hb.stage for hb in ready}
        if not missing:
            return ready
        if time.monotonic() > deadline:
            raise TimeoutError(f"no ready worker for stage(s) {', '.join(sorted(missing))} "
                               f"after {timeout_s:.0f} s")
        await asyncio.sleep(0.05)
