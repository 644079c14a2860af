"""One podcast as the gateway sees it: what the bus has said about it, and its segments' bytes on demand.

A :class:`Feed` tails three replayable JetStream subjects of one request, from their first
message, with the client's reconnect-safe ordered consumers (:func:`streamwise.client._pump`):
the segments (``sw.segments.<tenant>.<request>``), the status (``sw.status.<tenant>.<request>``)
and the completion events (``sw.events.<request>``, read only, to count the DAG nodes done per
stage). It keeps only *metadata* per segment (index, stream sequence, span, quality, size, which
init segment it uses); a viewer that needs segment ``k`` gets its bytes from a shared
byte-bounded LRU (:class:`SegmentCache`) or, when evicted, straight from the stream by sequence
number (``$JS.API.STREAM.MSG.GET``). So memory per viewer is one segment (a viewer reads at its
own pace from its own cursor), per show it is O(segments) small records, and a slow viewer never
loses a segment: JetStream keeps them for ``SEGMENTS_MAX_AGE_S`` (6 h).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass

from nats.js.errors import NotFoundError

from ..bus import subjects
from ..bus.client import Bus
from ..bus.codec import MessageError, decode, to_builtins
from ..bus.messages import Event, Segment, Status
from ..client import SegmentRecord, _pump, late_segments, stall_seconds
from ..stages.cpu.media import split_init
from .errors import ApiError
from .mp4 import mime_of

log = logging.getLogger(__name__)

STAGE_NAMES = {"screenplay": "screenplay", "image": "images", "tts": "speech", "video": "shots", "mux": "segments"}
"""Event stage -> the name of its count in the status JSON's ``dag`` map."""

TERMINAL = ("done", "failed")


class SegmentCache:
    """A byte-bounded LRU of segment media parts (``moof + mdat``), shared by all feeds.

    ``max_bytes``: the bound (default 64 MiB: about 300 two-second 640x400 segments). A part larger
    than the bound is not kept.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: collections.OrderedDict[tuple[str, int], bytes] = collections.OrderedDict()

    def get(self, key: tuple[str, int]) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        if len(data) > self.max_bytes or key in self._items:
            return
        self._items[key] = data
        self.bytes += len(data)
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= len(old)

    def drop(self, request_id: str) -> None:
        for key in [k for k in self._items if k[0] == request_id]:
            self.bytes -= len(self._items.pop(key))


@dataclass
class SegmentInfo:
    """What the gateway keeps of one segment: its playback span (s), quality rung, size (bytes of
    the media part), the init segment it belongs to (index into :attr:`Feed.inits`), its
    JetStream stream sequence (to read it again), and when it was produced / reached the gateway
    (Unix s)."""

    index: int
    seq: int
    start_s: float
    duration_s: float
    quality: dict
    final: bool
    init: int
    bytes: int
    produced_at: float
    arrived_at: float

    def public(self, t0: float | None) -> dict:
        q = self.quality
        return {"index": self.index, "start_s": self.start_s, "duration_s": self.duration_s, "rung": q.get("rung"),
                "width": q.get("width"), "height": q.get("height"), "fps": q.get("fps"), "steps": q.get("steps"),
                "bytes": self.bytes, "init": self.init, "final": self.final,
                "arrived_s": None if t0 is None else round(self.arrived_at - t0, 4)}


MAX_TASKS = 50_000
"""Tasks a feed keeps for the page's Gantt chart (a four-hour show runs some 20,000)."""


