"""Admission of a request: the checks a scheduler (and ``streamwise generate``, before anything
starts) applies to a :class:`~streamwise.bus.messages.Request`, with the limits of
``configs/limits.yaml`` (issue 9)."""

from __future__ import annotations

import logging

from ..bus import subjects
from ..bus.codec import MessageError, decode, encode
from ..bus.limits import LIMITS
from ..bus.messages import Request
from ..stages.cpu.speech import parse_voice
from ..stages.runtime.base import show_audio_rate

log = logging.getLogger(__name__)


def server_side(r: Request, msg) -> Request:
    """Replace what a client could forge with what the bus itself recorded (issue 11), in place:

    - ``tenant``: the ``<tenant>`` of the subject the request arrived on
      (``sw.requests.<tenant>``; the tenant's credentials only allow its own subject), whatever
      the body says;
    - ``submitted_at``: the time the JetStream server stored the message (its stream timestamp,
      the same on every redelivery, so a takeover keeps the deadlines), so an old or future
      ``submitted_at`` cannot move a request in EDF order;
    (``script_ref`` needs no check: it names an object in the tenant's own upload store,
    ``sw_uploads_<tenant>``, which the screenplay stage reads with this tenant.)

    ``msg`` is the JetStream message (``subject`` and ``metadata.timestamp``). Returns ``r``.

    Raises:
        ValueError: the subject is not a request subject.
    """
    tenant = subjects.tenant_of_request(msg.subject)
    if r.tenant != tenant:
        log.warning("request %s names tenant %r but arrived on %s's subject: served as %s",
                    r.request_id, r.tenant, tenant, tenant)
        r.tenant = tenant
    r.submitted_at = msg.metadata.timestamp.timestamp()
    return r


def check_dedup_id(r: Request, msg) -> None:
    """Refuse a request whose ``Nats-Msg-Id`` header is not in its own namespace,
    ``<tenant>.<request>[.<nonce>]`` (:func:`streamwise.bus.subjects.dedup_id_matches`; the
    tenant is the subject's, after :func:`server_side`). No header is fine (no de-duplication
    asked). This keeps tenants out of each other's de-duplication ids; what stops a tenant from
    getting another's request dropped as a duplicate is the unguessable nonce of
    :func:`~streamwise.bus.subjects.request_dedup_id` (``docs/security.md``).

    Raises:
        ValueError: a header in another namespace (one line naming it).
    """
    msg_id = (getattr(msg, "headers", None) or {}).get("Nats-Msg-Id")
    if msg_id is not None and not subjects.dedup_id_matches(msg_id, r.tenant, r.request_id):
        raise ValueError(f"Nats-Msg-Id {msg_id[:80]!r} is not this request's: a request of tenant {r.tenant} "
                         f"with id {r.request_id} must use {subjects.scoped(r.tenant, r.request_id)}.<random> "
                         f"(or no header)")


def check_request(r: Request) -> None:
    """Raise ValueError for a request that cannot be served, with a one-line reason that names
    the field and the limit (``configs/limits.yaml``). A request built in Python (not decoded)
    is validated against the schema's constraints first, as a decoded one already was."""
    try:
        decode(encode(r), Request)   # the schema-level constraints (finite, in range, lengths)
    except MessageError as exc:
        raise ValueError(str(exc).removeprefix("invalid Request message: ")) from None
    given = [x for x in (r.script, r.script_ref, r.topic or r.document) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of script, script_ref or topic (and/or document)")
    for name, text, limit in (("script", r.script, LIMITS.script_bytes), ("document", r.document, LIMITS.document_bytes)):
        if text is not None and len(text.encode("utf-8", errors="surrogatepass")) > limit:
            raise ValueError(f"{name}: {len(text.encode('utf-8', errors='surrogatepass')):,} bytes, over the limit "
                             f"of {limit:,} bytes")
    if r.width * r.height * r.fps > LIMITS.pixel_rate:
        raise ValueError(f"width x height x fps: {r.width}x{r.height} at {r.fps:g} fps is over the limit of "
                         f"{LIMITS.pixel_rate:,} pixels per second")
    show_audio_rate(r.fps)   # ValueError for an fps whose frame is not a whole number of samples
    for speaker, voice in r.voices.items():
        try:
            parse_voice(voice)
        except ValueError as exc:
            raise ValueError(f"voices: {speaker}: {exc}") from None
