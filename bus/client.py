"""A connection to the StreamWise bus: streams, KV, object store, typed publish.

:func:`connect` opens a NATS connection (credentials, TLS: ``docs/security.md``). Without
authentication, or as the admin, it creates (idempotently) every stream, the instance KV
bucket and the artifact object store that ``docs/protocol.md`` lists, so any process may be
the first to start; the scheduler and worker roles only bind the layout the admin made, and
tenant and viewer clients bind nothing. Retention follows the design notes, section 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import ssl
import time
import urllib.parse
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


PLACEMENT_NOT_YET = 10005
"""JetStream's error code for "no suitable peers for placement" (nats-server ``JSClusterNoPeersErrF``)."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PermissionError):   # refused by the server's permissions: retrying cannot help
        return False
    if isinstance(exc, TRANSIENT):
        return True
    if not isinstance(exc, nats.js.errors.APIError):
        return False
    # JetStream answers 503 while it has no leader (a restart, a cluster node lost), and
    # "no suitable peers for placement" (10005) while a cluster's nodes are still meeting (a
    # stream of 3 replicas created before the meta leader knows all three nodes)
    return getattr(exc, "code", None) == 503 or getattr(exc, "err_code", None) == PLACEMENT_NOT_YET


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
                         discard=old, allow_direct=True, **common),
        api.StreamConfig(name=subjects.STREAM_DEADLETTER, subjects=[subjects.deadletter_all()], retention=lim,
                         max_age=b.deadletter_max_age_s, max_bytes=b.deadletter_max_bytes, discard=old, **common),
    ]


