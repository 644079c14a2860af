"""A connection to the StreamWise bus: streams, KV, object store, typed publish.

:func:`connect` opens a NATS connection and creates (idempotently) every stream, the
instance KV bucket and the artifact object store that ``docs/protocol.md`` lists, so any
process may be the first to start. Retention follows the design notes, section 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from . import subjects
from .codec import encode
from .limits import BUS_LIMITS

log = logging.getLogger(__name__)

INSTANCE_TTL_S = 10.0      # a worker missing heartbeats this long is gone (KV bucket max-age)
EVENTS_MAX_AGE_S = 3600.0  # completion events are for the live scheduler; an hour covers replay
SEGMENTS_MAX_AGE_S = 6 * 3600.0
ARTIFACTS_TTL_S = 6 * 3600.0
# a cache entry names artifacts written before it, so it must expire before they do
CACHE_TTL_S = ARTIFACTS_TTL_S - 3600.0
TENANTS_TTL_S = 2 * 86400.0   # the quota ledger: a tenant idle for two days starts afresh
# a task message's ack wait: a worker sends in-progress acks for every message it holds every
# third of it, so a long wait protects nothing; a short one bounds how long a task lost in
# transit (a server crash between delivery and receipt) waits for its redelivery
ACK_WAIT_S = float(os.environ.get("STREAMWISE_ACK_WAIT_S", "10"))
# a request stays un-acked while its scheduler runs it (in-progress acks every third of
# this); when that scheduler dies, another one takes the request over after this long
REQUEST_ACK_WAIT_S = 10.0


PUBLISH_RETRY_S = float(os.environ.get("STREAMWISE_PUBLISH_RETRY_S", "120"))
"""How long a publish (or an object-store read/write) keeps retrying, with backoff, through a
bus outage before it raises (seconds). Longer than the outages the services ride out (60 s)."""

TRANSIENT = (nats.errors.TimeoutError, asyncio.TimeoutError, nats.errors.NoRespondersError,
             nats.errors.ConnectionReconnectingError, nats.errors.StaleConnectionError,
             nats.errors.OutboundBufferLimitError, nats.errors.FlushTimeoutError,
             nats.js.errors.NoStreamResponseError, nats.js.errors.ServiceUnavailableError, ConnectionError, OSError)
"""Errors of a bus that is restarting or unreachable for a while: retried with backoff."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT):
        return True
    # JetStream answers 503 while it has no leader (a restart, a cluster node lost)
    return isinstance(exc, nats.js.errors.APIError) and getattr(exc, "code", None) == 503


