"""Worker instances on the bus: heartbeats in the TTL'd KV bucket ``sw_instances``.

A worker puts its :class:`~streamwise.bus.messages.Heartbeat` under its instance id every
``HEARTBEAT_S`` seconds; the bucket's max-age (``INSTANCE_TTL_S``) removes an instance
that stopped beating. Schedulers read the bucket (or watch it) to know which instances
are alive, their state and queue.
"""

from __future__ import annotations

import asyncio
import time

from nats.js.errors import NoKeysError, NotFoundError
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


async def list_instances(kv: KeyValue) -> list[Heartbeat]:
    """All live instances, any state; entries that fail validation are skipped."""
    try:
        keys = await kv.keys()
    except NoKeysError:
        return []
    result = []
    for key in keys:
        try:
            entry = await kv.get(key)
        except NotFoundError:
            continue
        if entry.value:
            try:
                result.append(decode(entry.value, Heartbeat))
            except MessageError:
                continue
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
