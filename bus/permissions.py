"""The NATS permissions of StreamWise's roles (issue 11; ``docs/security.md``), computed by
:func:`role_permissions` for every user that :mod:`.auth` issues, and the table of
``docs/security.md`` generated from them (:func:`permissions_markdown`).

Consumers are created with the nats-server 2.10+ extended API subject
``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``: the server checks that the filter in the
subject equals the one in the request, so a permission on that subject fixes what a consumer
may read. Pulling (``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``) is named by the stream
and the consumer only; tasks therefore live in one stream per model (``SW_TASKS_<model>``), so
a worker user's pull and ack rights name its own model's stream and no other.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import subjects as S

ROLES = ("admin", "scheduler", "worker", "tenant", "viewer")

class AuthError(ValueError):
    """Bad arguments to the auth set-up, or an unreadable credentials file (one line)."""


@dataclass(frozen=True)
class Permissions:
    """NATS publish and subscribe permissions of one user (subject patterns)."""

    pub_allow: tuple[str, ...]
    sub_allow: tuple[str, ...]
    pub_deny: tuple[str, ...] = ()
    sub_deny: tuple[str, ...] = ()


def user_name(role: str, tenant: str | None = None, model: str | None = None) -> str:
    """``admin``, ``scheduler``, ``worker``, ``worker-<model>``, ``tenant-<t>``, ``viewer-<t>``
    (also the .creds file stem).

    Raises:
        AuthError: unknown role, a tenant role without a valid tenant token, or a model that is
            not a subject token.
    """
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role == "worker" and model:
        try:
            return f"worker-{S.token(model)}"
        except ValueError as exc:
            raise AuthError(f"model {model!r}: {exc}") from None
    if role in ("tenant", "viewer"):
        if not tenant:
            raise AuthError(f"role {role} needs a tenant")
        return f"{role}-{S.token(tenant)}"
    return role


# the stream-changing JetStream API: refused to every role but admin, on top of the allow lists
_LAYOUT_API = tuple(S.js_api(*t, ">") for t in (("STREAM", "CREATE"), ("STREAM", "UPDATE"), ("STREAM", "DELETE"),
                                                ("STREAM", "RESTORE"), ("STREAM", "SNAPSHOT"),
                                                ("STREAM", "PEER"), ("STREAM", "LEADER"), ("ACCOUNT",)))


def _consumer(stream: str, filter_pattern: str, name: str = "*", *, info: bool = True, delete: bool = False,
              next_: bool = True, ack: bool = True) -> list[str]:
    """API subjects to create (extended form, filter fixed by ``filter_pattern``), look up,
    pull from and ack a consumer on ``stream``."""
    out = [S.js_api("CONSUMER", "CREATE", stream, name, filter_pattern)]
    if info:
        out.append(S.js_api("CONSUMER", "INFO", stream, name))
    if next_:
        out.append(S.js_api("CONSUMER", "MSG", "NEXT", stream, name))
    if delete:
        out.append(S.js_api("CONSUMER", "DELETE", stream, name))
    if ack:
        out.append(S.js_ack(stream))
    return out


def _kv_rw(bucket: str) -> list[str]:
    """Bind, get, put/delete and watch a KV bucket (nats-py 2.16: watch and keys() create an
    ordered push consumer with the short ``CONSUMER.CREATE.<stream>`` subject)."""
    st = S.kv_stream(bucket)
    return [S.kv_all(bucket), S.js_api("STREAM", "INFO", st), S.js_api("STREAM", "MSG", "GET", st),
            S.js_api("DIRECT", "GET", st, ">"), S.js_api("CONSUMER", "CREATE", st),
            S.js_api("CONSUMER", "CREATE", st, ">"), S.js_api("CONSUMER", "INFO", st, "*"),
            S.js_api("CONSUMER", "DELETE", st, "*"), S.js_flow_control(st)]


def _obj_read(bucket: str) -> list[str]:
    """Bind and read an object store (nats-py 2.16: get_info is a last-message get of the
    metadata subject; get() creates an ordered push consumer on the chunk subject without
    naming the stream, hence ``STREAM.NAMES``)."""
    st = S.obj_stream(bucket)
    return [S.js_api("STREAM", "INFO", st), S.js_api("STREAM", "MSG", "GET", st),
            S.js_api("DIRECT", "GET", st, ">"), S.js_api("CONSUMER", "CREATE", st),
            S.js_api("CONSUMER", "CREATE", st, ">"), S.js_api("CONSUMER", "INFO", st, "*"),
            S.js_api("CONSUMER", "DELETE", st, "*"), S.js_api("STREAM", "NAMES"), S.js_flow_control(st)]


def _obj_write(bucket: str) -> list[str]:
    """Put objects (chunks and metadata under ``$O.<bucket>.>``; replacing one purges its old chunks)."""
    st = S.obj_stream(bucket)
    return [S.obj_all(bucket), S.js_api("STREAM", "INFO", st), S.js_api("STREAM", "MSG", "GET", st),
            S.js_api("DIRECT", "GET", st, ">"), S.js_api("STREAM", "PURGE", st)]


def _viewer_reads(tenant: str) -> list[str]:
    """Ordered push consumers filtered to the tenant's segments, status and completion events
    (the progress bars and the gateway's panel read them; events subjects are tenant-scoped),
    deliveries coming to the user's own inbox, and a direct get of a request's last status."""
    out = []
    for stream, subject in ((S.STREAM_SEGMENTS, S.segments(tenant, ">")), (S.STREAM_STATUS, S.status(tenant, ">")),
                            (S.STREAM_EVENTS, S.events(tenant, ">"))):
        out += [S.js_api("CONSUMER", "CREATE", stream, "*", subject), S.js_flow_control(stream)]
    out.append(S.js_api("DIRECT", "GET", S.STREAM_STATUS, S.status(tenant, ">")))
    return out


#: The stages whose workers publish segments, and read the tenants' uploads (a per-model worker
#: user of another stage gets neither right).
SEGMENT_STAGES = ("mux",)
UPLOAD_STAGES = ("screenplay",)


def _tasks(model: str) -> list[str]:
    """A worker's rights on the task stream of ``model``: create (the filter fixed to
    ``sw.tasks.<model>.*``), look up, pull from and ack its consumers, and see that the stream
    exists. Every subject names ``SW_TASKS_<model>``, so no right reaches another model's stream."""
    stream = S.tasks_stream(model)
    return [*_consumer(stream, S.tasks(model, "*")), S.js_api("STREAM", "INFO", stream)]


