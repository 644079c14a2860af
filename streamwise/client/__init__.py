"""The viewer side: publish a request, receive its segments, write HLS, the MP4 and a report.

:func:`generate` subscribes to ``sw.segments.<tenant>.<request>`` and
``sw.status.<tenant>.<request>`` *before* publishing the request (both are replayable
streams, so nothing is missed either way), then writes each segment into an HLS playlist
as soon as it and all earlier ones have arrived. At the end it writes ``podcast.mp4``
(the whole show, remuxed, no re-encode), ``podcast.vtt`` (its subtitles: the cues the segments carried)
and ``report.json`` (see :class:`Report`). The HLS output also has ``master.m3u8`` with a WebVTT
subtitles rendition (:class:`streamwise.client.hls.HlsWriter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import msgspec
import nats.errors
from nats.js import api
from nats.js.errors import NotFoundError

from ..bus import subjects
from ..bus.client import Bus
from ..bus.codec import MessageError, decode, encode, to_builtins
from ..bus.messages import Event, Request, Segment, Status
from ..stages.cpu.media import concat_files
from .hls import HlsWriter, webvtt


log = logging.getLogger(__name__)

DEFAULT_SEGMENT_S = next(f.default for f in msgspec.structs.fields(Request) if f.name == "segment_s")
"""Nominal segment length (s) a viewer that attached assumes for the HLS target duration (the
playlist's EXT-X-TARGETDURATION still grows to the longest segment received)."""

DONE_STATUS_WAIT_S = 2.0
"""Seconds the viewer waits, after the final segment, for the scheduler's "done" status
(its final cache-hit count) before writing ``report.json``."""

PUMP_SILENCE_S = 10.0
"""A viewer's ordered consumer that delivered nothing for this long (seconds) is re-created from
the stream sequence after the last message it returned. An ordered consumer is R1: when its
cluster node dies, nats.py's own reset re-creates it under the same name, which still names
the consumer of the dead node, and the reset never succeeds (the viewer stalled in the cluster
fault test). Re-creating an idle one costs a consumer create per 10 s of silence."""


class GenerateError(RuntimeError):
    """The request failed or stalled; ``str()`` is the one-line reason."""


@dataclass
class SegmentRecord:
    """One received segment: playback position and size in seconds, arrival in seconds after
    the request was published, and its quality (resolution in pixels, fps, rung)."""

    index: int
    start_s: float
    duration_s: float
    arrived_s: float
    bytes: int
    quality: dict


@dataclass
class Report:
    """``report.json``. ``ttff_s``: request published -> first segment received;
    ``realtime_factor``: ``wall_s / video_duration_s``; ``stall_s``: total playback stall if
    playback starts when the first segment arrives and pauses whenever the next is late.
    ``first_line_s`` / ``screenplay_done_s``: request published -> the first screenplay line
    reached the scheduler / the screenplay's last line was written (both ``None`` until a
    screenplay is known; the first line is the screenplay's own, the LLM's for a topic, never the
    scheduler's opening greeting, whose time is ``opening_line_s``, ``None`` without an opening; for an LLM screenplay streamed line by line, ``ttff_s <
    screenplay_done_s`` means playback began before the screenplay was finished).
    ``attached``: written by :func:`watch`, a viewer that attached to a request submitted
    elsewhere; its times then count from attaching, not from submission. ``script_lines``: every
    spoken screenplay line with its speaker, its show time and its words, from the subtitle cues
    the segments carried (see :func:`script_lines`)."""

    request_id: str
    speakers: list[str]
    lines: int
    video_duration_s: float
    ttff_s: float
    wall_s: float
    realtime_factor: float
    stall_s: float
    segments: list[SegmentRecord]
    quality: dict = field(default_factory=dict)
    cache_hits: int = 0
    first_line_s: float | None = None
    opening_line_s: float | None = None
    screenplay_done_s: float | None = None
    startup_s: float | None = None
    script: str | None = None
    attached: bool = False
    files: dict = field(default_factory=dict)
    ttff_slo_s: float | None = None       # the request's TTFF SLO (s); None for a viewer that attached
    slo_met: bool | None = None           # TTFF within the SLO and no segment late
    late_segments: list = field(default_factory=list)   # [{"index", "late_s"}]: segments that stalled playback
    duplicates: int = 0                   # segment messages for an index already received (dropped)
    # each spoken screenplay line: {"line", "speaker", "start_s", "end_s", "text"}, from the segments' cues
    script_lines: list = field(default_factory=list)
    # speaker -> {"model": e.g. "hibari:heart", "voice": e.g. "heart" or "joe@0.86"}: who spoke with which voice
    voices: dict = field(default_factory=dict)
    # the show's segment count as the scheduler last reported it (None: no status said it)
    segments_total: int | None = None
    # each direction a viewer steered a topic show with (the scheduler's SteerRecord: ``at``, ``direction``,
    # ``kept_through``, ``replaced``, ``first_line``, ``segment``, ``steer_to_screen_s``: steer -> that segment
    # published) plus ``received_s``: steer -> this viewer received that segment
    steers: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def steer_report(steers, records: list[SegmentRecord], t0: float) -> list[dict]:
    """The steers of a request's last status (``SteerRecord``) as report rows, each with
    ``received_s``: seconds from the steer to this viewer receiving the first segment that shows
    the first steered line (``t0 + arrived_s``; None if it never arrived)."""
    arrived = {r.index: t0 + r.arrived_s for r in records}
    rows = []
    for record in steers:
        row = to_builtins(record)
        at = arrived.get(record.segment) if record.segment is not None else None
        row["received_s"] = None if at is None else round(at - record.at, 3)
        rows.append(row)
    return rows


def voices_of(cues) -> dict[str, dict]:
    """Each speaker's voice, from the cues: ``{speaker: {"model": "hibari:heart", "voice": "heart",
    "mouth": "loudness"}}`` (a speaker keeps one voice for the show; an older mux that sends no voice leaves it
    out). ``mouth``: where the talking head's mouth shapes came from (``piper-alignments``: visemes of the
    phonemes piper spoke, timed by the model; ``piper-phonemes`` / ``hibari-phonemes``: the engine's phonemes,
    timing estimated; ``loudness``: the speech engine gave no phonemes), when the speech stage reports it."""
    voices: dict[str, dict] = {}
    for cue in cues:
        model, _, rest = getattr(cue, "voice", "").partition("|")
        label, _, mouth = rest.partition("|")
        if model and cue.speaker not in voices:
            voices[cue.speaker] = {"model": model, "voice": label, **({"mouth": mouth} if mouth else {})}
    return voices


def script_lines(cues) -> list[dict]:
    """Each screenplay line that was spoken, from the subtitle cues the segments carried (in show order):
    ``{"line": index, "speaker": name, "start_s", "end_s": show seconds, "text": its cues' words joined}``."""
    lines: dict[int, dict] = {}
    for cue in sorted(cues, key=lambda c: (c.start_s, c.end_s)):
        entry = lines.setdefault(cue.line, {"line": cue.line, "speaker": cue.speaker, "start_s": round(cue.start_s, 3),
                                            "end_s": round(cue.end_s, 3), "text": ""})
        entry["end_s"] = round(max(entry["end_s"], cue.end_s), 3)
        entry["text"] = f"{entry['text']} {cue.text}".strip()
    return sorted(lines.values(), key=lambda e: (e["start_s"], e["line"]))


def late_segments(records: list[SegmentRecord]) -> list[dict]:
    """Each segment that arrived after its playback time (playback starting at the first
    arrival, pausing for each late one, as :func:`stall_seconds` counts), as
    ``{"index": k, "late_s": seconds}``."""
    if not records:
        return []
    start, stall, late = records[0].arrived_s, 0.0, []
    for r in records:
        due = start + r.start_s + stall
        if r.arrived_s > due:
            late.append({"index": r.index, "late_s": round(r.arrived_s - due, 4)})
            stall += r.arrived_s - due
    return late


def stall_seconds(records: list[SegmentRecord]) -> float:
    """Total playback stall (s) if playback starts at the first arrival and waits for late segments."""
    if not records:
        return 0.0
    start = records[0].arrived_s
    stall = 0.0
    for r in records:
        due = start + r.start_s + stall
        if r.arrived_s > due:
            stall += r.arrived_s - due
    return stall


ProgressFn = Callable[[str, dict], None]


async def _pump(bus: Bus, subject: str, stream: str, kind: str, queue: asyncio.Queue, stop: asyncio.Event) -> None:
    """Copy a replayable subject, from its first message, into ``queue`` as ``(kind, msg,
    arrival)``. Rides out bus outages, server restarts and the loss of a cluster node: after a
    reconnect, an error or :data:`PUMP_SILENCE_S` without a message the ordered consumer is
    re-created from the stream sequence after the last message seen, so nothing is skipped or
    repeated."""
    # Python 3.11's wait_for (inside next_msg) can swallow a cancellation that races with its
    # timeout, so the loop also watches an explicit stop flag instead of relying on cancel().
    sub, generation, last_seq = None, -1, None
    quiet_since = time.monotonic()
    try:
        while not stop.is_set():
            if sub is None or generation != bus.reconnects:
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(sub.unsubscribe(), timeout=2.0)
                    sub = None
                # a named consumer: nats-py then creates it with the extended API subject
                # $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>, which a tenant's permissions
                # allow for its own subjects only (docs/security.md)
                config = api.ConsumerConfig(name=bus.nc._nuid.next().decode(),
                                            opt_start_seq=None if last_seq is None else last_seq + 1)
                policy = api.DeliverPolicy.ALL if last_seq is None else api.DeliverPolicy.BY_START_SEQUENCE
                generation = bus.reconnects
                try:
                    sub = await bus.js.subscribe(subject, stream=stream, ordered_consumer=True,
                                                 deliver_policy=policy, config=config)
                except Exception as exc:   # the bus is away: try again shortly
                    log.debug("subscribe to %s failed: %s", subject, exc)
                    sub = None
                    await asyncio.sleep(0.5)
                    continue
                quiet_since = time.monotonic()
            try:
                msg = await sub.next_msg(timeout=1.0)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                if time.monotonic() - quiet_since > PUMP_SILENCE_S:
                    generation = -1     # re-create it, under a new name, after the last message seen
                continue
            except Exception as exc:   # connection closed under us: re-create
                log.debug("reading %s failed: %s", subject, exc)
                generation = -1
                await asyncio.sleep(0.5)
                continue
            with contextlib.suppress(Exception):
                last_seq = msg.metadata.sequence.stream
            await queue.put((kind, msg, time.time()))
            quiet_since = time.monotonic()    # after the put: a slow reader's full queue is not silence
    finally:
        if sub is not None:
            with contextlib.suppress(Exception):   # best effort: the ordered consumers expire anyway
                await asyncio.wait_for(sub.unsubscribe(), timeout=2.0)


async def generate(bus: Bus, request: Request, out_dir: str | Path, *, progress: ProgressFn | None = None,
                   idle_timeout_s: float = 60.0, health: Callable[[], None] | None = None) -> Report:
    """Submit ``request`` and stream its podcast into ``out_dir``.

    Writes ``index.m3u8`` + ``init.mp4`` + ``seg_*.m4s`` as segments arrive, then
    ``podcast.mp4`` and ``report.json``. ``progress(kind, info)`` is called for
    ``status`` and ``segment`` updates, and for every completion ``event`` of the request's DAG
    (``{"stage", "node_id", "ok", "partial"}``). ``health()`` is called about once a second and may
    raise (e.g. :meth:`streamwise.pool.Pool.check` when a local worker died).

    Raises:
        GenerateError: the scheduler reported a failure (its reason), or nothing arrived for
            ``idle_timeout_s`` seconds (no scheduler or worker serving the bus?).
    """
    await upload_large_script(bus, request)

    # one unguessable de-duplication id for this submission (every retry of the publish reuses it):
    # another tenant cannot get it dropped as a duplicate by publishing the same id first
    msg_id = subjects.request_dedup_id(request.tenant, request.request_id)

    async def submit() -> float:
        request.submitted_at = time.time()
        await bus.publish(subjects.requests(request.tenant), request, msg_id=msg_id)
        return request.submitted_at

    return await _receive(bus, request.tenant, request.request_id, out_dir, submit=submit,
                          segment_s=request.segment_s, script=request.script_name, progress=progress,
                          idle_timeout_s=idle_timeout_s, health=health, ttff_slo_s=request.ttff_s)


SCRIPT_INLINE_MARGIN = 64 * 1024
"""Bytes of a request's max payload kept free for its other fields and headers."""


async def upload_large_script(bus: Bus, request: Request) -> bool:
    """If ``request`` would not fit in one message (the server's max payload, 1 MB on a stock
    nats-server), put its script in the tenant's own upload store ``sw_uploads_<tenant>`` as
    ``<request>`` and send it by reference (``script_ref``). Returns whether it uploaded.

    Raises:
        ValueError: a document larger than the payload limit (only scripts travel by reference).
    """
    size = len(encode(request))
    if size <= bus.max_payload - SCRIPT_INLINE_MARGIN:
        return False
    if request.script is None:
        raise ValueError(f"document: {size:,} bytes, over the bus's max payload of {bus.max_payload:,} bytes "
                         f"(only scripts travel by object-store reference); shorten the document")
    name = request.request_id
    await bus.put_upload(request.tenant, name, request.script.encode("utf-8"))
    request.script, request.script_ref = None, name
    return True


async def _last_status(bus: Bus, tenant: str, request_id: str):
    """The request's last status message. A direct get with the subject in the API subject
    (``$JS.API.DIRECT.GET.SW_STATUS.sw.status.<tenant>.<request>``), which a tenant's or
    viewer's permissions allow for its own tenant; a stream made before direct gets were
    enabled answers no one, and then the plain message get is used.

    Raises:
        NotFoundError: no status for the request.
    """
    subject = subjects.status(tenant, request_id)
    try:
        return await bus.js.get_last_msg(subjects.STREAM_STATUS, subject, direct=True)
    except nats.errors.NoRespondersError:
        return await bus.js.get_last_msg(subjects.STREAM_STATUS, subject)


async def watch(bus: Bus, request_id: str, out_dir: str | Path, *, tenant: str = "default",
                progress: ProgressFn | None = None, idle_timeout_s: float = 60.0) -> Report:
    """Attach to a request that any client submitted earlier, and stream it into ``out_dir``
    as :func:`generate` does: from its first segment (JetStream keeps a show's segments for
    ``SEGMENTS_MAX_AGE_S``), then live until its final segment. A second viewer, or the same
    one after its connection dropped, gets the same bytes. Timings in the report count from
    the moment of attaching (``attached`` is true), not from submission.

    Raises:
        GenerateError: the bus has no status for ``request_id`` under ``tenant`` (never
            submitted, not yet accepted by a scheduler, or expired), the request failed, or
            nothing arrived for ``idle_timeout_s`` seconds.
    """
    try:
        await _last_status(bus, tenant, request_id)
    except TimeoutError:   # a request the server refused (the permission error comes asynchronously) never answers
        why = f"the bus refused: {bus.refused[-1]}" if bus.refused else "the bus did not answer"
        raise GenerateError(f"cannot read the status of request {request_id!r} (tenant {tenant!r}) on "
                            f"{bus.safe_url}: {why}") from None
    except NotFoundError:
        raise GenerateError(f"no request {request_id!r} (tenant {tenant!r}) on {bus.safe_url}: not submitted, "
                            f"not yet accepted by a scheduler, or expired") from None
    return await _receive(bus, tenant, request_id, out_dir, submit=None, segment_s=None, script=None,
                          progress=progress, idle_timeout_s=idle_timeout_s, health=None)


async def _receive(bus: Bus, tenant: str, rid: str, out_dir: str | Path, *,
                   submit: Callable[[], Awaitable[float]] | None, segment_s: float | None, script: str | None,
                   progress: ProgressFn | None, idle_timeout_s: float,
                   health: Callable[[], None] | None, ttff_slo_s: float | None = None) -> Report:
    """Subscribe to a request's segments and status (from their first message), call
    ``submit()`` (which publishes the request and returns its time), then write the HLS files as
    segments arrive and, after the final one, ``podcast.mp4`` and ``report.json``. Timings count
    from ``submit()``'s time, or from now when attaching (``submit`` is ``None``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("seg_*.m4s"), *out.glob("sub_*.vtt"), out / "init.mp4", out / "index.m3u8",
                  out / "master.m3u8", out / "subs.m3u8", out / "podcast.mp4", out / "podcast.vtt"]:
        stale.unlink(missing_ok=True)   # left by an earlier run into the same directory
    progress = progress or (lambda kind, info: None)
    # bounded: a slow viewer makes the consumer wait (flow control), it never buffers the show
    queue: asyncio.Queue = asyncio.Queue(maxsize=64)
    stop = asyncio.Event()
    pumps = [asyncio.create_task(_pump(bus, subjects.segments(tenant, rid), subjects.STREAM_SEGMENTS, "segment",
                                       queue, stop)),
             asyncio.create_task(_pump(bus, subjects.status(tenant, rid), subjects.STREAM_STATUS, "status",
                                       queue, stop)),
             # read only, for progress: the DAG's completion events (what the scheduler consumes)
             asyncio.create_task(_pump(bus, subjects.events(tenant, rid), subjects.STREAM_EVENTS, "event", queue, stop))]
    hls = HlsWriter(out, target_duration_s=segment_s or DEFAULT_SEGMENT_S)
    files: list[Path] = []             # init.mp4 then each media segment, written as they arrive
    records: list[SegmentRecord] = []
    pending: dict[int, tuple[Segment, bytes, float]] = {}
    last: Status | None = None
    final_index: int | None = None
    first_line_at: float | None = None    # the screenplay's (the LLM's) first line
    opening_at: float | None = None       # the scheduler's opening line (a topic's greeting)
    duplicates = 0
    t0 = time.time()
    try:
        if submit is not None:
            t0 = await submit()
        idle_since = time.monotonic()
        while final_index is None or len(records) <= final_index:
            try:
                kind, msg, arrived = await asyncio.wait_for(queue.get(), timeout=1.0)
            except asyncio.TimeoutError:
                if health:
                    health()
                if not bus.connected.is_set():
                    idle_since = time.monotonic()   # the bus is away: an outage is not a stalled request
                if time.monotonic() - idle_since > idle_timeout_s:
                    raise GenerateError(f"no progress for {idle_timeout_s:.0f} s on {bus.safe_url}: is a scheduler "
                                        f"and a worker for every stage running? (streamwise up --nats "
                                        f"{bus.safe_url})") from None
                continue
            idle_since = time.monotonic()
            if kind == "event":
                with contextlib.suppress(MessageError):
                    ev = decode(msg.data, Event)
                    progress("event", {"stage": ev.stage, "node_id": ev.node_id, "ok": ev.ok, "partial": ev.partial})
                continue
            if kind == "status":
                last = decode(msg.data, Status)
                if opening_at is None and last.opening_lines and last.lines:
                    opening_at = arrived
                if first_line_at is None and last.lines > last.opening_lines:
                    first_line_at = arrived
                progress("status", to_builtins(last))
                if last.state == "failed":
                    raise GenerateError(last.error or last.message or "request failed")
                continue
            try:
                seg = decode(msg.data, Segment)
            except MessageError:
                continue
            if seg.index in pending or seg.index < len(records):
                duplicates += 1
                continue  # a duplicate (a re-run after a scheduler restart): dropped, counted
            data = seg.data if seg.data is not None else await bus.get_blob(seg.ref)
            pending[seg.index] = (seg, data, arrived - t0)
            if seg.final:
                final_index = seg.index
            while len(records) in pending:
                seg, data, arrived_s = pending.pop(len(records))
                name = hls.add(seg.index, data, seg.duration_s, seg.cues)
                if not files:
                    files.append(out / HlsWriter.INIT)
                files.append(out / name)
                records.append(SegmentRecord(seg.index, seg.start_s, seg.duration_s, round(arrived_s, 4), len(data),
                                             to_builtins(seg.quality)))
                progress("segment", asdict(records[-1]))
        wall = time.time() - t0
        # the scheduler publishes its "done" status (final cache hits, lines) just after the
        # final segment: give it a moment so report.json has the final counts
        wait_done_until = time.monotonic() + DONE_STATUS_WAIT_S
        while (last is None or last.state != "done") and time.monotonic() < wait_done_until:
            try:
                kind, msg, _ = await asyncio.wait_for(queue.get(), timeout=wait_done_until - time.monotonic())
            except asyncio.TimeoutError:
                break
            if kind == "status":
                last = decode(msg.data, Status)
                progress("status", to_builtins(last))
    finally:
        stop.set()
        for p in pumps:
            p.cancel()
        while not queue.empty():            # let a pump blocked on the bounded queue see the flag
            queue.get_nowait()
        await asyncio.wait(pumps, timeout=3.0)
    hls.close()
    concat_files(files, out / "podcast.mp4")
    cues = sorted(hls.cues, key=lambda c: (c.start_s, c.end_s))
    (out / "podcast.vtt").write_text(webvtt(cues), encoding="utf-8")   # the sidecar of podcast.mp4
    duration = sum(r.duration_s for r in records)
    speakers = last.speakers if last else []
    report = Report(request_id=rid, speakers=list(speakers), lines=last.lines if last else 0,
                    video_duration_s=round(duration, 3), ttff_s=round(records[0].arrived_s, 4), wall_s=round(wall, 3),
                    realtime_factor=round(wall / duration, 4) if duration else 0.0,
                    stall_s=round(stall_seconds(records), 4), segments=records, quality=records[0].quality,
                    cache_hits=last.cache_hits if last else 0,
                    segments_total=last.segments_total if last else None,
                    # the screenplay's times count from submission: unknown to a viewer that attached
                    first_line_s=None if first_line_at is None or submit is None else round(first_line_at - t0, 4),
                    opening_line_s=None if opening_at is None or submit is None else round(opening_at - t0, 4),
                    screenplay_done_s=(round(last.screenplay_done_at - t0, 4)
                                       if last and last.screenplay_done_at and submit is not None else None),
                    script=script, attached=submit is None, script_lines=script_lines(cues), voices=voices_of(cues),
                    files={"hls": "index.m3u8", "mp4": "podcast.mp4", "master": "master.m3u8",
                           "subtitles": "podcast.vtt"})
    report.late_segments = late_segments(records)
    report.duplicates = duplicates
    report.steers = steer_report(last.steers if last else [], records, t0)
    if ttff_slo_s is not None and submit is not None:
        report.ttff_slo_s = ttff_slo_s
        report.slo_met = report.ttff_s <= ttff_slo_s and not report.late_segments
    (out / "report.json").write_text(report.to_json())
    return report


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]
