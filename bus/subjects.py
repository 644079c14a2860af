"""Every subject, stream, consumer and bucket name of the StreamWise bus, in one place.

Nothing else in the code base writes a subject string: call these functions. The
names are the contract of ``docs/protocol.md`` (from the StreamWise design notes,
section 3). A subject token may not contain ``.``, ``*``, ``>`` or whitespace;
:func:`token` checks that for ids that come from users or hosts.
"""

from __future__ import annotations

import re
import secrets

PREFIX = "sw"

STREAM_REQUESTS = "SW_REQUESTS"
TASKS_STREAM_PREFIX = "SW_TASKS_"   # one task stream per model: SW_TASKS_<model> (tasks_stream)
LEGACY_STREAM_TASKS = "SW_TASKS"     # the one task stream of every model before issue 11's per-model streams
STREAM_EVENTS = "SW_EVENTS"
STREAM_SEGMENTS = "SW_SEGMENTS"
STREAM_STATUS = "SW_STATUS"
STREAM_DEADLETTER = "SW_DEADLETTER"

KV_INSTANCES = "sw_instances"
KV_CACHE = "sw_cache"
KV_TENANTS = "sw_tenants"      # per-tenant quota usage (streamwise.service.quota)
OBJECT_STORE = "sw_artifacts"

SCHEDULER_CONSUMER = "schedulers"

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")


def token(value: str) -> str:
    """Return ``value`` if it is a valid single subject token.

    Raises:
        ValueError: empty, or contains characters other than letters, digits, ``_`` and ``-``.
    """
    if not _TOKEN.match(value or ""):
        raise ValueError(f"invalid subject token {value!r}: use letters, digits, '_' or '-'")
    return value


def requests(tenant: str = "*", prefix: str = PREFIX) -> str:
    """``sw.requests.<tenant>``: clients -> request schedulers (work queue)."""
    return f"{prefix}.requests.{tenant}"


def tenant_of_request(subject: str) -> str:
    """The ``<tenant>`` token of a request subject ``sw.requests.<tenant>``: the tenant a request
    belongs to is the one whose subject it arrived on (which that tenant's bus permissions fix),
    never the one its body names.

    Raises:
        ValueError: ``subject`` is not a request subject with a valid tenant token."""
    parts = (subject or "").split(".")
    if len(parts) < 3 or parts[-2] != "requests":
        raise ValueError(f"not a request subject: {subject!r}")
    return token(parts[-1])


def request_dedup_id(tenant: str, request_id: str) -> str:
    """A new ``Nats-Msg-Id`` for one submission of a request: ``<tenant>.<request>.<nonce>``,
    the nonce 128 random bits (:func:`secrets.token_hex`).

    The requests stream de-duplicates by this header across all tenants' subjects for its
    duplicate window (2 minutes), and a server cannot tie a header to a subject: a predictable
    id (``<tenant>.<request>``) would let another tenant publish it first and get the victim's
    request dropped as a duplicate. Tenants cannot read the requests stream, so the nonce cannot
    be learnt; reuse the returned id for every retry of the same publish (issue 11,
    ``docs/security.md``)."""
    return f"{scoped(tenant, request_id)}.{secrets.token_hex(16)}"


def dedup_id_matches(msg_id: str, tenant: str, request_id: str) -> bool:
    """Whether a request's ``Nats-Msg-Id`` lies in its own namespace: ``<tenant>.<request>``
    (the subject's tenant, the body's request id), alone or followed by ``.<anything>``. The
    scheduler refuses a request whose id does not, so no tenant occupies another's ids."""
    own = scoped(tenant, request_id)
    return msg_id == own or msg_id.startswith(own + ".")


def requests_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.requests.>"


def tasks(model: str, instance: str, prefix: str = PREFIX) -> str:
    """``sw.tasks.<model>.<instance>``: scheduler -> the one worker instance chosen for the task."""
    return f"{prefix}.tasks.{model}.{instance}"


def tasks_all(prefix: str = PREFIX) -> str:
    """``sw.tasks.>``: every model's task subjects (the scheduler publishes to all of them)."""
    return f"{prefix}.tasks.>"


def tasks_of_model(model: str, prefix: str = PREFIX) -> str:
    """``sw.tasks.<model>.*``: the subjects of the task stream of ``model``."""
    return f"{prefix}.tasks.{token(model)}.*"


def tasks_stream(model: str) -> str:
    """``SW_TASKS_<model>``: the work-queue stream of one model's tasks (issue 11). One stream
    per model, so the JetStream API subjects of its consumers (``$JS.API.CONSUMER.MSG.NEXT.
    SW_TASKS_<model>.<instance>``) name the model, and a ``worker-<model>`` user's permissions
    can name only its own model's stream: it cannot pull another model's tasks even knowing the
    instance id (``docs/security.md``).

    Raises:
        ValueError: ``model`` is not a subject token."""
    return f"{TASKS_STREAM_PREFIX}{token(model)}"