async def retrying(what: str, fn, *, retry_s: float | None = None, first_backoff_s: float = 0.1):
    """Await ``fn()`` until it succeeds, retrying transient bus errors (a server restart, an
    outage, no JetStream leader yet) with exponential backoff (0.1 s doubling to 5 s) for up
    to ``retry_s`` seconds (default :data:`PUBLISH_RETRY_S`).

    Raises:
        the last transient error once ``retry_s`` is spent; any other error at once.
    """
    limit = PUBLISH_RETRY_S if retry_s is None else retry_s
    deadline = time.monotonic() + limit
    backoff = first_backoff_s
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not _is_transient(exc) or time.monotonic() + backoff > deadline:
                raise
            attempt += 1
            if attempt in (1, 10) or attempt % 50 == 0:
                log.warning("%s failed (%s: %s); retrying for up to %.0f s", what, type(exc).__name__, exc, limit)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def _stream_configs(replicas: int = 1) -> list[api.StreamConfig]:
    """The streams of ``docs/protocol.md`` with their bounds (``configs/limits.yaml``, ``bus:``).

    Work-queue streams and the event stream refuse new messages when full (``discard: new``):
    the publisher gets an error and retries or fails its request, so an in-flight request's
    data is never dropped silently. Segments and status age out after ``SEGMENTS_MAX_AGE_S``.
    """
    wq, lim = api.RetentionPolicy.WORK_QUEUE, api.RetentionPolicy.LIMITS
    new, old = api.DiscardPolicy.NEW, api.DiscardPolicy.OLD
    b = BUS_LIMITS
    common = dict(num_replicas=replicas, storage=api.StorageType.FILE)
    return [
        api.StreamConfig(name=subjects.STREAM_REQUESTS, subjects=[subjects.requests_all()], retention=wq,
                         max_age=b.requests_max_age_s, max_bytes=b.requests_max_bytes, discard=new, **common),
        api.StreamConfig(name=subjects.STREAM_TASKS, subjects=[subjects.tasks_all()], retention=wq,
                         max_age=b.tasks_max_age_s, max_bytes=b.tasks_max_bytes, discard=new, **common),
        api.StreamConfig(name=subjects.STREAM_EVENTS, subjects=[subjects.events_all()], retention=lim,
                         max_age=EVENTS_MAX_AGE_S, max_bytes=b.events_max_bytes, discard=new, **common),
        api.StreamConfig(name=subjects.STREAM_SEGMENTS, subjects=[subjects.segments_all()], retention=lim,
                         max_age=SEGMENTS_MAX_AGE_S, max_bytes=b.segments_max_bytes, discard=new, **common),
        api.StreamConfig(name=subjects.STREAM_STATUS, subjects=[subjects.status_all()], retention=lim,
                         max_age=SEGMENTS_MAX_AGE_S, max_msgs_per_subject=256, max_bytes=b.status_max_bytes,
                         discard=old, **common),
        api.StreamConfig(name=subjects.STREAM_DEADLETTER, subjects=[subjects.deadletter_all()], retention=lim,
                         max_age=b.deadletter_max_age_s, max_bytes=b.deadletter_max_bytes, discard=old, **common),
    ]


@dataclass
class Bus:
    """An open bus connection: NATS core, JetStream, the instance KV and the artifact store."""

    nc: NATS
    js: JetStreamContext
    instances: KeyValue
    artifacts: ObjectStore
    cache: KeyValue
    url: str
    replicas: int = 1
    reconnects: int = 0          # bumped on every reconnect: pull consumers and watchers re-create themselves
    closing: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def safe_url(self) -> str:
        """The server URL(s) without credentials, for logs and error messages."""
        return redact(self.url)

    @property
    def max_payload(self) -> int:
        """The server's max message size in bytes (1 MB by default, 8 MB embedded)."""
        return self.nc.max_payload

    async def publish(self, subject: str, message: msgspec.Struct, *, msg_id: str | None = None,
                      headers: dict[str, str] | None = None) -> None:
        """Publish a message to a JetStream subject and wait for the stream's ack.

        ``msg_id`` sets ``Nats-Msg-Id`` so a retried publish is de-duplicated by the server;
        ``headers`` adds others (e.g. the trace context).
        """
        headers = dict(headers or {})
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        data = encode(message)
        await retrying(f"publish to {subject}", lambda: self.js.publish(subject, data, headers=headers or None))

    async def put_blob(self, name: str, data: bytes) -> str:
        """Store ``data`` in the artifact object store under ``name``; returns ``name``. Retries
        through a bus outage (:func:`retrying`)."""
        await retrying(f"store {name}", lambda: self.artifacts.put(name, data))
        return name

    async def get_blob(self, name: str) -> bytes:
        """Fetch an artifact.

        Raises:
            KeyError: no artifact of that name (expired, or never written).
        """
        try:
            result = await retrying(f"fetch {name}", lambda: self.artifacts.get(name))
        except ObjectNotFoundError:
            raise KeyError(f"artifact {name!r} not found in object store {subjects.OBJECT_STORE}") from None
        return result.data or b""

    async def deadletter(self, kind: str, data: bytes, reason: str) -> None:
        """Record an invalid message on ``sw.deadletter.<kind>``: its reason (header
        ``Sw-Error``), size and sha256 (headers ``Sw-Bytes``, ``Sw-Sha256``) and at most its
        first 256 bytes as the payload, never a whole script. Best effort: a bus outage only
        costs the record (logged)."""
        headers = {"Sw-Error": reason[:1000], "Sw-Bytes": str(len(data)),
                   "Sw-Sha256": hashlib.sha256(data).hexdigest()}
        try:
            await retrying("dead-letter", lambda: self.js.publish(subjects.deadletter(kind), data[:256],
                                                                  headers=headers), retry_s=10.0)
        except Exception as exc:
            log.warning("could not dead-letter a %s message (%s): %s", kind, reason, exc)

    async def close(self) -> None:
        """Flush what was published and close. (Not ``drain()``: it can wait forever on a pull
        subscription's internal queue; everything we need delivered was acked already.)"""
        self.closing = True
        try:
            await self.nc.flush(timeout=2)
        except Exception:  # already closed or server gone: nothing left to flush
            pass
        await self.nc.close()


