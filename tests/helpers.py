"""Helpers shared by the end-to-end tests (imported as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from streamwise.bus import subjects
from streamwise.bus.codec import decode
from streamwise.bus.messages import Event


async def events_of(bus, rid: str, tenant: str = "default") -> list[Event]:
    """Every event the bus kept for request ``rid`` of ``tenant`` (what its workers reported),
    read until none arrives for 2 s."""
    sub = await bus.js.subscribe(subjects.events(tenant, rid), stream=subjects.STREAM_EVENTS, ordered_consumer=True)
    out = []
    try:
        while True:
            out.append(decode((await sub.next_msg(timeout=2.0)).data, Event))
    except Exception:   # no more events within 2 s
        pass
    finally:
        await sub.unsubscribe()
    return out


async def video_victim(bus, pool, name: str = "video-0"):
    """Wait until two video instances beat, then return ``(process, instance id)`` of ``name``."""
    import asyncio

    from streamwise.bus import registry

    while len(videos := [h for h in await registry.list_instances(bus.instances) if h.stage == "video"]) < 2:
        await asyncio.sleep(0.1)
    victim = dict(pool.processes)[name]
    return victim, next(h.instance for h in videos if h.pid == victim.pid)


def strike_at(index: int, fault):
    """A ``progress`` callback that sets off ``fault()`` (a coroutine function) once segment
    ``index`` has arrived, and the task that runs it (await it after the show)."""
    import asyncio

    hit = asyncio.Event()

    def on_progress(kind, info):
        if kind == "segment" and info["index"] == index:
            hit.set()

    async def fire():
        await hit.wait()
        await fault()

    return on_progress, asyncio.create_task(fire())


async def wait_ready(bus, pool, timeout_s: float = 120.0) -> None:
    """Until every stage of ``pool`` has a ready instance (a child that exited fails at once,
    naming it: :meth:`Pool.check`).

    Raises:
        TimeoutError: not ready within ``timeout_s`` seconds.
    """
    import time

    from streamwise.bus import registry

    deadline = time.monotonic() + timeout_s
    while True:
        pool.check()
        try:
            await registry.wait_for_stages(bus.instances, pool.stages(), 0.5)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def start_scheduler(url: str, log_path):
    """Start one more ``streamwise scheduler`` process on ``url`` (one to take over a request whose
    scheduler a test killed), its stderr in ``log_path``; the caller terminates it."""
    import subprocess
    import sys

    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "streamwise", "scheduler", "--nats", url],
                                stdout=subprocess.DEVNULL, stderr=log)
