"""Every subject, stream, consumer and bucket name of the StreamWise bus, in one place.

Nothing else in the code base writes a subject string: call these functions. The
names are the contract of ``docs/protocol.md`` (from the StreamWise design notes,
section 3). A subject token may not contain ``.``, ``*``, ``>`` or whitespace;
:func:`token` checks that for ids that come from users or hosts.
"""

from __future__ import annotations

import re

PREFIX = "sw"

STREAM_REQUESTS = "SW_REQUESTS"
STREAM_TASKS = "SW_TASKS"
STREAM_EVENTS = "SW_EVENTS"
STREAM_SEGMENTS = "SW_SEGMENTS"
STREAM_STATUS = "SW_STATUS"
STREAM_DEADLETTER = "SW_DEADLETTER"

KV_INSTANCES = "sw_instances"
KV_CACHE = "sw_cache"
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


def requests_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.requests.>"


def tasks(model: str, instance: str, prefix: str = PREFIX) -> str:
    """``sw.tasks.<model>.<instance>``: scheduler -> the one worker instance chosen for the task."""
    return f"{prefix}.tasks.{model}.{instance}"


def tasks_all(prefix: str = PREFIX) -> str:
    return f"{prefix}.tasks.>"


def events(request_id: str, prefix: str = PREFIX) -> str:
    """``sw.events.<request>``: workers -> that request's scheduler (completion events)."""
    return f"{prefix}.events.{request_id}"


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