class Feed:
    """The gateway's view of request ``request_id`` of ``tenant``; see the module docstring.

    ``submitted_at`` (Unix s) is known when this gateway published the request: TTFF counts from
    it; a feed attached to a request submitted elsewhere reports no TTFF. ``segment_s``: the
    request's segment length (the playlist's nominal target duration).
    """

    def __init__(self, bus: Bus, tenant: str, request_id: str, cache: SegmentCache, *,
                 submitted_at: float | None = None, segment_s: float = 2.0, on_segment=None) -> None:
        self.bus, self.tenant, self.request_id, self.cache = bus, tenant, request_id, cache
        self.on_segment = on_segment   # (index, bytes, arrived_at, submitted_at) per new segment: the metrics
        self.submitted_at = submitted_at
        self.segment_s = segment_s
        self.segments: list[SegmentInfo] = []          # the contiguous prefix 0..n-1
        self._pending: dict[int, SegmentInfo] = {}     # arrived ahead of an earlier one
        self.inits: list[bytes] = []
        self.mimes: list[str] = []
        self.status: Status | None = None
        self.dag: dict[str, int] = {name: 0 for name in STAGE_NAMES.values()}
        self._nodes_done: set[str] = set()
        # every task run for this show, for the page's live Gantt chart per instance (SSE "task" events)
        self.tasks: list[dict] = []
        self.errors: list[str] = []                    # problems the gateway itself saw (a bad segment)
        self.duplicates = 0
        self.rereads = 0                               # segments read again from the stream (not cached)
        self.version = 0
        self.last_access = time.monotonic()
        self.last_update = time.monotonic()            # the last message read from the bus
        self._changed = asyncio.Condition()
        self._stop = asyncio.Event()
        self._closed = False
        self._tasks: list[asyncio.Task] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Feed":
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        rid, tenant = self.request_id, self.tenant
        self._tasks = [
            asyncio.create_task(_pump(self.bus, subjects.segments(tenant, rid), subjects.STREAM_SEGMENTS, "segment",
                                      queue, self._stop)),
            asyncio.create_task(_pump(self.bus, subjects.status(tenant, rid), subjects.STREAM_STATUS, "status",
                                      queue, self._stop)),
            asyncio.create_task(_pump(self.bus, subjects.events(tenant, rid), subjects.STREAM_EVENTS, "event",
                                      queue, self._stop)),
        ]
        self._tasks.append(asyncio.create_task(self._consume(queue)))
        return self

    async def close(self) -> None:
        """Stop tailing the bus and drop this show's cached bytes; viewers still waiting see the
        feed as ended."""
        self._closed = True
        async with self._changed:
            self.version += 1
            self._changed.notify_all()
        self._stop.set()
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3.0)
        self._tasks = []
        self.cache.drop(self.request_id)

    @property
    def state(self) -> str:
        """``submitted`` until the scheduler's first status, then the status's state."""
        return self.status.state if self.status else "submitted"

    @property
    def final_delivered(self) -> bool:
        return bool(self.segments) and self.segments[-1].final

    @property
    def ended(self) -> bool:
        """No more segments will come: the final one is here, the request failed, or the gateway
        let go of this feed."""
        return self.final_delivered or self.state == "failed" or self._closed

    @property
    def error(self) -> str | None:
        if self.status is not None and self.status.state == "failed":
            return self.status.error or self.status.message or "request failed"
        return None

    # -- reading the bus ---------------------------------------------------------------------
    async def _consume(self, queue: asyncio.Queue) -> None:
        while not self._stop.is_set():
            kind, msg, arrived = await queue.get()
            try:
                if kind == "segment":
                    await self._on_segment(msg, arrived)
                elif kind == "status":
                    self.status = decode(msg.data, Status)
                else:
                    self._on_event(decode(msg.data, Event))
            except MessageError as exc:
                log.warning("request %s: skipped a %s message: %s", self.request_id, kind, exc)
                continue
            except Exception as exc:   # e.g. the object store unreachable for longer than the retries
                log.warning("request %s: could not read a %s message: %s", self.request_id, kind, exc)
                self.errors.append(f"{kind}: {exc}")
                continue
            self.last_update = time.monotonic()
            async with self._changed:
                self.version += 1
                self._changed.notify_all()
            if self.ended and self.state in TERMINAL:
                self._stop.set()     # nothing more to read: free the consumers
                for t in self._tasks[:3]:
                    t.cancel()
                return

    def _on_event(self, event: Event) -> None:
        if not event.partial and event.started_at and event.finished_at and len(self.tasks) < MAX_TASKS:
            t0 = self.submitted_at or (self.tasks[0]["t0"] if self.tasks else event.started_at)
            self.tasks.append({
                "t0": t0, "node": event.node_id, "stage": event.stage, "instance": event.instance, "ok": event.ok,
                "rung": event.rung, "start_s": round(event.started_at - t0, 3), "end_s": round(event.finished_at - t0, 3),
                "deadline_s": None if event.deadline is None else round(event.deadline - t0, 3)})
        if event.ok and not event.partial and event.node_id not in self._nodes_done:
            self._nodes_done.add(event.node_id)
            name = STAGE_NAMES.get(event.stage)
            if name:
                self.dag[name] += 1

    async def _on_segment(self, msg, arrived: float) -> None:
        seg = decode(msg.data, Segment)
        if seg.index < len(self.segments) or seg.index in self._pending:
            self.duplicates += 1        # a re-run after a scheduler takeover: same bytes, dropped
            return
        try:
            data = seg.data if seg.data is not None else await self.bus.get_blob(seg.ref)
            init, media = split_init(data)
        except (KeyError, ValueError) as exc:
            self.errors.append(f"segment {seg.index}: {exc}")
            return
        if init in self.inits:
            which = self.inits.index(init)
        else:
            which = len(self.inits)
            self.inits.append(init)
            try:
                self.mimes.append(mime_of(init))
            except ValueError as exc:
                self.mimes.append("video/mp4")
                self.errors.append(f"segment {seg.index}: {exc}")
        self.cache.put((self.request_id, seg.index), media)
        info = SegmentInfo(index=seg.index, seq=msg.metadata.sequence.stream, start_s=seg.start_s,
                           duration_s=seg.duration_s, quality=to_builtins(seg.quality), final=seg.final, init=which,
                           bytes=len(media), produced_at=seg.produced_at, arrived_at=arrived)
        self._pending[seg.index] = info
        if self.on_segment is not None:
            self.on_segment(seg.index, len(media), arrived, self.submitted_at)
        while len(self.segments) in self._pending:
            self.segments.append(self._pending.pop(len(self.segments)))

    async def media(self, index: int) -> bytes:
        """The media part (``moof + mdat``) of delivered segment ``index``: from the cache, else read
        again from the segment stream by its sequence number.

        Raises:
            IndexError: segment ``index`` is not delivered yet.
            KeyError: the stream no longer has it (expired after ``SEGMENTS_MAX_AGE_S``).
        """
        info = self.segments[index]
        data = self.cache.get((self.request_id, index))
        if data is not None:
            return data
        try:
            raw = await self.bus.js.get_msg(subjects.STREAM_SEGMENTS, seq=info.seq)
        except Exception as exc:
            raise KeyError(f"segment {index} is no longer on the bus ({exc})") from None
        self.rereads += 1
        seg = decode(raw.data, Segment)
        full = seg.data if seg.data is not None else await self.bus.get_blob(seg.ref)
        data = split_init(full)[1]
        self.cache.put((self.request_id, index), data)
        return data

    async def wait(self, predicate, timeout_s: float | None) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every update) or ``timeout_s`` passes
        (``None``: forever). Returns the predicate's last value."""
        self.last_access = time.monotonic()

        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)
        if predicate():
            return True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(until(), timeout_s)
        return bool(predicate())

    async def changed_since(self, version: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for an update after ``version``; True if there was one."""
        return await self.wait(lambda: self.version != version, timeout_s)

    # -- views -------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The status JSON without the per-segment list (see docs/gateway.md, "Status")."""
        st = self.status
        t0 = self.submitted_at
        first = self.segments[0] if self.segments else None
        records = [SegmentRecord(s.index, s.start_s, s.duration_s, s.arrived_at, s.bytes, s.quality)
                   for s in self.segments]
        return {
            "id": self.request_id, "tenant": self.tenant, "state": self.state,
            "message": st.message if st else "", "error": self.error,
            "errors": list(self.errors[-10:]),
            "speakers": list(st.speakers) if st else [], "lines": st.lines if st else 0,
            "screenplay_done": bool(st and st.screenplay_done_at),
            "dag": dict(self.dag),
            "segments_done": st.segments_done if st else 0,
            "segments_total": st.segments_total if st else None,
            "segments_delivered": len(self.segments),
            "tasks": len(self.tasks),
            "delivered_s": round(sum(s.duration_s for s in self.segments), 3),
            "video_duration_s": st.video_duration_s if st else None,
            "cache_hits": st.cache_hits if st else 0,
            "ttff_s": None if first is None or t0 is None else round(first.arrived_at - t0, 4),
            "ttff_produced_s": None if first is None or t0 is None or not first.produced_at
            else round(first.produced_at - t0, 4),
            "stall_s": round(stall_seconds(records), 4),
            "late_segments": late_segments(records),
            "duplicates": self.duplicates, "rereads": self.rereads,
            "mime": self.mimes[0] if self.mimes else None,
            "rungs": [s.quality.get("rung") for s in self.segments],
            "ended": self.ended,
            "submitted_at": t0,
            "steers": [self._steer(r) for r in (st.steers if st else ())],
        }

    def _steer(self, record) -> dict:
        """A direction the scheduler applied (``SteerRecord``), plus ``delivered_s``: from the steer to
        the arrival here of the first segment showing its first steered line (None before)."""
        out = to_builtins(record)
        seg = next((s for s in self.segments if s.index == record.segment), None)
        out["delivered_s"] = None if seg is None else round(seg.arrived_at - record.at, 3)
        return out

    def snapshot(self) -> dict:
        """:meth:`summary` plus every delivered segment (index, span, rung, size, arrival)."""
        out = self.summary()
        out["segments"] = [s.public(self.submitted_at) for s in self.segments]
        return out


class Feeds:
    """The feeds this gateway holds, at most ``max_feeds``; an ended one idle for ``idle_s`` (or
    the least recently used ended one, when full) is closed to make room."""

    def __init__(self, bus: Bus, tenant: str, cache: SegmentCache, *, max_feeds: int = 256,
                 idle_s: float = 600.0, on_segment=None) -> None:
        self.bus, self.tenant, self.cache = bus, tenant, cache
        self.on_segment = on_segment   # passed to every feed (Feed.on_segment)
        self.max_feeds, self.idle_s = max_feeds, idle_s
        self._feeds: dict[str, Feed] = {}

    async def _make_room(self) -> None:
        """Close feeds nobody asked about for ``idle_s`` that ended (or had no news from the bus
        for as long: a request no scheduler took); when still full, the least recently used ended
        one."""
        now = time.monotonic()
        stale = [f for f in self._feeds.values()
                 if now - f.last_access > self.idle_s and (f.ended or now - f.last_update > self.idle_s)]
        for f in stale:
            del self._feeds[f.request_id]
            await f.close()
        if len(self._feeds) >= self.max_feeds:
            ended = sorted((f for f in self._feeds.values() if f.ended), key=lambda f: f.last_access)
            if ended:
                del self._feeds[ended[0].request_id]
                await ended[0].close()
        if len(self._feeds) >= self.max_feeds:
            raise ApiError(503, f"the gateway already follows {self.max_feeds} live podcasts; try again later")

    async def create(self, request_id: str, *, submitted_at: float, segment_s: float) -> Feed:
        await self._make_room()
        feed = Feed(self.bus, self.tenant, request_id, self.cache, submitted_at=submitted_at,
                    segment_s=segment_s, on_segment=self.on_segment).start()
        self._feeds[request_id] = feed
        return feed

    async def get(self, request_id: str) -> Feed:
        """The feed of ``request_id``; one is attached to a request submitted elsewhere if the bus
        has its status.

        Raises:
            ApiError: 404 for an id that is not a subject token or has no status on the bus.
        """
        feed = self._feeds.get(request_id)
        if feed is None:
            try:
                subjects.token(request_id)
                await self.bus.js.get_last_msg(subjects.STREAM_STATUS, subjects.status(self.tenant, request_id))
            except (ValueError, NotFoundError):
                raise ApiError(404, f"no podcast {request_id!r} (tenant {self.tenant!r}): never submitted, not yet "
                                    f"accepted by a scheduler, or expired") from None
            feed = self._feeds.get(request_id)   # created meanwhile by a concurrent request
            if feed is None:
                await self._make_room()
                feed = self._feeds[request_id] = Feed(self.bus, self.tenant, request_id, self.cache,
                                                      on_segment=self.on_segment).start()
        feed.last_access = time.monotonic()
        return feed

    def __len__(self) -> int:
        return len(self._feeds)

    async def close(self) -> None:
        for f in list(self._feeds.values()):
            await f.close()
        self._feeds.clear()
