"""A connection to the StreamWise bus: typed publish, blobs, uploads, dead letters.

:func:`connect` opens a NATS connection (credentials, TLS: ``docs/security.md``). Without
authentication, or as the admin, it creates (idempotently) every stream, the instance KV
bucket and the artifact object store that ``docs/protocol.md`` lists (:mod:`.layout`), so any
process may be the first to start; the scheduler and worker roles only bind the layout the
admin made, and tenant and viewer clients bind nothing. The pull consumer that survives
restarts is :class:`.consumer.PullConsumer` (re-exported here).
"""

from __future__ import annotations

import asyncio
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
from .consumer import PullConsumer
from .layout import (ARTIFACTS_TTL_S, CACHE_TTL_S, EVENTS_MAX_AGE_S, INSTANCE_TTL_S, SEGMENTS_MAX_AGE_S,
                     TENANTS_TTL_S, LayoutError, _object_store, bind_layout, bind_task_stream, ensure_layout,
                     ensure_task_stream, replicas_default)
from .limits import BUS_LIMITS

__all__ = ["ACK_WAIT_S", "ARTIFACTS_TTL_S", "CACHE_TTL_S", "EVENTS_MAX_AGE_S", "INSTANCE_TTL_S", "PUBLISH_RETRY_S",
           "REQUEST_ACK_WAIT_S", "SEGMENTS_MAX_AGE_S", "TENANTS_TTL_S", "Bus", "LayoutError", "PullConsumer",
           "connect", "deadletter_payload", "ensure_layout", "redact", "replicas_default", "retrying",
           "tls_context"]

log = logging.getLogger(__name__)

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
    task_models: set[str] = field(default_factory=set)   # models whose task streams this connection made sure of
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

    async def task_stream(self, model: str) -> str:
        """Make sure the task stream ``SW_TASKS_<model>`` exists and return its name: created if
        missing when this connection creates the layout (no auth, the admin), else only checked
        (the admin makes it: ``streamwise layout``). Re-created after a reconnect like the rest.

        Raises:
            LayoutError: it is missing and this connection may not create it, or the legacy
                all-models stream ``SW_TASKS`` is in the way.
        """
        if self.layout == "create":
            await retrying(f"create the task stream of {model}", lambda: ensure_task_stream(self.js, model, self.replicas),
                           retry_s=30.0)
        else:
            await retrying(f"bind the task stream of {model}", lambda: bind_task_stream(self.js, model, self.safe_url),
                           retry_s=30.0)
        self.task_models.add(model)
        return subjects.tasks_stream(model)

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
                "bind the bus layout", unless_refused(lambda: bind_layout(js, redact(url), cache=not _is_worker(user))),
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
            "re-create the bus layout", lambda: ensure_layout(bus.js, bus.replicas, models=tuple(bus.task_models)))
    except Exception as exc:
        log.warning("bus: could not re-create the layout after a reconnect: %s", exc)


