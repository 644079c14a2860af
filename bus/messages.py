"""The typed, versioned messages of the StreamWise bus (MessagePack on the wire).

One module holds the whole wire protocol, as in vLLM v1's engine core: a few msgspec
``Struct`` types, validated on decode (:mod:`streamwise.bus.codec`). Every message carries
``v`` (schema version, currently 1). Times are Unix seconds (float) unless a name says
otherwise; sizes are pixels; rates are frames per second or Hz. Field-by-field docs for
external clients are in ``docs/protocol.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from .limits import LIMITS

SCHEMA_VERSION = 1

_TOKEN = r"^[A-Za-z0-9_\-]+$"


def _range(low: float, high: float, unit: str) -> msgspec.Meta:
    """A finite number in ``[low, high]`` (NaN and infinities fail both bounds)."""
    return msgspec.Meta(ge=low, le=high, description=f"{low:g}..{high:g} {unit}")


L = LIMITS
Id = Annotated[str, msgspec.Meta(pattern=_TOKEN, max_length=L.id_chars)]
Name = Annotated[str, msgspec.Meta(max_length=L.name_chars)]
# Hard schema bounds of the request (configs/limits.yaml); check_request adds cross-field checks
# (byte sizes, width x height x fps) with the same limits.
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=1e11)]

ScriptFormat = Literal["text", "vtt", "srt", "json"]
InstanceState = Literal["starting", "ready", "draining", "gone"]
RequestState = Literal["accepted", "running", "done", "failed"]


class Quality(msgspec.Struct, kw_only=True, frozen=True):
    """One rung of the quality ladder: output resolution (pixels), frame rate (fps),
    denoising steps (``None`` for non-diffusion rungs) and the rung's name
    (``"static"`` is the CPU rung, the paper's "static content")."""

    rung: str = "static"
    width: int = 640
    height: int = 400
    fps: float = 25.0
    steps: int | None = None


class Request(msgspec.Struct, kw_only=True):
    """A user's request for one podcast, published to ``sw.requests.<tenant>``.

    Exactly one of ``script``, ``script_ref`` (a name in the tenant's upload store
    ``sw_uploads_<tenant>``, for scripts larger than the server's max payload) or ``topic``
    and/or ``document`` (the LLM writes the screenplay) must be given. ``ttff_s`` is the SLO:
    the first segment must reach the viewer within ``ttff_s`` seconds of ``submitted_at``.
    Segments are ``segment_s`` long except the first, ``first_segment_s`` (a short first
    segment is what keeps time to first frame low).
    """

    v: Annotated[int, msgspec.Meta(ge=1)] = SCHEMA_VERSION
    request_id: Id
    tenant: Id = "default"
    submitted_at: Annotated[float, _range(*L.submitted_at, "Unix s")]
    script: Annotated[str, msgspec.Meta(max_length=L.script_bytes)] | None = None
    script_ref: Name | None = None
    script_format: ScriptFormat | None = None
    script_name: Name = "script"
    topic: Annotated[str, msgspec.Meta(max_length=L.topic_chars)] | None = None
    # source text for the LLM screenplay (with or without a topic)
    document: Annotated[str, msgspec.Meta(max_length=L.document_bytes)] | None = None
    document_name: Name | None = None
    title: Annotated[str, msgspec.Meta(max_length=L.title_chars)] | None = None
    ttff_s: Annotated[float, _range(*L.ttff_s, "s")] = 1.5
    width: Annotated[int, msgspec.Meta(ge=L.width[0], le=L.width[1], multiple_of=8)] = 640
    height: Annotated[int, msgspec.Meta(ge=L.height[0], le=L.height[1], multiple_of=8)] = 400
    fps: Annotated[float, _range(*L.fps, "fps")] = 25.0
    segment_s: Annotated[float, _range(*L.segment_s, "s")] = 2.0
    first_segment_s: Annotated[float, _range(*L.first_segment_s, "s")] = 1.0
    max_clip_s: Annotated[float, _range(*L.max_clip_s, "s")] = 3.5
    # speaker name (any case) -> voice ("heart", "joe@0.9"); over what the screenplay names
    voices: Annotated[dict[Name, Annotated[str, msgspec.Meta(max_length=40)]],
                      msgspec.Meta(max_length=L.script_speakers)] = {}
    # speaker name (any case) -> how they look ("an old bearded man in a toga"); over the screenplay's
    # (read by streamwise.workflow.cast.read_look)
    looks: Annotated[dict[Name, Annotated[str, msgspec.Meta(max_length=300)]],
                     msgspec.Meta(max_length=L.script_speakers)] = {}


class Task(msgspec.Struct, kw_only=True):
    """One DAG node's work, published to ``sw.tasks.<model>.<instance>``.

    ``deadline`` (Unix s) orders the worker's local EDF queue; ``inputs`` is the
    stage-specific payload (plain MessagePack values, large data by object-store name).
    ``task_id`` is unique per (request, node, attempt) and names the outputs, so a
    redelivered task overwrites identical outputs (idempotent).
    """

    v: int = SCHEMA_VERSION
    task_id: str
    request_id: str
    tenant: str
    node_id: str
    stage: str
    model: str
    deadline: Seconds              # finite: a NaN deadline would poison the EDF heap
    attempt: Annotated[int, msgspec.Meta(ge=0)] = 0
    inputs: dict[str, Any] = {}
    quality: Quality = Quality()
    dispatched_at: Seconds = 0.0
    scheduler: str = ""            # the scheduler process that dispatched it (instances report load per scheduler)


class Event(msgspec.Struct, kw_only=True):
    """Completion (or failure) of a task, published by the worker to ``sw.events.<tenant>.<request>``.

    ``outputs`` is stage-specific (see ``docs/protocol.md``); ``error`` is a one-line
    reason when ``ok`` is false, and ``retryable`` says whether another attempt could help.
    ``handed_back`` marks a task a draining instance returns unrun (spot eviction): the
    scheduler places it again without counting a failure. ``partial`` marks an event a
    streaming stage (the LLM screenplay) publishes *before* its task finishes, with the
    outputs produced since the previous one; the final event follows with ``partial`` false.
    """

    v: int = SCHEMA_VERSION
    task_id: str
    request_id: str
    tenant: str = "default"        # the task's tenant (the request's, as the scheduler decided it)
    node_id: str
    stage: str
    instance: str
    ok: bool = True
    error: str | None = None
    retryable: bool = True
    handed_back: bool = False
    partial: bool = False
    outputs: dict[str, Any] = {}
    started_at: float = 0.0
    finished_at: float = 0.0
    # copied from the task, for timelines (streamwise timeline) and the conformance replay: its
    # deadline, quality rung and when its scheduler dispatched it (Unix s)
    deadline: float | None = None
    rung: str | None = None
    dispatched_at: float | None = None


class Cue(msgspec.Struct, kw_only=True, frozen=True):
    """One subtitle cue: ``text`` that ``speaker`` says over show time ``[start_s, end_s)``
    (seconds from the show's start): the words of one talking-head clip, timed by the TTS audio
    the clip speaks (the same words the CPU rung burns into the picture). ``line``: index of the
    screenplay line."""

    start_s: float
    end_s: float
    speaker: str
    text: str
    line: int = 0
    voice: str = ""   # "<model>|<voice>" that spoke it, e.g. "hibari:heart|heart", "piper:en_US-joe-medium|joe@0.86"


class Segment(msgspec.Struct, kw_only=True):
    """One fMP4 segment of the stream, on ``sw.segments.<tenant>.<request>``.

    ``data`` is a complete fragmented MP4 (H.264 + AAC) for playback span
    ``[start_s, start_s + duration_s)``; when it is larger than the server's max payload
    it is in the object store under ``ref`` instead. ``final`` marks the last segment.
    """

    v: int = SCHEMA_VERSION
    request_id: str
    tenant: str
    index: int
    start_s: float
    duration_s: float
    quality: Quality
    final: bool = False
    data: bytes | None = None
    ref: str | None = None
    produced_at: float = 0.0
    cues: list[Cue] = []   # the subtitle cues that start in this segment's span, in order


class Status(msgspec.Struct, kw_only=True):
    """Progress of a request on ``sw.status.<tenant>.<request>`` (scheduler -> viewers)."""

    v: int = SCHEMA_VERSION
    request_id: str
    state: RequestState
    message: str = ""
    speakers: list[str] = []
    lines: int = 0
    opening_lines: int = 0          # of ``lines``, the scheduler's own opening (a topic's greeting), not the screenplay's
    segments_done: int = 0
    segments_total: int | None = None
    video_duration_s: float | None = None
    cache_hits: int = 0
    screenplay_done_at: float | None = None   # when the screenplay's last line was produced (Unix s)
    error: str | None = None
    scheduler: str | None = None    # the scheduler process serving the request
    received_at: float | None = None   # when the bus stored the request (Unix s): its deadlines count from here
    quota: str | None = None        # refused over this tenant quota (configs/quotas.yaml)
    retry_after_s: float | None = None   # with ``quota``: seconds until a retry can succeed (None: never as sent)
    steers: list[SteerRecord] = []   # the ``direct`` steers applied, in order
    at: float = 0.0


class Steer(msgspec.Struct, kw_only=True):
    """A viewer's direction for a running request, sent as a core NATS request to
    ``sw.control.steer.<tenant>.<request>``; the scheduler running it answers with a
    :class:`SteerReply` (no answer: no scheduler runs it). ``action``: ``"end"`` ends the show
    after the line playing at the start of the first segment not yet handed to the mux;
    ``"skip"`` skips the ``lines`` lines after that one; ``"direct"`` (a topic or document
    request only) has the LLM continue the screenplay with ``direction`` (e.g. "go deeper on
    X", "a listener asks: ...", at most 500 characters), replacing the lines not yet being
    rendered (:mod:`streamwise.workflow.steer`)."""

    v: int = SCHEMA_VERSION
    request_id: Id
    tenant: Id = "default"
    action: Literal["end", "skip", "direct"]
    lines: Annotated[int, msgspec.Meta(ge=1, le=L.script_lines)] = 1
    direction: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    at: float = 0.0


class SteerRecord(msgspec.Struct, kw_only=True):
    """One ``direct`` steer of a topic request, as the scheduler applied it (in ``Status.steers``
    and the client's report): ``at`` (Unix s, when the scheduler applied it), ``direction``,
    ``kept_through`` (0-based index of the last line kept; the continuation follows it),
    ``replaced`` (the indices of the lines scheduled but not yet played that were dropped),
    ``first_line`` (index of the first steered line), ``task_id`` (the continuation's LLM task),
    ``segment`` (the first segment showing ``first_line``, once laid out), ``on_screen_at``
    (Unix s when that segment was published) and ``steer_to_screen_s`` (``on_screen_at - at``)."""

    at: float
    direction: str
    kept_through: int
    replaced: list[int] = []
    first_line: int
    task_id: str | None = None
    segment: int | None = None
    on_screen_at: float | None = None
    steer_to_screen_s: float | None = None


class SteerReply(msgspec.Struct, kw_only=True):
    """The scheduler's answer to a :class:`Steer`: ``ok``, or ``error`` (one line); for ``end``
    ``last_line`` (0-based index of the last line kept), for ``skip`` ``skipped`` (the lines
    skipped), for ``direct`` ``last_line`` (the last line kept), ``replaced`` and ``first_line``
    (the index the first steered line will have); and the new ``segments_total`` (nil until the
    show's end is known)."""

    v: int = SCHEMA_VERSION
    ok: bool
    error: str | None = None
    last_line: int | None = None
    skipped: list[int] = []
    replaced: list[int] = []
    first_line: int | None = None
    segments_total: int | None = None


class Cancel(msgspec.Struct, kw_only=True):
    """Scheduler -> the worker instance holding a task (core NATS ``sw.control.cancel.<instance>``):
    stop ``task_id`` (queued or running) and ack it without an event; its outputs are no longer
    wanted (a steered show's replaced LLM attempt). ``reason``: one line for the worker's log."""

    v: int = SCHEMA_VERSION
    task_id: str
    reason: str = ""


class Heartbeat(msgspec.Struct, kw_only=True):
    """A worker instance's liveness record, put in KV ``sw_instances`` under its instance id."""

    v: int = SCHEMA_VERSION
    instance: str
    stage: str
    model: str
    hardware: str = "cpu"
    gpus: int = 0
    emulated: bool = False       # a stand-in that takes a GPU model's profiled time (no GPU)
    state: InstanceState = "ready"
    queue: int = 0
    running: int = 0
    # what schedulers read to share an instance (issue 14): tasks waiting on its subject not yet
    # delivered, the most it may hold (the server's max_ack_pending), the tasks it holds (queued
    # or running) by dispatching scheduler, and the most it ever held at once
    pending: int = 0
    cap: int = 0
    held_by: dict[str, int] = {}
    peak_held: int = 0
    pid: int = 0
    host: str = ""
    at: float = 0.0
