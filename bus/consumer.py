"""A pull consumer that survives server restarts, outages and the loss of a cluster node."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
from typing import TYPE_CHECKING

import nats.errors
from nats.js import api

if TYPE_CHECKING:
    from .client import Bus

log = logging.getLogger(__name__)


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class PullConsumer:
    """A pull subscription that survives server restarts, outages and the loss of a cluster node.

    :meth:`fetch` returns ``[]`` on a timeout or a transient error instead of raising, and
    re-creates the subscription after a reconnect (nats.py does not: #504), after repeated
    errors (a consumer that is gone answers every pull with 503: an R1 consumer on a killed
    cluster node, or one deleted by the server), and after a re-create that failed. An
    ephemeral consumer (``durable=None``) resumes after the last message it returned (by stream
    sequence), so nothing is delivered twice or skipped across a re-create.
    """

    def __init__(self, bus: Bus, subject: str, *, stream: str, durable: str | None = None,
                 config: api.ConsumerConfig | None = None) -> None:
        self.bus = bus
        self.subject = subject
        self.stream = stream
        self.durable = durable
        self.config = config or api.ConsumerConfig()
        self._sub = None
        self._opened = False      # the consumer was created once (a re-create resumes after _last_seq)
        self._stale = True        # _sub is missing, unsubscribed or of a consumer that is gone: open anew
        self._generation = -1
        self._last_seq: int | None = None
        self._created_at = time.time()
        self._errors = 0
        self.recreated = 0        # successful re-creates (after the first open), for logs and tests

    async def _open(self) -> None:
        """Create the consumer and subscribe. Until that succeeds the consumer stays stale, so
        the next :meth:`fetch` tries again: a re-create that failed (no JetStream leader yet
        after a node was lost) must not leave fetches on an unsubscribed subscription, which
        time out forever as if there were no messages."""
        self._stale = True
        generation = self.bus.reconnects
        config = self.config
        if self.durable is None and self._opened:   # re-creating an ephemeral consumer
            if self._last_seq is not None:
                config = dataclasses.replace(config, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                                             opt_start_seq=self._last_seq + 1, opt_start_time=None)
            elif config.deliver_policy == api.DeliverPolicy.NEW:   # nothing read yet: what came since creation
                config = dataclasses.replace(config, deliver_policy=api.DeliverPolicy.BY_START_TIME,
                                             opt_start_time=_rfc3339(self._created_at))
        if self._sub is not None:
            old, self._sub = self._sub, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.unsubscribe(), timeout=2.0)
        self._sub = await self.bus.js.pull_subscribe(self.subject, durable=self.durable, stream=self.stream,
                                                     config=config)
        if self._opened:
            self.recreated += 1
            log.info("consumer on %s re-created", self.subject)
        self._opened = True
        self._generation = generation
        self._stale = False

    async def fetch(self, batch: int, timeout: float = 1.0) -> list:
        """Up to ``batch`` messages, waiting at most about ``timeout`` seconds; ``[]`` if none."""
        try:
            if self._stale or self._generation != self.bus.reconnects or self._errors >= 3:
                self._errors = 0
                await self._open()
            msgs = await self._sub.fetch(batch=batch, timeout=timeout)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            if self._stale:          # the re-create itself timed out: try again, after a pause
                self._errors += 1
                await asyncio.sleep(min(0.2 * 2 ** self._errors, 2.0))
            return []
        except Exception as exc:   # outage, restart, consumer gone (503): back off, then re-create
            self._errors += 1
            log.debug("fetch on %s failed (%s: %s)", self.subject, type(exc).__name__, exc)
            await asyncio.sleep(min(0.2 * 2 ** self._errors, 2.0))
            return []
        self._errors = 0
        if msgs:
            with contextlib.suppress(Exception):
                self._last_seq = msgs[-1].metadata.sequence.stream
        return msgs

    async def unsubscribe(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sub.unsubscribe(), timeout=2.0)