@dataclass
class Bus:
    """An open bus connection: NATS core, JetStream, the instance KV and the artifact store."""

    nc: NATS
    js: JetStreamContext
    instances: KeyValue | None    # None for a connection that binds no layout (a tenant or viewer client)
    artifacts: ObjectStore | None
    cache: KeyValue | None
    url: str
    replicas: int = 1
    layout: str = "create"        # "create" (admin, or no auth), "bind" (scheduler, worker) or "none" (clients)
    user: str | None = None       # the NATS user (from the credentials or the URL), None without auth
    refused: list[str] = field(default_factory=list)   # the server's last permission/authorization errors
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

        async def attempt():
            try:
                return await self.js.publish(subject, data, headers=headers or None)
            except Exception:
                self.check_refused(subject)
                raise
        await retrying(f"publish to {subject}", attempt)

    def check_refused(self, subject: str) -> None:
        """Raise if the server refused this connection a publish to ``subject`` (its permission
        error arrives asynchronously; the refused request itself only times out).

        Raises:
            PermissionError: one line with the server's reason.
        """
        for text in reversed(self.refused):
            if f'"{subject.lower()}"' in text.lower():
                raise PermissionError(f"the bus refused {self.user or 'this connection'}: {text}")

    async def put_blob(self, name: str, data: bytes) -> str:
        """Store ``data`` in the artifact object store under ``name``; returns ``name``. Retries
        through a bus outage (:func:`retrying`)."""
        await retrying(f"store {name}", lambda: self.artifacts.put(name, data))
        return name

    async def _uploads(self, tenant: str) -> ObjectStore:
        bucket = subjects.uploads(tenant)
        try:
            return await self.js.object_store(bucket)
        except (NotFoundError, BadRequestError):
            if self.layout != "create":
                raise LayoutError(f"no upload store {bucket} for tenant {tenant!r} on {self.safe_url}: create it "
                                  f"with admin credentials (streamwise layout --tenants {tenant})") from None
            return await _object_store(self.js, bucket, ARTIFACTS_TTL_S, BUS_LIMITS.uploads_max_bytes, self.replicas)

    async def put_upload(self, tenant: str, name: str, data: bytes) -> str:
        """Store a client upload (a script over the payload limit) as ``name`` in the tenant's
        own object store ``sw_uploads_<tenant>``; returns ``name``. Retries through an outage.

        Raises:
            LayoutError: the tenant has no upload store (an authenticated bus: the admin creates it).
        """
        store = await retrying(f"open the uploads of {tenant}", lambda: self._uploads(tenant))
        await retrying(f"upload {name}", lambda: store.put(name, data))
        return name

    async def upload_size(self, tenant: str, name: str) -> int:
        """Bytes of upload ``name`` in ``tenant``'s store (its quota's largest script).

        Raises:
            nats.js.errors.NotFoundError: no such upload (or no store for the tenant).
        """
        bucket = subjects.uploads(tenant)
        # a direct get of the object's metadata message only (`$JS.API.DIRECT.GET.<stream>.<meta
        # subject>`), so the scheduler's permission to see sizes does not let it read the chunks
        msg = await self.js.get_last_msg(subjects.obj_stream(bucket), subjects.obj_meta(bucket, name), direct=True)
        info = api.ObjectInfo.from_response(json.loads(msg.data))
        if info.deleted:
            raise ObjectNotFoundError
        return int(info.size)

    async def get_upload(self, tenant: str, name: str) -> bytes:
        """Fetch ``name`` from the tenant's upload store (the tenant is the one the scheduler
        took from the request's subject, so a request cannot name another tenant's upload).

        Raises:
            KeyError: no such upload (expired, never written, or no store for the tenant).
        """
        try:
            store = await retrying(f"open the uploads of {tenant}", lambda: self._uploads(tenant))
            result = await retrying(f"fetch {name}", lambda: store.get(name))
        except (ObjectNotFoundError, LayoutError):
            raise KeyError(f"upload {name!r} not found in object store {subjects.uploads(tenant)}") from None
        return result.data or b""

    async def get_blob(self, name: str) -> bytes:
        """Fetch an artifact.

        Raises:
            KeyError: no artifact of that name (expired, or never written).
        """
        if self.artifacts is None:
            raise KeyError(f"artifact {name!r}: this connection ({self.user}) has no access to the object store "
                           f"{subjects.OBJECT_STORE}")
        try:
            result = await retrying(f"fetch {name}", lambda: self.artifacts.get(name))
        except ObjectNotFoundError:
            raise KeyError(f"artifact {name!r} not found in object store {subjects.OBJECT_STORE}") from None
        return result.data or b""

    async def deadletter(self, kind: str, data: bytes, reason: str) -> None:
        """Record an invalid message on ``sw.deadletter.<kind>``: its reason (header
        ``Sw-Error``), size and sha256 (headers ``Sw-Bytes``, ``Sw-Sha256``) and, as the payload,
        only what :func:`deadletter_payload` keeps (ids and numbers, never a script's or a
        document's text). Best effort: a bus outage only costs the record (logged)."""
        headers = {"Sw-Error": reason[:1000], "Sw-Bytes": str(len(data)),
                   "Sw-Sha256": hashlib.sha256(data).hexdigest()}
        try:
            await retrying("dead-letter", lambda: self.js.publish(subjects.deadletter(kind), deadletter_payload(data),
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


DEADLETTER_TEXT_CHARS = 64
"""A dead letter keeps string fields up to this many characters (ids, names, enum values);
longer ones (a script, a document, a topic) are replaced by their length."""


def deadletter_payload(data: bytes) -> bytes:
    """What a dead letter keeps of an invalid message: a MessagePack map with its keys, numbers
    and short strings (at most :data:`DEADLETTER_TEXT_CHARS`), every longer string or bytes
    value replaced by ``"<N chars>"`` / ``"<N bytes>"`` and nested values by their type; at most
    256 bytes. Anything that is not a MessagePack map keeps nothing (it could be raw text)."""
    import msgpack

    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return b""
    if not isinstance(raw, dict):
        return b""
    kept = {}
    for key, value in list(raw.items())[:32]:
        if isinstance(value, str):
            value = value if len(value) <= DEADLETTER_TEXT_CHARS else f"<{len(value)} chars>"
        elif isinstance(value, (bytes, bytearray)):
            value = f"<{len(value)} bytes>"
        elif isinstance(value, (dict, list, tuple)):
            value = f"<{type(value).__name__} of {len(value)}>"
        kept[str(key)[:DEADLETTER_TEXT_CHARS]] = value
    out = msgpack.packb(kept)
    while len(out) > 256 and kept:
        kept.popitem()
        out = msgpack.packb(kept)
    return out


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


class LayoutError(RuntimeError):
    """The bus layout (a stream, bucket or object store) is missing and this connection may not
    create it: run ``streamwise layout`` with admin credentials."""


async def _object_store(js: JetStreamContext, bucket: str, ttl_s: float, max_bytes: int, replicas: int) -> ObjectStore:
    try:
        return await js.object_store(bucket)
    except (NotFoundError, BadRequestError):
        return await js.create_object_store(bucket, api.ObjectStoreConfig(ttl=ttl_s, max_bytes=max_bytes,
                                                                          replicas=replicas))


async def _kv(js: JetStreamContext, bucket: str, ttl_s: float, max_bytes: int, replicas: int) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except (NotFoundError, BadRequestError):
        return await js.create_key_value(api.KeyValueConfig(bucket=bucket, ttl=ttl_s, max_bytes=max_bytes,
                                                            replicas=replicas))


async def ensure_layout(js: JetStreamContext, replicas: int | None = None,
                        tenants: tuple[str, ...] | list[str] = ()) -> tuple[KeyValue, ObjectStore, KeyValue]:
    """Create what is missing of the streams, the instance KV, the object store, the result
    cache KV and the upload store of each of ``tenants``. Existing ones are left as they are:
    an operator's replicas, limits or other changes are never undone or lowered (idempotent).
    On an authenticated bus only the admin role may call this (``streamwise layout``).
    ``replicas``: for what this call creates (default :func:`replicas_default`)."""
    replicas = replicas or replicas_default()
    for tenant in tenants:
        await _object_store(js, subjects.uploads(tenant), ARTIFACTS_TTL_S, BUS_LIMITS.uploads_max_bytes, replicas)
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
    store = await _object_store(js, subjects.OBJECT_STORE, ARTIFACTS_TTL_S, b.artifacts_max_bytes, replicas)
    return kv, store, cache


async def bind_layout(js: JetStreamContext, url: str, *,
                      cache: bool = True) -> tuple[KeyValue, ObjectStore, KeyValue | None]:
    """Bind the instance KV, the artifact store and (``cache``) the cache KV that the admin
    created, creating nothing (the scheduler and worker roles may not; a worker has no access
    to the cache, which only schedulers use).

    Raises:
        LayoutError: one of them is missing (one line naming it and the fix).
    """
    async def one(kind: str, name: str, open_):
        try:
            return await open_(name)
        except (NotFoundError, BadRequestError):
            raise LayoutError(f"bus layout missing on {redact(url)}: no {kind} {name}; create the layout once "
                              f"with admin credentials: streamwise layout --nats URL --creds admin.creds") from None

    kv = await one("KV bucket", subjects.KV_INSTANCES, js.key_value)
    store = await one("object store", subjects.OBJECT_STORE, js.object_store)
    return kv, store, (await one("KV bucket", subjects.KV_CACHE, js.key_value) if cache else None)


def _url_user(url: str) -> str | None:
    """The user name of the first URL that carries credentials (``nats://user:pw@host``)."""
    for part in url.split(","):
        rest = part.strip().rpartition("://")[2]
        creds, at, _ = rest.rpartition("@")
        if at and creds:
            return urllib.parse.unquote(creds.split(":", 1)[0])
    return None


def tls_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext | None:
    """A client TLS context trusting ``ca`` (a PEM file; ``$STREAMWISE_TLS_CA``), with an
    optional client certificate ``cert``/``key`` (``$STREAMWISE_TLS_CERT``/``$STREAMWISE_TLS_KEY``,
    for servers that verify clients). ``None`` when none of them is set (a ``tls://`` URL then
    uses the system's trusted CAs).

    Raises:
        ConnectionError: a file cannot be read (one line naming it).
    """
    ca = ca or os.environ.get("STREAMWISE_TLS_CA") or None
    cert = cert or os.environ.get("STREAMWISE_TLS_CERT") or None
    key = key or os.environ.get("STREAMWISE_TLS_KEY") or None
    if not (ca or cert):
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionError(f"TLS: cannot load {ca if ca and not cert else cert}: {exc}") from None
    return ctx


def _is_worker(user: str | None) -> bool:
    """The all-models ``worker`` user or a ``worker-<model>`` one (they bind no result cache)."""
    return user == "worker" or (user or "").startswith("worker-")


def _default_layout(user: str | None) -> str:
    """No auth or the admin: create the layout; a tenant or viewer: bind nothing; others: bind."""
    if user is None or user == "admin":
        return "create"
    return "none" if user.startswith(("tenant-", "viewer-")) else "bind"


async def connect(url: str, *, name: str = "streamwise", connect_timeout_s: float = 5.0,
                  replicas: int | None = None, creds: str | None = None, tls_ca: str | None = None,
                  layout: str | None = None, **options) -> Bus:
    """Connect to ``url`` (one URL or several, comma-separated, for a cluster; ``tls://`` for
    TLS; ``nats://user:password@host`` for user/password auth) and make sure the bus layout
    exists. The connection reconnects forever after it was once established; each reconnect
    re-creates the layout when this connection may (a server restarted without its store) and
    bumps :attr:`Bus.reconnects`, so pull consumers and watchers re-subscribe (nats.py #504).

    ``creds``: a NATS ``.creds`` file (default ``$STREAMWISE_CREDS``; ``streamwise auth init``
    writes one per role). ``tls_ca``: PEM file of the CA that signed the server's certificate
    (default ``$STREAMWISE_TLS_CA``; see :func:`tls_context`). With credentials the connection's
    reply subjects are ``_INBOX_<user>.*`` (the only ones its permissions let it subscribe to).
    ``layout``: ``"create"`` (ensure the layout: no auth, or the admin), ``"bind"`` (use the
    existing layout, error if missing: the scheduler and worker roles) or ``"none"`` (bind
    nothing: tenant and viewer clients); default from the user name. ``options`` go to
    ``nats.connect``.

    Raises:
        ConnectionError: the server cannot be reached within ``connect_timeout_s``, refuses the
            credentials, or a credentials/TLS file is unreadable (the message names the URL,
            without credentials, never a secret).
        LayoutError: ``layout="bind"`` and the layout is missing.
        PermissionError: the server refused what the layout step needs (e.g. a tenant's
            credentials with ``layout="create"``).
    """
    from .auth import AuthError, read_creds_jwt

    servers = [u.strip() for u in url.split(",") if u.strip()]
    holder: dict[str, Bus] = {}
    creds = creds or os.environ.get("STREAMWISE_CREDS") or None
    user = _url_user(url)
    if creds:
        try:
            user = read_creds_jwt(creds).get("name") or user
        except AuthError as exc:
            raise ConnectionError(str(exc)) from None
        options.setdefault("user_credentials", creds)
    if os.environ.get("STREAMWISE_INBOX_PREFIX"):   # a server of your own whose users reply on another prefix
        options.setdefault("inbox_prefix", os.environ["STREAMWISE_INBOX_PREFIX"])
    elif user is not None:
        try:
            options.setdefault("inbox_prefix", subjects.inbox_prefix(user))
        except ValueError:   # a user name that is no subject token: keep the default prefix
            pass
    ctx = tls_context(tls_ca)
    if ctx is not None:
        options.setdefault("tls", ctx)
    layout = layout or _default_layout(user)
    if layout not in ("create", "bind", "none"):
        raise ValueError(f"layout must be create, bind or none, not {layout!r}")
    refused: list[str] = []

    user_error_cb = options.pop("error_cb", None)

    async def _error(exc: Exception) -> None:
        if user_error_cb is not None:
            await user_error_cb(exc)
        text = str(exc)
        if "uthorization" in text or "ermissions" in text:
            refused.append(text)
            del refused[:-20]
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
        if bus.layout == "create":
            asyncio.get_running_loop().create_task(_relayout(bus))

    try:
        # nats-py may keep retrying an initial connect that never succeeds: bound it ourselves
        nc = await asyncio.wait_for(
            nats.connect(servers, name=name, connect_timeout=connect_timeout_s, allow_reconnect=True,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=_error,
                         disconnected_cb=_disconnected, reconnected_cb=_reconnected, **options),
            timeout=connect_timeout_s + 1.0)
    except (OSError, asyncio.TimeoutError, nats.errors.NoServersError, nats.errors.Error) as exc:
        reason = refused[-1] if refused else (str(exc) or type(exc).__name__)
        raise ConnectionError(f"cannot connect to NATS at {redact(url)}: {redact(reason)}") from None
    js = nc.jetstream(timeout=10.0)
    replicas = replicas or replicas_default()
    kv = store = cache = None

    def unless_refused(make):
        async def attempt():
            before = refused[-1] if refused else None
            try:
                return await make()
            except Exception:
                if refused and refused[-1] is not before:   # the server's permissions, not an outage
                    raise PermissionError(f"{redact(url)} refused {user or 'this connection'}: {refused[-1]} "
                                          f"(only the admin creates the layout: streamwise layout)") from None
                raise
        return attempt

    try:
        if layout == "create":
            kv, store, cache = await retrying("create the bus layout",
                                              unless_refused(lambda: ensure_layout(js, replicas)), retry_s=30.0)
        elif layout == "bind":
            kv, store, cache = await retrying(
                "bind the bus layout", unless_refused(lambda: bind_layout(js, url, cache=not _is_worker(user))),
                retry_s=30.0)
    except BaseException:
        await nc.close()
        raise
    bus = Bus(nc=nc, js=js, instances=kv, artifacts=store, cache=cache, url=url, replicas=replicas,
              layout=layout, user=user, refused=refused)
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