def redact(url: str) -> str:
    """``nats://user:secret@host:4222`` -> ``nats://user:***@host:4222`` (every URL of a list)."""
    out = []
    for part in url.split(","):
        scheme, sep, rest = part.strip().rpartition("://")
        creds, at, host = rest.rpartition("@")
        if at:
            user = creds.split(":", 1)[0]
            rest = f"{user}:***@{host}" if ":" in creds else f"***@{host}"
        out.append(f"{scheme}{sep}{rest}")
    return ",".join(out)


def replicas_default() -> int:
    """Stream, bucket and object-store replicas for a layout this process creates:
    ``$STREAMWISE_REPLICAS`` (3 on a three-node cluster), default 1."""
    return max(1, int(os.environ.get("STREAMWISE_REPLICAS", "1")))


async def _kv(js: JetStreamContext, bucket: str, ttl_s: float, max_bytes: int, replicas: int) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except (NotFoundError, BadRequestError):
        return await js.create_key_value(api.KeyValueConfig(bucket=bucket, ttl=ttl_s, max_bytes=max_bytes,
                                                            replicas=replicas))


async def ensure_layout(js: JetStreamContext, replicas: int | None = None) -> tuple[KeyValue, ObjectStore, KeyValue]:
    """Create what is missing of the streams, the instance KV, the object store and the result
    cache KV. Existing ones are left as they are: an operator's replicas, limits or other
    changes are never undone or lowered (idempotent; any process may start first).
    ``replicas``: for what this call creates (default :func:`replicas_default`)."""
    replicas = replicas or replicas_default()
    for config in _stream_configs(replicas):
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError as exc:   # created by another process meanwhile, or refused
                try:
                    await js.stream_info(config.name)
                except NotFoundError:
                    raise exc from None
    b = BUS_LIMITS
    kv = await _kv(js, subjects.KV_INSTANCES, INSTANCE_TTL_S, b.instances_max_bytes, replicas)
    cache = await _kv(js, subjects.KV_CACHE, CACHE_TTL_S, b.cache_max_bytes, replicas)
    await _kv(js, subjects.KV_TENANTS, TENANTS_TTL_S, 64 * 2**20, replicas)   # quota usage (opened lazily)
    try:
        store = await js.object_store(subjects.OBJECT_STORE)
    except (NotFoundError, BadRequestError):
        store = await js.create_object_store(subjects.OBJECT_STORE, api.ObjectStoreConfig(
            ttl=ARTIFACTS_TTL_S, max_bytes=b.artifacts_max_bytes, replicas=replicas))
    return kv, store, cache


