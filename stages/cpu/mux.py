"""Mux stage: build one fMP4 segment of the stream and publish it to the viewers.

A task names the clip frames and the audio that cover its playback span (resolved by the
scheduler from the timeline); the stage decodes the clips, encodes H.264 + AAC through
PyAV (:func:`streamwise.stages.cpu.media.encode_segment`) and publishes a
:class:`~streamwise.bus.messages.Segment` on ``sw.segments.<tenant>.<request>``. When every
clip of a segment is already in the stream's encoding (the CPU ``still`` rung's IDR clips at the
stream's size: same avcC as the segments'), their frames are passed through instead: only the
audio is encoded. Any other clip (another rung, size or encoder) is decoded and encoded again.
A frame held for several stream frames (a rung drawing fewer frames a second) is one sample of
that duration, not repeated frames.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ...bus import subjects
from ...bus.messages import Cue, Segment, Task
from ..runtime.base import ArtifactCache, TaskContext, TaskError
from .media import StreamPackets, decode_clip, encode_segment, scale_frames
from .passthrough import clip_packets, repeat_frames, stream_avcc
from .talking_head import pcm_array

log = logging.getLogger(__name__)

INLINE_MARGIN = 64 * 1024   # keep a segment message this far under the server's max payload


def held_span(drawn: int, hold: int, a: int, b: int) -> tuple[slice, np.ndarray]:
    """Stream frames ``a`` to ``b`` (end excluded) of a clip of ``drawn`` frames, each standing
    for ``hold`` stream frames (``hold`` 1: every frame drawn): the slice of drawn frames that
    covers them and, for each, how many of those stream frames it is shown for (the first and
    last may be cut by the span). The same frames as ``np.repeat(clip, hold, axis=0)[a:b]``
    (a span past the clip's ``drawn * hold`` frames is cut there, as that slice is), without
    building the repeats: an empty slice when nothing is left."""
    hold = max(1, hold)
    a, b = max(0, a), min(b, drawn * hold)
    if b <= a:
        return slice(0, 0), np.zeros(0, np.int64)
    first, last = a // hold, (b - 1) // hold
    starts = np.arange(first, last + 1) * hold
    reps = np.minimum(starts + hold, b) - np.maximum(starts, a)
    return slice(first, last + 1), reps.astype(np.int64)


CLIP_CACHE_BYTES = 160 * 2**20   # two 3.5 s clips of decoded 640x400 frames at 25 fps (~134 MB), or hundreds of passed-through ones


class ClipCache(ArtifactCache):
    """An :class:`ArtifactCache` of decoded clips bounded by their bytes (``max_bytes``) rather
    than their count: the most recently used clip is always kept, however large."""

    def __init__(self, max_bytes: int, max_items: int = 64) -> None:
        super().__init__(max_items)
        self.max_bytes = max_bytes

    async def get(self, ctx: TaskContext, name: str, decode=lambda data: data) -> Any:
        """The decoded clip ``name`` (see :meth:`ArtifactCache.get`), then older clips dropped
        until the cache holds at most ``max_bytes`` (numpy ``nbytes``) or one clip."""
        value = await super().get(ctx, name, decode)
        items = self._items
        while len(items) > 1 and sum(getattr(v, "nbytes", 0) for v in items.values()) > self.max_bytes:
            items.popitem(last=False)
        return value


class HeldClip:
    """A clip as the mux keeps it: its MP4 bytes; its IDR access units and avcC when every frame
    is a keyframe (:func:`~.passthrough.clip_packets`: the CPU `still` rung encodes its clips so, in
    the stream's own settings, and the mux then passes them through); its decoded frames once a
    segment needs them (:meth:`frames`)."""

    __slots__ = ("data", "avcc", "packets", "_frames")

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        got = clip_packets(self.data)
        self.avcc, self.packets = got if got else (None, None)
        self._frames: np.ndarray | None = None

    def frames(self) -> np.ndarray:
        """The decoded frames, uint8 (N, H, W, 3), decoded on first use."""
        if self._frames is None:
            self._frames = decode_clip(self.data)
        return self._frames

    @property
    def nbytes(self) -> int:
        """Bytes held: the clip, its access units and its decoded frames (what the cache bounds)."""
        return (len(self.data) + sum(map(len, self.packets or ()))
                + (self._frames.nbytes if self._frames is not None else 0))


class PyavMux:
    """Stage ``mux``. Task inputs: ``index``, ``start_s``, ``duration_s``, ``final``, ``fps``,
    ``sample_rate``, ``tenant``, ``video`` (``[[clip name, frame from, frame to(, hold)], ...]``;
    ``hold``: each decoded frame stands for that many stream frames, and is encoded once, as one
    sample of that duration),
    ``audio`` (``[[pcm name, sample from, sample to], ...]``, starting ``preroll_samples``
    before the span), optional ``width``/``height`` (the stream's size in pixels: clips of a
    lower quality rung are scaled to it, so one stream keeps one resolution), ``cues`` (the
    subtitles starting in the span, ``[{start_s, end_s, speaker, text, line}]``, carried on the
    Segment). Outputs:
    ``bytes`` (segment size) and ``index``."""

    stage = "mux"
    model = "pyav-fmp4"

    def __init__(self) -> None:
        # decoded clips by bytes, not count: a segment boundary shares one clip with the next
        # segment of its show, and with concurrent shows the segments of others come between
        self._clips = ClipCache(CLIP_CACHE_BYTES)
        self._audio = ArtifactCache(16)

    def load(self) -> None:
        """Warm up x264, the AAC encoder and the resampler tables, so the first segment
        (the one that decides time to first frame) does not pay for their first use."""
        frames = np.zeros((2, 64, 64, 3), np.uint8)
        audio = np.zeros(2 * 882, np.int16)
        for start, preroll in ((0.0, None), (0.08, np.zeros(4410, np.int16))):
            decode_clip(encode_segment(frames, audio, fps=25.0, sample_rate=22050, start_s=start,
                                       audio_preroll=preroll))
        # the default stream's parameters and repeat frames, made once per size (~0.1 s), not in a first segment
        stream_avcc(640, 400, 25.0)
        repeat_frames(640, 400, 25.0, 63)

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        t0 = time.perf_counter()
        clips = [(await self._clips.get(ctx, name, HeldClip), int(hold[0]) if hold else 1, int(a), int(b))
                 for name, a, b, *hold in inputs["video"]]   # hold: stream frames per drawn frame (a cheaper CPU rung)
        size = (int(inputs["width"]), int(inputs["height"])) if inputs.get("width") and inputs.get("height") else None
        stream = await ctx.in_thread(stream_avcc, *size, float(inputs["fps"])) if size else None
        frames, repeats = [], []
        if size and clips and all(c.packets is not None and c.avcc == stream for c, *_ in clips):
            packets = []   # every clip already in the stream's encoding (the `still` rung): no decode, no encode
            for clip, hold, a, b in clips:
                drawn, reps = held_span(len(clip.packets), hold, a, b)
                packets += clip.packets[drawn]
                repeats.append(reps)
            frames = [StreamPackets(packets, *size)] if packets else []
        else:
            for clip, hold, a, b in clips:
                decoded = await ctx.in_thread(clip.frames)
                drawn, reps = held_span(len(decoded), hold, a, b)
                if len(reps):
                    frames.append(decoded[drawn])
                    repeats.append(reps)
            if size:
                frames = [f if f.shape[1:3] == size[::-1] else await ctx.in_thread(scale_frames, f, *size)
                          for f in frames]
        audio = [(await self._audio.get(ctx, name, pcm_array))[a:b] for name, a, b in inputs["audio"]]
        if not frames or not audio:
            raise TaskError(f"segment {inputs['index']}: no clips or audio to mux", retryable=False)
        t1 = time.perf_counter()
        video = frames[0] if isinstance(frames[0], StreamPackets) else np.concatenate(frames)
        reps = np.concatenate(repeats)
        pcm = np.concatenate(audio)
        preroll = int(inputs.get("preroll_samples", 0))
        data = await ctx.in_thread(
            encode_segment, video, pcm[preroll:], fps=float(inputs["fps"]), sample_rate=int(inputs["sample_rate"]),
            start_s=float(inputs["start_s"]), audio_preroll=pcm[:preroll] if preroll else None,
            final=bool(inputs.get("final")), repeats=None if (reps == 1).all() else reps)
        t2 = time.perf_counter()
        segment = Segment(request_id=task.request_id, tenant=task.tenant, index=int(inputs["index"]),
                          start_s=float(inputs["start_s"]), duration_s=float(inputs["duration_s"]),
                          quality=task.quality, final=bool(inputs.get("final")), produced_at=time.time(),
                          cues=[Cue(**cue) for cue in inputs.get("cues") or ()])
        if len(data) <= ctx.bus.max_payload - INLINE_MARGIN:
            segment.data = data
        else:
            segment.ref = await ctx.bus.put_blob(ctx.blob_name(task, "segment.mp4"), data)
        await ctx.bus.publish(subjects.segments(task.tenant, task.request_id), segment,
                              msg_id=f"{subjects.scoped(task.tenant, task.request_id)}.seg.{segment.index}")
        log.debug("segment %d: fetch+decode %.3f s, encode %.3f s, publish %.3f s", segment.index, t1 - t0,
                  t2 - t1, time.perf_counter() - t2)
        return {"bytes": len(data), "index": segment.index}
