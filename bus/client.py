"""A connection to the StreamWise bus: streams, KV, object store, typed publish.

:func:`connect` opens a NATS connection and creates (idempotently) every stream, the
instance KV bucket and the artifact object store that ``docs/protocol.md`` lists, so any
process may be the first to start. Retention follows the design notes, section 3.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from . import subjects
from .codec import encode

log = logging.getLogger(__name__)

INSTANCE_TTL_S = 10.0      # a worker missing heartbeats this long is gone (KV bucket max-age)
EVENTS_MAX_AGE_S = 3600.0  # completion events are for the live scheduler; an hour covers replay
SEGMENTS_MAX_AGE_S = 6 * 3600.0
ARTIFACTS_TTL_S = 6 * 3600.0
# a cache entry names artifacts written before it, so it must expire before they do
CACHE_TTL_S = ARTIFACTS_TTL_S - 3600.0
ACK_WAIT_S = 30.0
# a request stays un-acked while its scheduler runs it (in-progress acks every third of
# this); when that scheduler dies, another one takes the request over after this long
REQUEST_ACK_WAIT_S = 10.0


def _stream_configs() -> list[api.StreamConfig]:
    wq, lim = api.RetentionPolicy.WORK_QUEUE, api.RetentionPolicy.LIMITS
    return [
        api.StreamConfig(name=subjects.STREAM_REQUESTS, subjects=[subjects.requests_all()], retention=wq),
        api.StreamConfig(name=subjects.STREAM_TASKS, subjects=[subjects.tasks_all()], retention=wq),
        api.StreamConfig(name=subjects.STREAM_EVENTS, subjects=[subjects.events_all()], retention=lim,
                         max_age=EVENTS_MAX_AGE_S),
        api.StreamConfig(name=subjects.STREAM_SEGMENTS, subjects=[subjects.segments_all()], retention=lim,
                         max_age=SEGMENTS_MAX_AGE_S),
        api.StreamConfig(name=subjects.STREAM_STATUS, subjects=[subjects.status_all()], retention=lim,
                         max_age=SEGMENTS_MAX_AGE_S, max_msgs_per_subject=256),
        api.StreamConfig(name=subjects.STREAM_DEADLETTER, subjects=[subjects.deadletter_all()], retention=lim,
                         max_age=7 * 86400.0),
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
        await self.js.publish(subject, encode(message), headers=headers or None)

    async def put_blob(self, name: str, data: bytes) -> str:
        """Store ``data`` in the artifact object store under ``name``; returns ``name``."""
        await self.artifacts.put(name, data)
        return name

    async def get_blob(self, name: str) -> bytes:
        """Fetch an artifact.

        Raises:
            KeyError: no artifact of that name (expired, or never written).
        """
        try:
            result = await self.artifacts.get(name)
        except ObjectNotFoundError:
            raise KeyError(f"artifact {name!r} not found in object store {subjects.OBJECT_STORE}") from None
        return result.data or b""

    async def deadletter(self, kind: str, data: bytes, reason: str) -> None:
        """Keep an invalid message on ``sw.deadletter.<kind>`` with its reason in a header."""
        await self.js.publish(subjects.deadletter(kind), data, headers={"Sw-Error": reason[:1000]})

    async def close(self) -> None:
        """Flush what was published and close. (Not ``drain()``: it can wait forever on a pull
        subscription's internal queue; everything we need delivered was acked already.)"""
        try:
            await self.nc.flush(timeout=2)
        except Exception:  # already closed or server gone: nothing left to flush
            pass
        await self.nc.close()


async def _kv(js: JetStreamContext, bucket: str, ttl_s: float) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except (NotFoundError, BadRequestError):
        return await js.create_key_value(api.KeyValueConfig(bucket=bucket, ttl=ttl_s))


async def ensure_layout(js: JetStreamContext) -> tuple[KeyValue, ObjectStore, KeyValue]:
    """Create or update the streams, the instance KV, the object store and the result cache
    KV (idempotent)."""
    for config in _stream_configs():
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    kv = await _kv(js, subjects.KV_INSTANCES, INSTANCE_TTL_S)
    cache = await _kv(js, subjects.KV_CACHE, CACHE_TTL_S)
    try:
        store = await js.object_store(subjects.OBJECT_STORE)
    except (NotFoundError, BadRequestError):
        store = await js.create_object_store(subjects.OBJECT_STORE, api.ObjectStoreConfig(ttl=ARTIFACTS_TTL_S))
    return kv, store, cache


async def connect(url: str, *, name: str = "streamwise", connect_timeout_s: float = 5.0) -> Bus:
    """Connect to ``url`` and make sure the bus layout exists.

    Raises:
        ConnectionError: the server cannot be reached within ``connect_timeout_s``
            (the message names the URL).
    """
    async def _quiet(exc: Exception) -> None:
        log.debug("nats: %s", exc)

    try:
        # nats-py may keep retrying an initial connect that never succeeds: bound it ourselves
        nc = await asyncio.wait_for(
            nats.connect(url, name=name, connect_timeout=connect_timeout_s, allow_reconnect=True,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=_quiet),
            timeout=connect_timeout_s + 1.0)
    except (OSError, asyncio.TimeoutError, nats.errors.NoServersError) as exc:
        raise ConnectionError(f"cannot connect to NATS at {url}: {str(exc) or type(exc).__name__}") from None
    js = nc.jetstream(timeout=10.0)
    kv, store, cache = await ensure_layout(js)
    return Bus(nc=nc, js=js, instances=kv, artifacts=store, cache=cache, url=url)
