"""Helpers shared by the end-to-end tests (imported as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from streamwise.bus import subjects
from streamwise.bus.codec import decode
from streamwise.bus.messages import Event


async def events_of(bus, rid: str) -> list[Event]:
    """Every event the bus kept for request ``rid`` (what its workers reported), read until none
    arrives for 2 s."""
    sub = await bus.js.subscribe(subjects.events(rid), stream=subjects.STREAM_EVENTS, ordered_consumer=True)
    out = []
    try:
        while True:
            out.append(decode((await sub.next_msg(timeout=2.0)).data, Event))
    except Exception:   # no more events within 2 s
        pass
    finally:
        await sub.unsubscribe()
    return out