def scoped(tenant: str, request_id: str) -> str:
    """``<tenant>.<request>``: a request's id scoped to its tenant (issue 11).

    Two tenants may use the same request id; every key, task id, blob name and
    de-duplication id is built from this scoped form, never from the bare id. Tokens cannot
    contain ``.``, so the pair is unambiguous, and as part of a subject it is two tokens."""
    return f"{tenant}.{request_id}"


def events(tenant: str, request_id: str, prefix: str = PREFIX) -> str:
    """``sw.events.<tenant>.<request>``: workers -> that request's scheduler (completion events)."""
    return f"{prefix}.events.{tenant}.{request_id}"


def events_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.events.>"


def segments(tenant: str, request_id: str, prefix: str = PREFIX) -> str:
    """``sw.segments.<tenant>.<request>``: mux stage -> viewers (fMP4 segments, replayable)."""
    return f"{prefix}.segments.{tenant}.{request_id}"


def segments_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.segments.>"


def status(tenant: str, request_id: str, prefix: str = PREFIX) -> str:
    """``sw.status.<tenant>.<request>``: schedulers -> viewers (progress, quality changes, errors)."""
    return f"{prefix}.status.{tenant}.{request_id}"


def status_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.status.>"


def evict(instance: str, prefix: str = PREFIX) -> str:
    """``sw.control.evict.<instance>`` (core NATS): 30 s spot-eviction notice -> the worker drains."""
    return f"{prefix}.control.evict.{instance}"


def cancel(instance: str, prefix: str = PREFIX) -> str:
    """``sw.control.cancel.<instance>`` (core NATS): a scheduler -> the worker holding a task whose
    outputs are no longer wanted (``Cancel``)."""
    return f"{prefix}.control.cancel.{instance}"


def steer(tenant: str, request_id: str, prefix: str = PREFIX) -> str:
    """``sw.control.steer.<tenant>.<request>`` (core NATS request/reply): a viewer -> the scheduler
    running that request (``Steer``; the reply is a ``SteerReply``)."""
    return f"{prefix}.control.steer.{tenant}.{request_id}"


def steer_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.control.steer.*.*"


def deadletter(kind: str, prefix: str = PREFIX) -> str:
    """``sw.deadletter.<kind>``: messages that failed validation, kept for inspection, never retried blindly."""
    return f"{prefix}.deadletter.{kind}"


def deadletter_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.deadletter.>"


# --- per-tenant uploads (issue 11) -----------------------------------------------------------

UPLOADS_PREFIX = "sw_uploads_"


def uploads(tenant: str) -> str:
    """``sw_uploads_<tenant>``: the object store a tenant uploads scripts over the payload limit
    to (created by the admin role for each tenant; the screenplay workers read it). One bucket
    per tenant, so the server's permissions, not our code, keep a tenant out of the others."""
    return f"{UPLOADS_PREFIX}{token(tenant)}"


def inbox_prefix(user: str | None) -> str:
    """The reply-subject prefix of a connection: ``_INBOX_<user>`` for a named user (its
    permissions allow subscribing to ``_INBOX_<user>.>`` only, so no user can read another's
    replies or push-consumer deliveries), ``_INBOX`` (the NATS default) without one."""
    return f"_INBOX_{token(user)}" if user else "_INBOX"


# --- JetStream, KV and object-store API subjects (for the permissions of bus/auth.py) ------------
# nats-server 2.10+ JetStream API (https://docs.nats.io/reference/reference-protocols/nats_api_reference).

JS_API = "$JS.API"


def js_api(*tokens: str) -> str:
    """``$JS.API.<tokens...>``, e.g. ``js_api("STREAM", "INFO", "SW_STATUS")``."""
    return ".".join((JS_API, *tokens))


def js_ack(stream: str) -> str:
    """``$JS.ACK.<stream>.>``: acknowledgements of messages delivered from ``stream``."""
    return f"$JS.ACK.{stream}.>"


def js_flow_control(stream: str) -> str:
    """``$JS.FC.<stream>.>``: flow-control replies of a push (ordered) consumer on ``stream``."""
    return f"$JS.FC.{stream}.>"


def kv_stream(bucket: str) -> str:
    """``KV_<bucket>``: the stream behind a KV bucket."""
    return f"KV_{bucket}"


def kv_all(bucket: str) -> str:
    """``$KV.<bucket>.>``: every key of a KV bucket (put and delete publish here)."""
    return f"$KV.{bucket}.>"


def obj_stream(bucket: str) -> str:
    """``OBJ_<bucket>``: the stream behind an object store."""
    return f"OBJ_{bucket}"


def obj_meta(bucket: str, name: str | None = None) -> str:
    """``$O.<bucket>.M.<base64url(name)>``: the metadata (size, digest, chunks) of one object, or
    of every object (``$O.<bucket>.M.>``) when ``name`` is ``None`` (the nats-py / Go layout)."""
    import base64

    if name is None:
        return f"$O.{bucket}.M.>"
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


def obj_all(bucket: str) -> str:
    """``$O.<bucket>.>``: chunks and metadata of every object of an object store."""
    return f"$O.{bucket}.>"
