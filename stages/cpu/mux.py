"""Mux stage: build one fMP4 segment of the stream and publish it to the viewers.

A task names the clip frames and the audio that cover its playback span (resolved by the
scheduler from the timeline); the stage decodes the clips, encodes H.264 + AAC through
PyAV (:func:`streamwise.stages.cpu.media.encode_segment`) and publishes a
:class:`~streamwise.bus.messages.Segment` on ``sw.segments.<tenant>.<request>``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ...bus import subjects
from ...bus.messages import Cue, Segment, Task
from ..runtime.base import ArtifactCache, TaskContext, TaskError
from .media import decode_clip, encode_segment, scale_frames
from .talking_head import pcm_array

log = logging.getLogger(__name__)

INLINE_MARGIN = 64 * 1024   # keep a segment message this far under the server's max payload


class PyavMux:
    """Stage ``mux``. Task inputs: ``index``, ``start_s``, ``duration_s``, ``final``, ``fps``,
    ``sample_rate``, ``tenant``, ``video`` (``[[clip name, frame from, frame to(, hold)], ...]``;
    ``hold``: each decoded frame stands for that many stream frames),
    ``audio`` (``[[pcm name, sample from, sample to], ...]``, starting ``preroll_samples``
    before the span), optional ``width``/``height`` (the stream's size in pixels: clips of a
    lower quality rung are scaled to it, so one stream keeps one resolution), ``cues`` (the
    subtitles starting in the span, ``[{start_s, end_s, speaker, text, line}]``, carried on the
    Segment). Outputs:
    ``bytes`` (segment size) and ``index``."""

    stage = "mux"
    model = "pyav-fmp4"

    def __init__(self) -> None:
        self._clips = ArtifactCache(2)   # a segment boundary shares at most one clip with the next
        self._audio = ArtifactCache(16)

    def load(self) -> None:
        """Warm up x264, the AAC encoder and the resampler tables, so the first segment
        (the one that decides time to first frame) does not pay for their first use."""
        frames = np.zeros((2, 64, 64, 3), np.uint8)
        audio = np.zeros(2 * 882, np.int16)
        for start, preroll in ((0.0, None), (0.08, np.zeros(4410, np.int16))):
            decode_clip(encode_segment(frames, audio, fps=25.0, sample_rate=22050, start_s=start,
                                       audio_preroll=preroll))

    async def run(self, task: Task, ctx: TaskContext) -> dict[str, Any]:
        inputs = task.inputs
        t0 = time.perf_counter()
        frames = []
        for name, a, b, *hold in inputs["video"]:   # hold: stream frames per drawn frame (a cheaper CPU rung)
            clip = await self._clips.get(ctx, name, decode_clip)
            frames.append((np.repeat(clip, int(hold[0]), axis=0) if hold else clip)[a:b])
        if inputs.get("width") and inputs.get("height"):
            size = (int(inputs["width"]), int(inputs["height"]))
            frames = [f if f.shape[1:3] == size[::-1] else await ctx.in_thread(scale_frames, f, *size)
                      for f in frames]
        audio = [(await self._audio.get(ctx, name, pcm_array))[a:b] for name, a, b in inputs["audio"]]
        if not frames or not audio:
            raise TaskError(f"segment {inputs['index']}: no clips or audio to mux", retryable=False)
        t1 = time.perf_counter()
        video = np.concatenate(frames)
        pcm = np.concatenate(audio)
        preroll = int(inputs.get("preroll_samples", 0))
        data = await ctx.in_thread(
            encode_segment, video, pcm[preroll:], fps=float(inputs["fps"]), sample_rate=int(inputs["sample_rate"]),
            start_s=float(inputs["start_s"]), audio_preroll=pcm[:preroll] if preroll else None,
            final=bool(inputs.get("final")))
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
