"""The bus layout: the streams, KV buckets and object stores of ``docs/protocol.md``, their
bounds (``configs/limits.yaml``, ``bus:``) and retention (the design notes, section 3), and the
functions that create what is missing (:func:`ensure_layout`, :func:`ensure_task_stream`) or
bind what the admin made (:func:`bind_layout`, :func:`bind_task_stream`).

Tasks live in one work-queue stream per model, ``SW_TASKS_<model>`` (issue 11: a worker user's
permissions name only its own model's stream). Nothing here lowers or undoes what exists: an
operator's replicas, limits or other changes are kept.
"""

from __future__ import annotations

import os

from nats.js import JetStreamContext
from nats.js import api
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from . import subjects
from .limits import BUS_LIMITS

INSTANCE_TTL_S = 10.0      # a worker missing heartbeats this long is gone (KV bucket max-age)
EVENTS_MAX_AGE_S = 3600.0  # completion events are for the live scheduler; an hour covers replay
SEGMENTS_MAX_AGE_S = 6 * 3600.0
ARTIFACTS_TTL_S = 6 * 3600.0
# a cache entry names artifacts written before it, so it must expire before they do
CACHE_TTL_S = ARTIFACTS_TTL_S - 3600.0
TENANTS_TTL_S = 2 * 86400.0   # the quota ledger: a tenant idle for two days starts afresh


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


def task_stream_config(model: str, replicas: int = 1) -> api.StreamConfig:
    """The work-queue stream ``SW_TASKS_<model>`` on ``sw.tasks.<model>.*`` (one durable consumer
    per instance, named after it), refusing new tasks when full (``tasks_max_bytes`` is per model).

    Raises:
        ValueError: ``model`` is not a subject token."""
    b = BUS_LIMITS
    return api.StreamConfig(name=subjects.tasks_stream(model), subjects=[subjects.tasks_of_model(model)],
                            retention=api.RetentionPolicy.WORK_QUEUE, max_age=b.tasks_max_age_s,
                            max_bytes=b.tasks_max_bytes, discard=api.DiscardPolicy.NEW, num_replicas=replicas,
                            storage=api.StorageType.FILE)


async def _add_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    """Create ``config``'s stream unless one of that name exists (which is left as it is).

    Raises:
        LayoutError: the legacy all-models task stream ``SW_TASKS`` holds these subjects.
        nats.js.errors.APIError: the server refused the creation otherwise."""
    try:
        await js.stream_info(config.name)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(config)
    except BadRequestError as exc:   # created by another process meanwhile, or refused
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            if "overlap" in str(exc).lower() and config.name.startswith(subjects.TASKS_STREAM_PREFIX):
                raise LayoutError(
                    f"cannot create {config.name}: its subjects {config.subjects} overlap with another stream, "
                    f"probably the old all-models task stream {subjects.LEGACY_STREAM_TASKS} (before one task "
                    f"stream per model); stop the pool, delete it with admin rights (nats stream rm "
                    f"{subjects.LEGACY_STREAM_TASKS}) and run streamwise layout again") from None
            raise exc from None


async def ensure_layout(js: JetStreamContext, replicas: int | None = None,
                        tenants: tuple[str, ...] | list[str] = (),
                        models: tuple[str, ...] | list[str] = ()) -> tuple[KeyValue, ObjectStore, KeyValue]:
    """Create what is missing of the streams, the instance KV, the object store, the result
    cache KV, the upload store of each of ``tenants`` and the task stream of each of ``models``
    (:func:`task_stream_config`; a worker creates its own model's on a bus without auth,
    :func:`ensure_task_stream`). Existing ones are left as they are: an operator's replicas,
    limits or other changes are never undone or lowered (idempotent). On an authenticated bus
    only the admin role may call this (``streamwise layout``). ``replicas``: for what this call
    creates (default :func:`replicas_default`).

    Raises:
        LayoutError: the legacy task stream ``SW_TASKS`` is in the way of a model's stream.
    """
    replicas = replicas or replicas_default()
    for tenant in tenants:
        await _object_store(js, subjects.uploads(tenant), ARTIFACTS_TTL_S, BUS_LIMITS.uploads_max_bytes, replicas)
    for config in _stream_configs(replicas) + [task_stream_config(m, replicas) for m in dict.fromkeys(models)]:
        await _add_stream(js, config)
    b = BUS_LIMITS
    kv = await _kv(js, subjects.KV_INSTANCES, INSTANCE_TTL_S, b.instances_max_bytes, replicas)
    cache = await _kv(js, subjects.KV_CACHE, CACHE_TTL_S, b.cache_max_bytes, replicas)
    await _kv(js, subjects.KV_TENANTS, TENANTS_TTL_S, 64 * 2**20, replicas)   # quota usage (opened lazily)
    store = await _object_store(js, subjects.OBJECT_STORE, ARTIFACTS_TTL_S, b.artifacts_max_bytes, replicas)
    return kv, store, cache


async def ensure_task_stream(js: JetStreamContext, model: str, replicas: int | None = None) -> None:
    """Create ``SW_TASKS_<model>`` if it is missing (left as it is if it exists).

    Raises:
        LayoutError: the legacy task stream ``SW_TASKS`` is in the way."""
    await _add_stream(js, task_stream_config(model, replicas or replicas_default()))


async def bind_task_stream(js: JetStreamContext, model: str, where: str) -> None:
    """Check that the admin created ``SW_TASKS_<model>``, creating nothing.

    Raises:
        LayoutError: it is missing (one line naming it, ``where`` (the bus, no credentials) and the fix).
    """
    try:
        await js.stream_info(subjects.tasks_stream(model))
    except NotFoundError:
        raise LayoutError(f"bus layout missing on {where}: no task stream {subjects.tasks_stream(model)} for model "
                          f"{model!r}; create it with admin credentials: streamwise layout --nats URL --creds "
                          f"admin.creds --models {model}") from None


async def bind_layout(js: JetStreamContext, where: str, *,
                      cache: bool = True) -> tuple[KeyValue, ObjectStore, KeyValue | None]:
    """Bind the instance KV, the artifact store and (``cache``) the cache KV that the admin
    created, creating nothing (the scheduler and worker roles may not; a worker has no access
    to the cache, which only schedulers use). ``where``: the bus, for messages (no credentials).

    Raises:
        LayoutError: one of them is missing (one line naming it and the fix).
    """
    async def one(kind: str, name: str, open_):
        try:
            return await open_(name)
        except (NotFoundError, BadRequestError):
            raise LayoutError(f"bus layout missing on {where}: no {kind} {name}; create the layout once "
                              f"with admin credentials: streamwise layout --nats URL --creds admin.creds") from None

    kv = await one("KV bucket", subjects.KV_INSTANCES, js.key_value)
    store = await one("object store", subjects.OBJECT_STORE, js.object_store)
    return kv, store, (await one("KV bucket", subjects.KV_CACHE, js.key_value) if cache else None)
