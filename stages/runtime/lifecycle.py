"""Process lifecycle shared by workers and schedulers: what SIGTERM and SIGINT do."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Callable, Iterator


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[], None]) -> Iterator[None]:
    """Call ``handler()`` on the running event loop for each SIGTERM or SIGINT while the block
    runs (a drain on the first, a hard stop on the second is the handler's business); the
    previous handlers are back afterwards. A no-op where the loop cannot take signal handlers."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