async def connect(url: str, *, name: str = "streamwise", connect_timeout_s: float = 5.0,
                  replicas: int | None = None, **options) -> Bus:
    """Connect to ``url`` (one URL or several, comma-separated, for a cluster) and make sure
    the bus layout exists. The connection reconnects forever after it was once established;
    each reconnect re-creates the layout (a server restarted without its store) and bumps
    :attr:`Bus.reconnects`, so pull consumers and watchers re-subscribe (nats.py #504).
    ``options`` go to ``nats.connect`` (credentials, TLS).

    Raises:
        ConnectionError: the server cannot be reached within ``connect_timeout_s``
            (the message names the URL, without credentials).
    """
    servers = [u.strip() for u in url.split(",") if u.strip()]
    holder: dict[str, Bus] = {}

    async def _error(exc: Exception) -> None:
        log.debug("nats: %s", exc)

    async def _disconnected() -> None:
        bus = holder.get("bus")
        if bus is not None and not bus.closing:
            bus.connected.clear()
            log.warning("bus: disconnected from %s; reconnecting", redact(url))

    async def _reconnected() -> None:
        bus = holder.get("bus")
        if bus is None:
            return
        bus.reconnects += 1
        bus.connected.set()
        log.warning("bus: reconnected to %s", redact(str(bus.nc.connected_url.geturl()
                                                           if bus.nc.connected_url else url)))
        asyncio.get_running_loop().create_task(_relayout(bus))

    try:
        # nats-py may keep retrying an initial connect that never succeeds: bound it ourselves
        nc = await asyncio.wait_for(
            nats.connect(servers, name=name, connect_timeout=connect_timeout_s, allow_reconnect=True,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=_error,
                         disconnected_cb=_disconnected, reconnected_cb=_reconnected, **options),
            timeout=connect_timeout_s + 1.0)
    except (OSError, asyncio.TimeoutError, nats.errors.NoServersError) as exc:
        raise ConnectionError(f"cannot connect to NATS at {redact(url)}: {str(exc) or type(exc).__name__}") from None
    js = nc.jetstream(timeout=10.0)
    replicas = replicas or replicas_default()
    kv, store, cache = await retrying("create the bus layout", lambda: ensure_layout(js, replicas), retry_s=30.0)
    bus = Bus(nc=nc, js=js, instances=kv, artifacts=store, cache=cache, url=url, replicas=replicas)
    bus.connected.set()
    holder["bus"] = bus
    return bus


async def _relayout(bus: Bus) -> None:
    """After a reconnect: re-create whatever the server lost (a restart without its store)."""
    try:
        bus.instances, bus.artifacts, bus.cache = await retrying(
            "re-create the bus layout", lambda: ensure_layout(bus.js, bus.replicas))
    except Exception as exc:
        log.warning("bus: could not re-create the layout after a reconnect: %s", exc)


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class PullConsumer:
    """A pull subscription that survives server restarts and outages.

    :meth:`fetch` returns ``[]`` on a timeout or a transient error instead of raising, and
    re-creates the subscription after a reconnect (nats.py does not: #504) or after repeated
    errors. An ephemeral consumer (``durable=None``) resumes after the last message it
    returned (by stream sequence), so nothing is delivered twice or skipped across a re-create.
    """

    def __init__(self, bus: Bus, subject: str, *, stream: str, durable: str | None = None,
                 config: api.ConsumerConfig | None = None) -> None:
        self.bus = bus
        self.subject = subject
        self.stream = stream
        self.durable = durable
        self.config = config or api.ConsumerConfig()
        self._sub = None
        self._generation = -1
        self._last_seq: int | None = None
        self._created_at = time.time()
        self._errors = 0

    async def _open(self) -> None:
        config = self.config
        if self.durable is None and self._sub is not None:   # re-creating an ephemeral consumer
            if self._last_seq is not None:
                config = dataclasses.replace(config, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                                             opt_start_seq=self._last_seq + 1, opt_start_time=None)
            elif config.deliver_policy == api.DeliverPolicy.NEW:   # nothing read yet: what came since creation
                config = dataclasses.replace(config, deliver_policy=api.DeliverPolicy.BY_START_TIME,
                                             opt_start_time=_rfc3339(self._created_at))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sub.unsubscribe(), timeout=2.0)
        self._generation = self.bus.reconnects
        self._sub = await self.bus.js.pull_subscribe(self.subject, durable=self.durable, stream=self.stream,
                                                     config=config)

    async def fetch(self, batch: int, timeout: float = 1.0) -> list:
        """Up to ``batch`` messages, waiting at most about ``timeout`` seconds; ``[]`` if none."""
        try:
            if self._sub is None or self._generation != self.bus.reconnects or self._errors >= 3:
                self._errors = 0
                await self._open()
            msgs = await self._sub.fetch(batch=batch, timeout=timeout)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            return []
        except Exception as exc:   # outage, restart, consumer deleted: back off, then re-create
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