def role_permissions(role: str, *, tenant: str | None = None, tenants: tuple[str, ...] = (),
                     model: str | None = None, stage: str | None = None,
                     models: tuple[str, ...] = ()) -> Permissions:
    """The NATS permissions of ``role`` (the table in ``docs/security.md`` is generated from this).

    ``tenant``: for the ``tenant`` and ``viewer`` roles. ``tenants``: every tenant, for the
    worker's read access to their upload stores. ``model`` and ``stage``: a worker user of one
    model (``worker-<model>``): it may use consumers only of its own model's task stream
    ``SW_TASKS_<model>`` (create, pull, ack), publish segments only when ``stage`` is the mux,
    read uploads only when it is the screenplay stage. ``models``: every model of the pool, whose
    task streams the all-models ``worker`` pulls from and the ``scheduler`` cleans up (a gone
    instance's consumer and queued tasks); a model not listed has no rights on either.

    Raises:
        AuthError: unknown role, missing tenant, or a worker model without its stage.
    """
    if role == "worker" and model and not stage:
        raise AuthError(f"worker model {model!r}: give its stage")
    user = user_name(role, tenant, model)
    inbox = S.inbox_prefix(user) + ".>"
    if role == "admin":
        return Permissions(pub_allow=(">",), sub_allow=(">",))
    if role == "scheduler":
        pub = [S.status_all(), S.tasks_all(), S.deadletter_all(), S.cancel("*"),
               *_consumer(S.STREAM_REQUESTS, S.requests_all(), S.SCHEDULER_CONSUMER),
               S.js_api("CONSUMER", "DURABLE", "CREATE", S.STREAM_REQUESTS, S.SCHEDULER_CONSUMER),
               *_consumer(S.STREAM_EVENTS, S.events_all(), delete=True),
               # a gone instance: its queued tasks are purged and its consumer removed
               *(api for m in models for api in (S.js_api("STREAM", "PURGE", S.tasks_stream(m)),
                                                 S.js_api("CONSUMER", "DELETE", S.tasks_stream(m), "*"))),
               *_kv_rw(S.KV_INSTANCES), *_kv_rw(S.KV_CACHE),
               *_kv_rw(S.KV_TENANTS),           # the per-tenant quota ledger
               *_obj_read(S.OBJECT_STORE), *_obj_write(S.OBJECT_STORE)]
        for t in tenants:   # an upload's size (the largest-script quota at admission), not its text
            st = S.obj_stream(S.uploads(t))
            pub.append(S.js_api("DIRECT", "GET", st, S.obj_meta(S.uploads(t))))
        return Permissions(pub_allow=_unique(pub), sub_allow=(inbox, S.steer_all()), pub_deny=_LAYOUT_API)
    if role == "worker":
        one = bool(model)
        pub = [S.events_all(), *([S.segments_all()] if not one or stage in SEGMENT_STAGES else []),
               S.deadletter_all(),
               # a model's user uses consumers of its own model's task stream only: the stream
               # token of every consumer API subject names the model (docs/security.md)
               *(a for m in ((model,) if one else models) for a in _tasks(m)),
               *_kv_rw(S.KV_INSTANCES),
               *_obj_read(S.OBJECT_STORE), *_obj_write(S.OBJECT_STORE)]
        if not one or stage in UPLOAD_STAGES:
            for t in tenants:
                pub += _obj_read(S.uploads(t))
        return Permissions(pub_allow=_unique(pub), sub_allow=(inbox, S.evict("*"), S.cancel("*")),
                           pub_deny=_LAYOUT_API + (S.requests_all(), S.status_all()),
                           sub_deny=(S.requests_all(),))
    if role == "tenant":
        pub = [S.requests(tenant), S.steer(tenant, "*"), *_viewer_reads(tenant), *_obj_write(S.uploads(tenant))]
        return Permissions(pub_allow=_unique(pub), sub_allow=(inbox,), pub_deny=_LAYOUT_API)
    # viewer
    return Permissions(pub_allow=_unique(_viewer_reads(tenant)), sub_allow=(inbox,),
                       pub_deny=_LAYOUT_API + ("sw.>",))


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _user_permissions(name: str, tenants: tuple[str, ...], models: dict[str, str]) -> Permissions:
    """The permissions of user ``name`` (``admin``, ``worker-<model>``, ``tenant-<t>``, ...)."""
    role, _, rest = name.partition("-")
    if role == "worker" and rest:
        return role_permissions("worker", tenants=tenants, model=rest, stage=models[rest])
    return role_permissions(role, tenant=rest or None, tenants=tenants, models=tuple(models))


def permissions_markdown(tenant: str = "T", tenants: tuple[str, ...] = ("T",), models: tuple[str, ...] = ("M",)) -> str:
    """The permission table of ``docs/security.md`` (one row per role and direction), generated
    from :func:`role_permissions` so the document cannot drift from what ``auth init`` writes."""
    rows = ["| role (user) | publish allowed | publish denied | subscribe allowed | subscribe denied |",
            "|---|---|---|---|---|"]
    cell = lambda items: "<br>".join(f"`{i}`" for i in items) or "–"   # noqa: E731
    for role in ROLES:
        t = tenant if role in ("tenant", "viewer") else None
        variants = [(None, None)] + ([("M", "tts"), ("M", "screenplay")] if role == "worker" else [])
        for model, stage in variants:
            p = role_permissions(role, tenant=t, tenants=tenants, model=model, stage=stage, models=models)
            label = f"{role} of model M, stage {stage}" if model else role
            rows.append(f"| {label} (`{user_name(role, t, model)}`) | {cell(p.pub_allow)} | {cell(p.pub_deny)} | "
                        f"{cell(p.sub_allow)} | {cell(p.sub_deny)} |")
    return "\n".join(rows) + "\n"
