"""asyncio helpers of the bus processes (workers, schedulers, viewers)."""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks, *, timeout_s: float = 5.0, what: str = "background tasks") -> None:
    """Cancel ``tasks`` (asyncio tasks) and wait up to ``timeout_s`` seconds for them to end,
    cancelling again every 0.5 s.

    One ``cancel()`` is not always the end of a task: nats-py turns a cancellation that lands in
    a request or a fetch into its ``TimeoutError`` (``Subscription.next_msg``), which a retry loop
    then treats as a transient error, and Python 3.11's ``asyncio.wait_for`` can return a result
    that raced a cancellation. ``asyncio.gather`` on such a task waits forever (a worker that
    never stopped, seen in CI). Tasks still running after ``timeout_s`` are logged and left.
    Exceptions of the tasks are retrieved (not raised)."""
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.5, max(0.01, deadline - time.monotonic())))
    if pending:
        log.warning("%d of %s did not end within %.1f s of being cancelled; left running", len(pending), what, timeout_s)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()

